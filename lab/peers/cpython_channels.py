"""CPython's own channels, measured the way the lab measures the MemChannel: per item, the
cost of send + recv + release between two interpreters, for buffers (send_buffer, zero
copy) and bytes (send, copied), at each payload size. Needs CPython 3.13 or newer
(_interpchannels, _interpreters). Prints one JSON object on stdout.

Usage: python3.13 cpython_channels.py REPS SIZE [SIZE ...]
"""
import json
import sys
import time

import _interpchannels as channels
import _interpreters as interpreters

REPS = int(sys.argv[1])
SIZES = [int(s) for s in sys.argv[2:]]
BATCH = 64


def measure(sub, cid, payload, send, ops):
    """Nanoseconds per item: the main interpreter sends `ops` items in batches, the
    subinterpreter receives and drops each batch (its releases run back in main)."""
    recv_code = (
        "import _interpchannels as c\n"
        f"for _ in range({BATCH}):\n"
        f"    obj, _ = c.recv({int(cid)})\n"
        "    del obj\n"
    )
    start = time.perf_counter_ns()
    done = 0
    while done < ops:
        for _ in range(BATCH):
            send(cid, payload, blocking=False)
        interpreters.exec(sub, recv_code)
        done += BATCH
    return (time.perf_counter_ns() - start) / done


def main():
    sub = interpreters.create()
    interpreters.exec(sub, "import _interpreters, _interpchannels")
    cid = channels.create(3)
    results = []
    for size in SIZES:
        payload = bytearray(size)
        ops = BATCH * max(1, min(64, (64 << 20) // max(size, 1) // BATCH))
        for kind, send in (("buffer", channels.send_buffer), ("bytes", channels.send)):
            data = payload if kind == "buffer" else bytes(payload)
            measure(sub, cid, data, send, max(BATCH, ops // 10))  # warm-up, discarded
            samples = [measure(sub, cid, data, send, ops) for _ in range(REPS)]
            results.append({"size": size, "kind": kind, "ns": samples})
    channels.destroy(cid)
    interpreters.destroy(sub)
    print(json.dumps({"python": sys.version.split()[0], "results": results}))


main()
