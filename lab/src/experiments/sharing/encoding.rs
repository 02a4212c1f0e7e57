//! The deep copy's encoding (standing for CPython's pickle): [`Encoder`] and [`decode`]
//! for the bytes, [`encode_dict`] and [`decode_dict`] between them and a dict.

use xinterp::{Obj, Token};

/// Builds the length-prefixed encoding the deep-copy mode sends: the entry count (`u64`,
/// little-endian), then per entry the key's length in bytes (`u32`), its UTF-8 bytes and
/// the value (`i64`).
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
    count: u64,
}

impl Encoder {
    /// An encoder with room for about `entries` entries of short keys.
    pub fn with_capacity(entries: usize) -> Self {
        let mut buf = Vec::with_capacity(8 + entries * 20);
        buf.extend_from_slice(&0u64.to_le_bytes());
        Encoder { buf, count: 0 }
    }

    /// Appends one entry.
    pub fn push(&mut self, key: &str, value: i64) {
        if self.buf.is_empty() {
            self.buf.extend_from_slice(&0u64.to_le_bytes());
        }
        let len = u32::try_from(key.len()).expect("a key shorter than 4 GiB");
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(&value.to_le_bytes());
        self.count += 1;
    }

    /// The encoding.
    pub fn finish(mut self) -> Vec<u8> {
        if self.buf.is_empty() {
            self.buf.extend_from_slice(&0u64.to_le_bytes());
        }
        self.buf[..8].copy_from_slice(&self.count.to_le_bytes());
        self.buf
    }
}

/// Reads an encoding made by [`Encoder`], calling `each(key, value)` per entry in order;
/// returns the number of entries. Fails, naming the offset, on a truncated encoding, a key
/// that is not UTF-8, or bytes after the last entry (`each` has then seen the entries
/// before the fault).
pub fn decode(bytes: &[u8], mut each: impl FnMut(&str, i64)) -> Result<u64, String> {
    fn take<'a>(bytes: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8], String> {
        let end = at
            .checked_add(n)
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| format!("truncated encoding: {n} bytes wanted at offset {at}"))?;
        let part = &bytes[*at..end];
        *at = end;
        Ok(part)
    }
    let mut at = 0;
    let count = u64::from_le_bytes(take(bytes, &mut at, 8)?.try_into().expect("8 bytes"));
    for _ in 0..count {
        let len = u32::from_le_bytes(take(bytes, &mut at, 4)?.try_into().expect("4 bytes"));
        let key_at = at;
        let key = std::str::from_utf8(take(bytes, &mut at, len as usize)?)
            .map_err(|e| format!("the key at offset {key_at} is not UTF-8: {e}"))?;
        let value = i64::from_le_bytes(take(bytes, &mut at, 8)?.try_into().expect("8 bytes"));
        each(key, value);
    }
    if at != bytes.len() {
        return Err(format!(
            "{} bytes after the last of {count} entries",
            bytes.len() - at
        ));
    }
    Ok(count)
}

/// Encodes a dict of str keys and int values (the deep copy's "pickle"): its keys, then
/// each key's value, read through the library's public API.
pub fn encode_dict(dict: &Obj<'_>) -> xinterp::Result<Vec<u8>> {
    let keys = dict.iterate()?;
    let mut enc = Encoder::with_capacity(keys.len());
    for key in &keys {
        let value = dict.getitem(key)?.as_int()?;
        enc.push(&key.to_rust_string()?, value);
    }
    Ok(enc.finish())
}

/// Builds a new dict in `tok`'s interpreter from an encoding made by [`encode_dict`] (the
/// deep copy's "unpickle").
pub fn decode_dict<'t>(tok: &'t Token<'_>, bytes: &[u8]) -> Result<Obj<'t>, String> {
    let dict = tok.dict();
    let mut failed = None;
    decode(bytes, |key, value| {
        if failed.is_none() {
            if let Err(e) = dict.setitem(&tok.str(key), &tok.int(value)) {
                failed = Some(e.to_string());
            }
        }
    })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(dict),
    }
}

#[cfg(test)]
mod tests {
    use xinterp::Runtime;

    use super::super::dict::{build, value_of};
    use super::*;

    fn decoded(bytes: &[u8]) -> Result<Vec<(String, i64)>, String> {
        let mut out = Vec::new();
        let count = decode(bytes, |k, v| out.push((k.to_string(), v)))?;
        assert_eq!(count as usize, out.len());
        Ok(out)
    }

    #[test]
    fn the_deep_copy_encoding_round_trips() {
        let entries: Vec<(String, i64)> = vec![
            ("k0".into(), 0),
            (String::new(), -1),
            ("clé 🔑".into(), i64::MAX),
            ("k".repeat(300), i64::MIN),
        ];
        let mut enc = Encoder::with_capacity(entries.len());
        for (k, v) in &entries {
            enc.push(k, *v);
        }
        let bytes = enc.finish();
        assert_eq!(
            bytes.len(),
            8 + entries.iter().map(|(k, _)| 12 + k.len()).sum::<usize>()
        );
        assert_eq!(decoded(&bytes).unwrap(), entries);
        // Nothing encoded: the count alone.
        assert_eq!(Encoder::default().finish(), 0u64.to_le_bytes());
        assert_eq!(decoded(&Encoder::default().finish()).unwrap(), []);
    }

    #[test]
    fn a_bad_encoding_is_refused_with_its_offset() {
        let mut enc = Encoder::default();
        enc.push("key", 7);
        let bytes = enc.finish();
        for cut in 0..bytes.len() {
            let err = decoded(&bytes[..cut]).unwrap_err();
            assert!(err.contains("truncated"), "{cut}: {err}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decoded(&long).unwrap_err().contains("1 bytes after"));
        let mut bad = bytes.clone();
        bad[12] = 0xff; // the key's first byte
        assert!(decoded(&bad).unwrap_err().contains("offset 12"));
        let mut huge = bytes;
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decoded(&huge).unwrap_err().contains("truncated"));
    }

    #[test]
    fn a_dict_survives_encoding_and_decoding_into_another_interpreter() {
        let rt = Runtime::new();
        let other = rt.create().unwrap();
        let bytes = rt
            .enter(rt.main(), |tok| {
                let d = build(tok, 500);
                assert_eq!(d.len().unwrap(), 500);
                encode_dict(&d).unwrap()
            })
            .unwrap();
        rt.enter(other, |tok| {
            let d = decode_dict(tok, &bytes).unwrap();
            assert_eq!(d.len().unwrap(), 500);
            for i in [0, 1, 499] {
                let v = d.getitem(&tok.str(&format!("k{i}"))).unwrap();
                assert_eq!(v.as_int().unwrap(), value_of(i));
            }
            // Encoding the copy again gives the same bytes (insertion order is kept).
            assert_eq!(encode_dict(&d).unwrap(), bytes);
        })
        .unwrap();
    }
}
