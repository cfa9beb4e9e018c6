//! The header of a `.npy` file is a Python dict literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`. This is a small parser for
//! exactly the literal forms NumPy writes (strings, booleans, integers, tuples and lists), so the
//! reader never evaluates or guesses at anything else.

/// The three facts a `.npy` header records.
#[derive(Debug, PartialEq)]
pub(crate) struct NpyHeader {
    /// The NumPy type string, e.g. `<f4`.
    pub descr: String,
    /// Whether the data is stored column-major.
    pub fortran_order: bool,
    /// Extent of each axis.
    pub shape: Vec<usize>,
}

/// A Python literal value.
#[derive(Debug, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    Int(u64),
    Seq(Vec<Value>),
}

/// Parses a header; the error is a human-readable description of the first problem found.
pub(crate) fn parse(text: &str) -> Result<NpyHeader, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    p.skip_ws();
    p.expect(b'{')?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        p.skip_ws();
        if p.eat(b'}') {
            break;
        }
        let key = match p.value(0)? {
            Value::Str(k) => k,
            other => return Err(format!("header key {other:?} is not a string")),
        };
        p.skip_ws();
        p.expect(b':')?;
        let value = p.value(0)?;
        match (key.as_str(), value) {
            ("descr", Value::Str(s)) => descr = Some(s),
            ("descr", Value::Seq(_)) => {
                return Err("structured (record) arrays are not supported".into())
            }
            ("fortran_order", Value::Bool(b)) => fortran = Some(b),
            ("shape", Value::Seq(dims)) => {
                let mut out = Vec::with_capacity(dims.len());
                for d in dims {
                    match d {
                        Value::Int(n) => out.push(
                            usize::try_from(n).map_err(|_| format!("axis length {n} too large"))?,
                        ),
                        other => return Err(format!("shape entry {other:?} is not an integer")),
                    }
                }
                shape = Some(out);
            }
            (k @ ("descr" | "fortran_order" | "shape"), v) => {
                return Err(format!("header entry '{k}' has unexpected value {v:?}"))
            }
            _ => {} // Unknown keys are ignored, as NumPy itself tolerates them.
        }
        p.skip_ws();
        if !p.eat(b',') {
            p.skip_ws();
            p.expect(b'}')?;
            break;
        }
    }
    Ok(NpyHeader {
        descr: descr.ok_or("header has no 'descr' entry")?,
        fortran_order: fortran.ok_or("header has no 'fortran_order' entry")?,
        shape: shape.ok_or("header has no 'shape' entry")?,
    })
}

/// Nesting depth at which the parser gives up (guards against stack exhaustion).
const MAX_DEPTH: usize = 32;

/// A cursor over the header bytes.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!(
                "expected '{}' at header offset {} but found {}",
                char::from(c),
                self.i,
                self.peek()
                    .map_or("the end".to_string(), |b| format!("'{}'", char::from(b)))
            ))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err("header nests too deeply".into());
        }
        self.skip_ws();
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => {
                self.i += 1;
                let start = self.i;
                while self.peek().is_some_and(|c| c != q) {
                    self.i += 1;
                }
                let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                self.expect(q)?;
                Ok(Value::Str(text))
            }
            Some(open @ (b'(' | b'[')) => {
                self.i += 1;
                let close = if open == b'(' { b')' } else { b']' };
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if self.eat(close) {
                        return Ok(Value::Seq(items));
                    }
                    items.push(self.value(depth + 1)?);
                    self.skip_ws();
                    if !self.eat(b',') {
                        self.skip_ws();
                        self.expect(close)?;
                        return Ok(Value::Seq(items));
                    }
                }
            }
            Some(b'0'..=b'9') => {
                let start = self.i;
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.i += 1;
                }
                let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                let n = digits
                    .parse::<u64>()
                    .map_err(|_| format!("integer {digits} too large"))?;
                self.eat(b'L'); // Python 2 long suffix, seen in old files.
                Ok(Value::Int(n))
            }
            Some(b'-') => Err("negative axis length in shape".into()),
            _ if self.s[self.i..].starts_with(b"True") => {
                self.i += 4;
                Ok(Value::Bool(true))
            }
            _ if self.s[self.i..].starts_with(b"False") => {
                self.i += 5;
                Ok(Value::Bool(false))
            }
            _ => Err(format!("unexpected text in header at offset {}", self.i)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numpy_headers() {
        let h = parse("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }   \n").unwrap();
        assert_eq!(h.descr, "<f4");
        assert!(!h.fortran_order);
        assert_eq!(h.shape, vec![3, 4]);
        let h = parse("{'descr':'|b1','fortran_order':True,'shape':(7,)}").unwrap();
        assert_eq!((h.fortran_order, h.shape), (true, vec![7]));
        let h = parse("{\"shape\": (), \"fortran_order\": False, \"descr\": \">i8\"}").unwrap();
        assert!(h.shape.is_empty());
        let h = parse("{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 3L), }").unwrap();
        assert_eq!(h.shape, vec![2, 3]);
    }

    #[test]
    fn rejects_bad_headers() {
        for bad in [
            "",
            "{'descr': '<f4', 'fortran_order': False}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, -1)}",
            "{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}",
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
            "{'descr': '<f4 ",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)",
            &format!("{{'x': {}", "(".repeat(100)),
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
