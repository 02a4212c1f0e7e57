//! The byte encoding of an object pointer: what travels over a MemChannel when an object
//! (not its bytes) is sent. Fixed size, versioned, little-endian on every platform, with a
//! checksum, so that a receiver can reject forged, truncated or corrupted bytes before it
//! looks anything up (INV-MSG-VALIDATE). Decoding only checks the form; whether the export
//! named exists (and is not stale) is checked against the origin's export table.
//!
//! Layout (56 bytes):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `XIOP` |
//! | 4 | 1 | version (3) |
//! | 5 | 3 | reserved, zero |
//! | 8 | 8 | runtime id (unique in the process; another runtime's message is refused) |
//! | 16 | 8 | origin interpreter id |
//! | 24 | 8 | export serial (never reused in the process) |
//! | 32 | 8 | generation of the object's export-table entry |
//! | 40 | 8 | object address (a key only; never dereferenced from the bytes) |
//! | 48 | 8 | checksum of bytes 0..48, read as six little-endian words |

use std::fmt;

use crate::error::{Error, ErrorKind};

/// The size of an encoded object pointer.
pub const MESSAGE_LEN: usize = 56;

const MAGIC: [u8; 4] = *b"XIOP";
/// The bytes the checksum covers: everything before it.
const CHECKED: usize = MESSAGE_LEN - 8;
/// 3: the word-wise checksum; 2 had FNV-1a byte by byte over the same bytes.
const VERSION: u8 = 3;
/// Word 0 (bytes 0..8) of every valid message: magic, version, reserved zeros.
const HEADER: u64 = u64::from_le_bytes([MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], VERSION, 0, 0, 0]);

/// What an object-pointer message names: an export of an object in its origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    /// The runtime of the origin ([`Runtime::id`](crate::Runtime::id)): resolving the
    /// message in another runtime is refused with `WrongRuntime` (INV-RUNTIME-OWN).
    pub runtime: u64,
    /// The origin interpreter's id (within its runtime).
    pub origin: u64,
    /// The export's serial in the origin's export table.
    pub serial: u64,
    /// The generation of that entry.
    pub generation: u64,
    /// The object's address (compared, never dereferenced).
    pub addr: u64,
}

/// Why bytes are not a valid object-pointer message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not exactly [`MESSAGE_LEN`] bytes.
    Length(usize),
    /// The first four bytes are not `XIOP`.
    Magic,
    /// A version this build does not read.
    Version(u8),
    /// Reserved bytes are not zero.
    Reserved,
    /// The checksum does not match the content.
    Checksum,
    /// The address cannot be an object's (zero, or not 8-byte aligned).
    Address(u64),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Length(n) => {
                write!(f, "an object pointer is {MESSAGE_LEN} bytes, got {n}")
            }
            DecodeError::Magic => f.write_str("not an object pointer (bad magic)"),
            DecodeError::Version(v) => write!(
                f,
                "object pointer version {v} is not supported (this build reads version {VERSION})"
            ),
            DecodeError::Reserved => f.write_str("object pointer has non-zero reserved bytes"),
            DecodeError::Checksum => f.write_str("object pointer is corrupted (checksum)"),
            DecodeError::Address(a) => {
                write!(f, "object pointer names an impossible address {a:#x}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Error {
        Error::new(ErrorKind::InvalidMessage, e.to_string())
    }
}

const MIX_A: u64 = 0x9e37_79b9_7f4a_7c15;
const MIX_B: u64 = 0xbf58_476d_1ce4_e5b9;

/// The checksum of the six words of bytes 0..48 (`words[0]` is always `HEADER` here: decode
/// checks those bytes first). Each step `h = mix(h ^ w)` multiplies by odd constants and
/// xor-shifts, each a bijection, so a change confined to one word (any bit, any byte)
/// always changes the sum; a final mix spreads the last word. It guards against
/// corruption, not forgery.
fn checksum(words: &[u64; 6]) -> u64 {
    let mut h: u64 = 0x243f_6a88_85a3_08d3;
    for &w in words {
        h = (h ^ w).wrapping_mul(MIX_A);
        h ^= h >> 32;
        h = h.wrapping_mul(MIX_B);
    }
    h ^= h >> 32;
    h = h.wrapping_mul(MIX_A);
    h ^ (h >> 29)
}

