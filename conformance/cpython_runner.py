"""The CPython side of the conformance check: runs the scenarios of conformance/scenarios/
against CPython's own `_interpchannels` and `_interpreters` (CPython 3.13 or newer) and
prints, as one JSON object on stdout, the outcome of every step in the shared vocabulary
(see conformance/README.md): "ok", "queued", "default", "unbound", "bytes:<data>",
"view:<data>", "count:<n>", "status:<open|closing|closed>", "interps:[a,b]",
"error:<Kind>", and, for CPython only, "crash:<signal>" when the process died in that step.

Each scenario runs in a child process of its own (this script with --one), so ids start
afresh, nothing leaks from one scenario into the next, and a scenario that crashes CPython
(a view read or dropped after its owner was destroyed) costs only its own remaining steps.

Where CPython requires it, a step runs in the interpreter it names: the child creates one
subinterpreter per name with _interpreters.create() and runs the step there with
_interpreters.exec(); the step's outcome comes back through a small reply file (a
subinterpreter shares the process's stdout, so printing is no way back). Steps that belong
to no interpreter (close, destroy, info, listing) run in the main interpreter, which uses no
channel end for them. "main" names the main interpreter itself.

The channel's default unbound policy: in CPython 3.13 the low-level send() and
send_buffer() do not apply the channel's default (given to create()); an item sent without
an explicit op gets REPLACE. The high-level API (test.support.interpreters.channels) always
passes the channel's default explicitly, so this runner does the same: every send passes the
item's own op, or else the channel's.

Usage:
    python3 cpython_runner.py --check                 exit 0 and print the version if usable
    python3 cpython_runner.py FILE.toml [FILE.toml ...] [--only NAME]
    python3 cpython_runner.py --one FILE.toml NAME    (internal: one scenario, JSON lines)
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

MIN_VERSION = (3, 13)

# The unbound ops, as _interpchannels numbers them (its high-level module's
# _UNBOUND_CONSTANT_TO_FLAG): REMOVE 1, ERROR 2, REPLACE (UNBOUND) 3.
UNBOUND_OPS = {"remove": 1, "error": 2, "replace": 3}

# A channel id that is never created in a scenario's process.
GHOST_CHANNEL = 1_000_000

# Code run in every interpreter (the main one too): the steps that must run in the
# interpreter that uses the channel end, or that owns the object they touch. Objects a step
# keeps (a bytearray it made, a view it received) live in _OBJS, by name.
STEP_CODE = r'''
import _interpchannels as _chan
import _interpreters  # receiving a memoryview needs it imported in the receiver
import json as _json

_OBJS = {}

_ERROR_KINDS = {
    "ChannelNotFoundError": "ChannelNotFound",
    "ChannelClosedError": "ChannelClosed",
    "ChannelEmptyError": "ChannelEmpty",
    "ChannelNotEmptyError": "ChannelNotEmpty",
    "TimeoutError": "Timeout",
    "InterpreterNotFoundError": "InterpreterNotFound",
    "ItemInterpreterDestroyed": "ItemInterpreterDestroyed",
    "BufferError": "BufferError",
    "TypeError": "TypeError",
    "ValueError": "ValueError",
    "IndexError": "IndexError",
}


def _error_outcome(exc):
    name = type(exc).__name__
    return "error:" + _ERROR_KINDS.get(name, "Other(%s)" % name)


def _render(data):
    out = []
    for b in bytes(data):
        if 0x20 <= b < 0x7F and b != 0x5C:
            out.append(chr(b))
        else:
            out.append("\\x%02x" % b)
    return "".join(out)


def _describe(obj):
    if type(obj) is bytes:
        return "bytes:" + _render(obj)
    if type(obj) is memoryview:
        return "view:" + _render(obj)
    return "value:" + repr(obj)


def _data(a):
    return bytes.fromhex(a["hex"]) if a.get("hex") is not None else a["bytes"].encode()


class _Default:
    pass


def _do(op, a):
    cid = a.get("cid")
    if op == "send":
        # A bytes item of a named object is a copy of its bytes, made now.
        data = bytes(_OBJS[a["obj"]]) if a.get("obj") is not None else _data(a)
        _chan.send(cid, data, a["unbound"], blocking=False)
        return "ok"
    if op == "send_buffer":
        _chan.send_buffer(cid, _OBJS[a["obj"]], a["unbound"], blocking=False)
        return "ok"
    if op == "send_wait":
        timeout = a["timeout_ms"] / 1000.0 if a.get("timeout_ms") is not None else None
        if a.get("obj") is not None:
            _chan.send_buffer(cid, _OBJS[a["obj"]], a["unbound"], blocking=True,
                              timeout=timeout)
        else:
            _chan.send(cid, _data(a), a["unbound"], blocking=True, timeout=timeout)
        return "ok"
    if op in ("recv", "recv_or"):
        default = _Default()
        if op == "recv":
            obj, unbound = _chan.recv(cid)
        else:
            obj, unbound = _chan.recv(cid, default)
        if obj is None and unbound is not None:
            # The item's sender was destroyed: the high-level API gives the UNBOUND
            # marker for REPLACE (3) and raises ItemInterpreterDestroyed for ERROR (2).
            if unbound == 2:
                return "error:ItemInterpreterDestroyed"
            return "unbound"
        if obj is default:
            return "default"
        if a.get("keep") is not None:
            _OBJS[a["keep"]] = obj
        return _describe(obj)
    if op == "release":
        end = a["end"]
        _chan.release(cid, send=end in ("send", "both"), recv=end in ("recv", "both"))
        return "ok"
    if op == "close":
        how = a["how"]
        if how == "now":
            _chan.close(cid)
        elif how == "after_drain":
            _chan.close(cid, send=True)
        else:
            _chan.close(cid, force=True)
        return "ok"
    if op == "make":
        data = _data(a)
        _OBJS[a["obj"]] = bytes(data) if a.get("kind") == "bytes" else bytearray(data)
        return "ok"
    if op == "write":
        _OBJS[a["obj"]][a["index"]] = _data(a)[0]
        return "ok"
    if op == "read":
        return "bytes:" + _render(_OBJS[a["obj"]])
    if op == "resize":
        _OBJS[a["obj"]].extend(_data(a))
        return "ok"
    if op == "drop":
        del _OBJS[a["obj"]]
        return "ok"
    raise AssertionError("unknown step op %r" % op)


def _step(op, args_json):
    try:
        return _do(op, _json.loads(args_json))
    except Exception as exc:
        return _error_outcome(exc)


def _step_to_file(op, args_json, reply_path):
    outcome = _step(op, args_json)
    with open(reply_path, "w") as reply:
        reply.write(outcome)
'''

# Ops that run in the interpreter the step names; the others run in main.
IN_INTERPRETER = {
    "send", "send_buffer", "send_wait", "recv", "recv_or", "release", "make", "write",
    "read", "resize", "drop",
}


def load_scenarios(path):
    import tomllib

    with open(path, "rb") as f:
        return tomllib.load(f).get("scenario", [])


class Scenario:
    """One scenario's interpreters, channels and background senders, in one process."""

    def __init__(self, spec):
        import _interpchannels
        import _interpreters

        self.chan = _interpchannels
        self.interp = _interpreters
        self.spec = spec
        self.tmp = tempfile.mkdtemp(prefix="xinterp-conformance-")
        self.replies = 0
        self.main_ns = {}
        exec(STEP_CODE, self.main_ns)
        main = _interpreters.get_main()
        self.ids = {"main": main[0] if isinstance(main, tuple) else main}
        for name in spec.get("interpreters", []):
            iid = _interpreters.create()
            _interpreters.exec(iid, STEP_CODE)
            self.ids[name] = iid
        self.names = {}
        for name, iid in self.ids.items():
            self.names[int(iid)] = name
        # ChannelID objects must stay alive: CPython destroys a channel when the last
        # ChannelID object referring to it dies.
        self.channel_objs = {}
        self.cids = {}
        self.defaults = {}
        for decl in spec.get("channels", []):
            self.create_channel(decl["name"], decl.get("unbound", "replace"),
                                decl.get("exists", True))
        self.tasks = {}

    def create_channel(self, name, unbound, exists=True):
        self.defaults[name] = UNBOUND_OPS[unbound]
        if not exists:
            self.cids[name] = GHOST_CHANNEL
            return
        cid = self.chan.create(UNBOUND_OPS[unbound])
        self.channel_objs[name] = cid
        self.cids[name] = int(cid)

    def args(self, step):
        a = {k: v for k, v in step.items() if k not in ("op", "expect", "note")}
        if "chan" in step:
            a["cid"] = self.cids[step["chan"]]
            own = step.get("unbound")
            a["unbound"] = UNBOUND_OPS[own] if own else self.defaults[step["chan"]]
        return a

    def run_in(self, name, op, args):
        """Runs one STEP_CODE op in interpreter `name` and returns its outcome."""
        if name == "main":
            return self.main_ns["_step"](op, json.dumps(args))
        self.replies += 1
        reply = os.path.join(self.tmp, "reply-%d" % self.replies)
        code = "_step_to_file(%r, %r, %r)" % (op, json.dumps(args), reply)
        try:
            failed = self.interp.exec(self.ids[name], code)
        except Exception as exc:  # the interpreter is gone: InterpreterNotFoundError
            return self.main_ns["_error_outcome"](exc)
        if failed is not None:
            return "error:Other(exec: %s)" % failed.msg
        with open(reply) as f:
            return f.read()

    def count(self, cid):
        return self.chan.get_info(cid).count

    def names_of(self, ids):
        return "interps:[%s]" % ",".join(sorted(self.names.get(int(i), str(i)) for i in ids))

    def step(self, step):
        op = step["op"]
        if op == "create_channel":
            self.create_channel(step["chan"], step.get("unbound", "replace"))
            return "ok"
        a = self.args(step)
        if op in IN_INTERPRETER:
            return self.run_in(step["interp"], op, a)
        try:
            return self.in_main(op, step, a)
        except Exception as exc:
            return self.main_ns["_error_outcome"](exc)

    def in_main(self, op, step, a):
        if op == "close":
            return self.run_in(step.get("interp", "main"), "close", a)
        if op == "destroy_channel":
            self.chan.destroy(a["cid"])
            return "ok"
        if op == "destroy_interp":
            self.interp.destroy(self.ids[step["interp"]])
            return "ok"
        if op == "list":
            return self.names_of(self.chan.list_interpreters(a["cid"], send=step["end"] == "send"))
        if op == "count":
            return "count:%d" % self.count(a["cid"])
        if op == "status":
            info = self.chan.get_info(a["cid"])
            return "status:" + ("closed" if info.closed else "closing" if info.closing else "open")
        if op == "send_wait_start":
            return self.start_task(step, a)
        if op == "send_wait_join":
            thread, result = self.tasks.pop(step["task"])
            thread.join()
            return result[0]
        raise AssertionError("unknown step op %r" % op)

    def start_task(self, step, a):
        """A blocking send on a thread of its own; returns once the item is queued (or
        the send has already ended)."""
        before = self.count(a["cid"])
        result = []
        thread = threading.Thread(
            target=lambda: result.append(self.run_in(step["interp"], "send_wait", a)))
        thread.start()
        self.tasks[step["task"]] = (thread, result)
        deadline = time.monotonic() + 10
        while thread.is_alive() and time.monotonic() < deadline:
            try:
                if self.count(a["cid"]) > before:
                    return "queued"
            except Exception:
                pass
            time.sleep(0.001)
        thread.join()
        return result[0] if result else "error:Other(no result)"

    def finish(self):
        """Lets go of every kept object first (a view dropped after its owner's destroy
        crashes CPython, which only the scenario that shows it should do), then destroys
        the subinterpreters."""
        for thread, _ in self.tasks.values():
            thread.join()
        self.main_ns["_OBJS"].clear()
        alive = [iid for name, iid in self.ids.items() if name != "main"]
        for code in ["_OBJS.clear()"] + ["pass"] * len(alive):
            # Each release queued on an owner runs when the owner next runs code; a view
            # of a view gives back its export in two hops.
            for iid in alive:
                try:
                    self.interp.exec(iid, code)
                except Exception:
                    pass  # destroyed by a step
        for iid in alive:
            try:
                self.interp.destroy(iid)
            except Exception:
                pass


