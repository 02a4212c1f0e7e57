//! `repr` and `str`, with Python's formatting of strings, bytes and floats.

use super::{Body, Forward, Obj};
use crate::error::Result;

impl<'t> Obj<'t> {
    /// `repr(x)`.
    pub fn repr(&self) -> Result<String> {
        if let Some(r) = self.forwarded(Forward::Repr, &[]) {
            return r?.to_rust_string();
        }
        if let Some(result) = self.call_special("__repr__", &[]) {
            return result?.to_rust_string();
        }
        Ok(match self.body() {
            Body::None => "None".into(),
            Body::Bool(b) => if *b { "True" } else { "False" }.into(),
            Body::Int(i) => i.to_string(),
            Body::Float(f) => repr_float(*f),
            Body::Str(s) => repr_str(s),
            Body::Bytes { data, .. } => repr_bytes(data),
            Body::ByteArray { .. } => format!("bytearray({})", repr_bytes(&self.to_bytes()?)),
            Body::Tuple(_) => {
                let items = self.items_snapshot()?;
                let parts = items.iter().map(Obj::repr).collect::<Result<Vec<_>>>()?;
                if parts.len() == 1 {
                    format!("({},)", parts[0])
                } else {
                    format!("({})", parts.join(", "))
                }
            }
            Body::List(_) => {
                let items = self.items_snapshot()?;
                let parts = items.iter().map(Obj::repr).collect::<Result<Vec<_>>>()?;
                format!("[{}]", parts.join(", "))
            }
            Body::Dict(_) => {
                let parts = self
                    .dict_items()?
                    .iter()
                    .map(|(k, v)| Ok(format!("{}: {}", k.repr()?, v.repr()?)))
                    .collect::<Result<Vec<_>>>()?;
                format!("{{{}}}", parts.join(", "))
            }
            Body::Class(def) => format!("<class '{}'>", def.name()),
            Body::Instance { .. } => {
                format!("<{} object at {:#x}>", self.type_name(), self.id())
            }
            Body::BoundMethod { name, .. } => {
                let receiver = self.receiver().expect("a bound method");
                format!("<bound method {name} of {}>", receiver.repr()?)
            }
            Body::View(_) | Body::ReceivedView(_) => format!("<memory at {:#x}>", self.id()),
            Body::Unbound => "<unbound item>".into(),
            Body::Proxy(_) => unreachable!("forwarded above"),
        })
    }

    /// `str(x)`.
    pub fn str(&self) -> Result<String> {
        if let Some(r) = self.forwarded(Forward::Str, &[]) {
            return r?.to_rust_string();
        }
        if let Some(result) = self.call_special("__str__", &[]) {
            return result?.to_rust_string();
        }
        match self.body() {
            Body::Str(s) => Ok(s.to_string()),
            _ => self.repr(),
        }
    }
}

fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn repr_bytes(data: &[u8]) -> String {
    let quote = if data.contains(&b'\'') && !data.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::from("b");
    out.push(quote as char);
    for &b in data {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b if b == quote => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(quote as char);
    out
}

fn repr_float(value: f64) -> String {
    if value.is_nan() {
        "nan".into()
    } else if value.is_infinite() {
        if value > 0.0 { "inf" } else { "-inf" }.into()
    } else if value == 0.0 || (1e-4..1e16).contains(&value.abs()) {
        format!("{value:?}")
    } else {
        // Python writes the exponent with a sign and at least two digits: 1e+16, 1e-05.
        let text = format!("{value:e}");
        let (mantissa, exponent) = text.split_once('e').expect("`{:e}` has an exponent");
        let exponent: i32 = exponent.parse().expect("`{:e}` exponents are integers");
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::{repr_bytes, repr_float, repr_str};

    #[test]
    fn reprs_follow_python() {
        assert_eq!(repr_str("it's"), "\"it's\"");
        assert_eq!(repr_str("a\nb"), "'a\\nb'");
        assert_eq!(repr_bytes(b"a\x00'"), "b\"a\\x00'\"");
        assert_eq!(repr_float(1.0), "1.0");
        assert_eq!(repr_float(0.1), "0.1");
        assert_eq!(repr_float(1e16), "1e+16");
        assert_eq!(repr_float(1.5e-5), "1.5e-05");
        assert_eq!(repr_float(f64::NEG_INFINITY), "-inf");
    }
}
