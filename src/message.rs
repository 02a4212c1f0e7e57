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
//! | 4 | 1 | version (2) |
//! | 5 | 3 | reserved, zero |
//! | 8 | 8 | runtime id (unique in the process; another runtime's message is refused) |
//! | 16 | 8 | origin interpreter id |
//! | 24 | 8 | export serial (never reused in the process) |
//! | 32 | 8 | generation of the object's export-table entry |
//! | 40 | 8 | object address (a key only; never dereferenced from the bytes) |
//! | 48 | 8 | checksum of bytes 0..48 |

use std::fmt;

use crate::error::{Error, ErrorKind};

/// The size of an encoded object pointer.
pub const MESSAGE_LEN: usize = 56;

const MAGIC: [u8; 4] = *b"XIOP";
/// The bytes the checksum covers: everything before it.
const CHECKED: usize = MESSAGE_LEN - 8;
const VERSION: u8 = 2;

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
            DecodeError::Version(v) => write!(f, "object pointer version {v} is not supported"),
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

/// FNV-1a over the content, widened: cheap, and any single flipped bit changes it.
fn checksum(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

impl ObjectRef {
    /// The message bytes.
    pub fn encode(&self) -> [u8; MESSAGE_LEN] {
        let mut out = [0u8; MESSAGE_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        let words = [
            self.runtime,
            self.origin,
            self.serial,
            self.generation,
            self.addr,
        ];
        for (i, word) in words.into_iter().enumerate() {
            out[8 + 8 * i..16 + 8 * i].copy_from_slice(&word.to_le_bytes());
        }
        let sum = checksum(&out[..CHECKED]);
        out[CHECKED..].copy_from_slice(&sum.to_le_bytes());
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
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(w)
        };
        if word(CHECKED) != checksum(&bytes[..CHECKED]) {
            return Err(DecodeError::Checksum);
        }
        let addr = word(40);
        if addr == 0 || addr % 8 != 0 {
            return Err(DecodeError::Address(addr));
        }
        Ok(ObjectRef {
            runtime: word(8),
            origin: word(16),
            serial: word(24),
            generation: word(32),
            addr,
        })
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
        let bytes = sample().encode();
        assert_eq!(&bytes[0..5], b"XIOP\x02");
        assert_eq!(&bytes[8..16], &5u64.to_le_bytes());
        assert_eq!(&bytes[16..24], &3u64.to_le_bytes());
        assert_eq!(&bytes[40..48], &0x7f00_dead_bee0u64.to_le_bytes());
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
}