def run_one(path, name):
    """Child mode: one scenario, one JSON line per step as it completes."""
    spec = next(s for s in load_scenarios(path) if s["name"] == name)
    world = Scenario(spec)
    for index, step in enumerate(spec["steps"]):
        outcome = world.step(step)
        print(json.dumps({"step": index, "outcome": outcome}), flush=True)
    world.finish()
    print(json.dumps({"done": True}), flush=True)


def signal_name(code):
    try:
        return signal.Signals(-code).name
    except ValueError:
        return "signal %d" % -code


def run_all(paths, only):
    results = []
    for path in paths:
        for spec in load_scenarios(path):
            if only and spec["name"] != only:
                continue
            child = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--one", path, spec["name"]],
                capture_output=True, text=True, timeout=120)
            outcomes = [None] * len(spec["steps"])
            done = False
            for line in child.stdout.splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if "step" in record:
                    outcomes[record["step"]] = record["outcome"]
                done = done or record.get("done", False)
            crash = None
            failure = None
            missing = [i for i, o in enumerate(outcomes) if o is None]
            if child.returncode < 0:
                # Killed by a signal: CPython itself crashed (a segfault, an abort).
                why = signal_name(child.returncode)
                if missing:
                    outcomes[missing[0]] = "crash:" + why
                    crash = "%s in step %d" % (why, missing[0] + 1)
                else:
                    crash = "%s at teardown, after the last step" % why
            elif child.returncode != 0 or not done:
                # This script failed: not a CPython outcome at all.
                tail = child.stderr.strip().splitlines()[-1:] or ["no message"]
                failure = "exit status %d: %s" % (child.returncode, tail[0])
                if missing:
                    outcomes[missing[0]] = "runner-error:" + failure
            for i in missing[1:]:
                outcomes[i] = "skipped:after step %d" % (missing[0] + 1)
            results.append({
                "file": os.path.basename(path),
                "name": spec["name"],
                "outcomes": outcomes,
                "crash": crash,
                "runner_error": failure,
                "stderr": child.stderr[-2000:] if child.returncode != 0 else "",
            })
    return results


def main(argv):
    if sys.version_info[:2] < MIN_VERSION:
        print("needs CPython %d.%d or newer for _interpchannels (this is %s)"
              % (MIN_VERSION + (sys.version.split()[0],)), file=sys.stderr)
        return 3
    try:
        import _interpchannels  # noqa: F401
        import _interpreters  # noqa: F401
    except ImportError as exc:
        print("no _interpchannels / _interpreters here: %s" % exc, file=sys.stderr)
        return 3
    if argv[:1] == ["--check"]:
        print(sys.version.split()[0])
        return 0
    if argv[:1] == ["--one"]:
        run_one(argv[1], argv[2])
        return 0
    only = None
    if "--only" in argv:
        at = argv.index("--only")
        only = argv[at + 1]
        argv = argv[:at] + argv[at + 2:]
    results = run_all(argv, only)
    print(json.dumps({
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "scenarios": results,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
