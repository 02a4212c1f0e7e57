//! Property test: random sequences of channel operations (the model the `channel_ops` fuzz
//! target runs) leave every interpreter clean. Replays the fuzzer's saved corpus too.

mod common;
use common::Rng;

#[path = "../fuzz/fuzz_targets/channel_ops_model.rs"]
mod channel_ops_model;

#[test]
fn random_channel_operation_sequences_leave_everything_clean() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (runs, max_len) = if cfg!(miri) { (3, 24) } else { (300, 200) };
    for _ in 0..runs {
        let len = (rng.next() % max_len) as usize;
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        channel_ops_model::run(&data);
    }
}

/// Every input the fuzzer saved for `target` (the corpus must not be empty).
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    assert!(!inputs.is_empty(), "the saved {target} corpus is empty");
    inputs
}

#[test]
#[cfg_attr(
    miri,
    ignore = "reads the corpus from disk, which Miri's isolation forbids"
)]
fn the_fuzz_corpus_replays_clean() {
    for data in corpus("channel_ops") {
        channel_ops_model::run(&data);
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "reads the corpus from disk, which Miri's isolation forbids"
)]
fn the_decoder_fuzz_corpus_replays_clean() {
    // INV-MSG-VALIDATE: every saved input decodes to an error or re-encodes to itself.
    for data in corpus("decode") {
        if let Ok(decoded) = xinterp::ObjectRef::decode(&data) {
            assert_eq!(&decoded.encode()[..], &data[..]);
        }
    }
}