impl ObjectRef {
    /// The six words the checksum covers.
    fn words(&self) -> [u64; 6] {
        [
            HEADER,
            self.runtime,
            self.origin,
            self.serial,
            self.generation,
            self.addr,
        ]
    }

    /// The message bytes.
    pub fn encode(&self) -> [u8; MESSAGE_LEN] {
        let words = self.words();
        let sum = checksum(&words);
        let mut out = [0u8; MESSAGE_LEN];
        for (i, word) in words.into_iter().chain([sum]).enumerate() {
            out[8 * i..8 * i + 8].copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    /// Reads message bytes, checking their form only (INV-MSG-VALIDATE).
    pub fn decode(bytes: &[u8]) -> Result<ObjectRef, DecodeError> {
        let bytes: &[u8; MESSAGE_LEN] = bytes
            .try_into()
            .map_err(|_| DecodeError::Length(bytes.len()))?;
        if bytes[0..4] != MAGIC {
            return Err(DecodeError::Magic);
        }
        if bytes[4] != VERSION {
            return Err(DecodeError::Version(bytes[4]));
        }
        if bytes[5..8] != [0, 0, 0] {
            return Err(DecodeError::Reserved);
        }
        // Little-endian explicitly: the format is the same on every platform.
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(w)
        };
        let read = ObjectRef {
            runtime: word(8),
            origin: word(16),
            serial: word(24),
            generation: word(32),
            addr: word(40),
        };
        if word(CHECKED) != checksum(&read.words()) {
            return Err(DecodeError::Checksum);
        }
        if read.addr == 0 || read.addr % 8 != 0 {
            return Err(DecodeError::Address(read.addr));
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ObjectRef {
        ObjectRef {
            runtime: 5,
            origin: 3,
            serial: 17,
            generation: 2,
            addr: 0x7f00_dead_bee0,
        }
    }

    #[test]
    fn round_trips() {
        // INV-MSG-VALIDATE: what encode writes, decode reads back.
        let r = sample();
        assert_eq!(ObjectRef::decode(&r.encode()), Ok(r));
    }

    #[test]
    fn the_encoding_is_little_endian_everywhere() {
        // The whole message, checksum included, is fixed on every platform (Miri runs this
        // on a big-endian target too).
        let bytes = sample().encode();
        assert_eq!(&bytes[0..8], b"XIOP\x03\0\0\0");
        assert_eq!(&bytes[8..16], &5u64.to_le_bytes());
        assert_eq!(&bytes[16..24], &3u64.to_le_bytes());
        assert_eq!(&bytes[40..48], &0x7f00_dead_bee0u64.to_le_bytes());
        assert_eq!(&bytes[48..56], &CHECKSUM_OF_SAMPLE.to_le_bytes());
    }

    /// The checksum `sample()` encodes with, computed once and pinned: it changes only with
    /// the format (and then the version).
    const CHECKSUM_OF_SAMPLE: u64 = 0xb218_39da_c9bd_d30d;

    #[test]
    fn a_version_2_message_is_refused() {
        // INV-MSG-VALIDATE: `sample()` as the previous format encoded it (FNV-1a checksum),
        // a well-formed version-2 message, is refused for its version.
        let v2 = *b"XIOP\x02\0\0\0\x05\0\0\0\0\0\0\0\x03\0\0\0\0\0\0\0\x11\0\0\0\0\0\0\0\
                    \x02\0\0\0\0\0\0\0\xe0\xbe\xad\xde\x00\x7f\0\0\x0a\x3d\x96\x10\x8c\xce\x9f\x87";
        let fnv1a = v2[..CHECKED]
            .iter()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
        assert_eq!(
            v2[CHECKED..],
            fnv1a.to_le_bytes(),
            "a valid version-2 message"
        );
        assert_eq!(ObjectRef::decode(&v2), Err(DecodeError::Version(2)));
        let err: Error = DecodeError::Version(2).into();
        assert_eq!(
            err.message(),
            "object pointer version 2 is not supported (this build reads version 3)"
        );
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        // INV-MSG-VALIDATE: corruption anywhere is caught before any lookup.
        let good = sample().encode();
        for byte in 0..MESSAGE_LEN {
            for bit in 0..8 {
                let mut bad = good;
                bad[byte] ^= 1 << bit;
                assert!(ObjectRef::decode(&bad).is_err(), "byte {byte} bit {bit}");
            }
        }
    }

    #[test]
    fn every_single_byte_change_is_rejected() {
        // INV-MSG-VALIDATE: a change confined to one checksum word is always caught (each
        // step of the checksum is a bijection), whatever the byte's new value.
        let good = sample().encode();
        let step = if cfg!(miri) { 37 } else { 1 };
        for byte in 0..MESSAGE_LEN {
            for delta in (1..=255u8).step_by(step) {
                let mut bad = good;
                bad[byte] ^= delta;
                assert!(ObjectRef::decode(&bad).is_err(), "byte {byte} ^ {delta:#x}");
            }
        }
    }

    #[test]
    fn malformed_input_gets_a_precise_error() {
        let good = sample().encode();
        assert_eq!(ObjectRef::decode(&good[..55]), Err(DecodeError::Length(55)));
        assert_eq!(ObjectRef::decode(&[0; 57]), Err(DecodeError::Length(57)));
        let mut bad = good;
        bad[0] = b'Y';
        assert_eq!(ObjectRef::decode(&bad), Err(DecodeError::Magic));
        let mut bad = good;
        bad[4] = 1;
        assert_eq!(ObjectRef::decode(&bad), Err(DecodeError::Version(1)));
        let unaligned = ObjectRef {
            addr: 0x1001,
            ..sample()
        };
        assert_eq!(
            ObjectRef::decode(&unaligned.encode()),
            Err(DecodeError::Address(0x1001))
        );
        let err: Error = DecodeError::Checksum.into();
        assert_eq!(err.kind(), ErrorKind::InvalidMessage);
    }

    #[test]
    fn random_bytes_never_decode() {
        // A property over pseudo-random inputs (xorshift; deterministic): random bytes of
        // any length are rejected, never accepted.
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let rounds = if cfg!(miri) { 200 } else { 100_000 };
        for _ in 0..rounds {
            let len = (next() % 64) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            assert!(ObjectRef::decode(&bytes).is_err());
        }
    }

    /// Valid messages of this version for the decode fuzz target's corpus, shaped like the
    /// target's one live export (runtime 1, origin 1, serial and generation 2, an unknown
    /// address), and variations of it.
    fn decode_fuzz_seeds() -> [(&'static str, ObjectRef); 7] {
        let live = ObjectRef {
            runtime: 1,
            origin: 1,
            serial: 2,
            generation: 2,
            addr: 0x1000,
        };
        [
            ("this-runtime", live),
            ("other-runtime", ObjectRef { runtime: 2, ..live }),
            (
                "runtime-0",
                ObjectRef {
                    runtime: 0,
                    addr: 0x7f00_0000_1000,
                    ..live
                },
            ),
            ("unknown-origin", ObjectRef { origin: 77, ..live }),
            (
                "max-serial",
                ObjectRef {
                    serial: u64::MAX,
                    generation: u64::MAX,
                    ..live
                },
            ),
            ("addr-0", ObjectRef { addr: 0, ..live }),
            (
                "addr-unaligned",
                ObjectRef {
                    addr: 0x1001,
                    ..live
                },
            ),
        ]
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "reads the corpus from disk, which Miri's isolation forbids"
    )]
    fn the_decode_fuzz_corpus_holds_messages_of_this_version() {
        // With XINTERP_WRITE_DECODE_SEEDS set, (re)writes the seeds first (after a format
        // change): `XINTERP_WRITE_DECODE_SEEDS=1 cargo test -p xinterp --lib message`.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
        if std::env::var_os("XINTERP_WRITE_DECODE_SEEDS").is_some() {
            for (name, seed) in decode_fuzz_seeds() {
                let path = dir.join(format!("seed-v{VERSION}-{name}"));
                std::fs::write(&path, seed.encode()).unwrap();
            }
        }
        let valid = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
            .filter(|data| ObjectRef::decode(data).is_ok())
            .count();
        assert!(
            valid > 0,
            "no input in {} is a valid version-{VERSION} message: write the seeds with \
             XINTERP_WRITE_DECODE_SEEDS=1 cargo test -p xinterp --lib message",
            dir.display()
        );
    }
}
