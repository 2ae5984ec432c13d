//! Request parameters: a query string or a form body, decoded once.

use std::collections::HashMap;

use crate::error::RpcError;

/// Decoded `name=value` pairs. A name given twice keeps its last value
/// (as PHP's `$_GET`/`$_POST`). A pair that is not text (not UTF-8, or
/// holding a NUL byte) is kept out and noted, so `check` refuses the
/// request naming it instead of the value reaching a handler, libcrypt or
/// the database altered or as an error of ours.
#[derive(Debug, Clone, Default)]
pub struct Params {
    map: HashMap<String, String>,
    /// Names in the order first sent (so the first problem is reported).
    order: Vec<String>,
    /// What was wrong with pairs that are not text, in the order sent.
    problems: Vec<String>,
}

impl Params {
    /// `application/x-www-form-urlencoded` (also a query string): `&`
    /// separates pairs, `+` is a space, `%XX` a byte.
    pub fn parse(raw: &[u8]) -> Self {
        let mut p = Self::default();
        for pair in raw.split(|b| *b == b'&').filter(|s| !s.is_empty()) {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[..0]),
            };
            let (name, value) = (form_decode(name), form_decode(value));
            let name = match text(name) {
                Ok(n) => n,
                Err(why) => {
                    p.problems.push(format!("a parameter name {why}"));
                    continue;
                }
            };
            match text(value) {
                Ok(v) => p.insert(name, v),
                Err(why) => p.problems.push(format!("{} {why}", shown(&name))),
            }
        }
        p
    }

    fn insert(&mut self, name: String, value: String) {
        if !self.map.contains_key(&name) {
            self.order.push(name.clone());
        }
        self.map.insert(name, value);
    }

    /// Query pairs overridden by body pairs.
    pub fn merged(query: Params, body: Params) -> Self {
        let mut m = query;
        for name in body.order {
            if let Some(v) = body.map.get(&name) {
                m.insert(name, v.clone());
            }
        }
        m.problems.extend(body.problems);
        m
    }

    /// Every pair was text and none is longer than `max` bytes (name or
    /// value); else -1 naming the first offending parameter.
    pub fn check(&self, max: usize) -> Result<(), RpcError> {
        if let Some(p) = self.problems.first() {
            return Err(RpcError::generic(p.clone()));
        }
        for name in &self.order {
            if name.len() > max {
                return Err(RpcError::generic(format!(
                    "a parameter name is too long (at most {max} bytes)"
                )));
            }
            let len = self.map.get(name).map_or(0, String::len);
            if len > max {
                return Err(RpcError::generic(format!(
                    "{} is too long ({len} bytes given, at most {max} bytes)",
                    shown(name)
                )));
            }
        }
        Ok(())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// Present (possibly empty).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// Present and non-empty (PHP's truthiness for optional strings).
    pub fn nonempty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// A required parameter: missing or empty is an error naming it.
    pub fn required(&self, name: &'static str) -> Result<&str, RpcError> {
        self.nonempty(name).ok_or(RpcError::MissingParam(name))
    }

    /// An optional whole number (upstream's `get_int($name, true)`): None
    /// when missing or empty; anything but an optionally signed run of
    /// ASCII digits that fits an i64 is an error naming it (upstream
    /// redirects such a request to an error page).
    pub fn int(&self, name: &'static str) -> Result<Option<i64>, RpcError> {
        match self.nonempty(name) {
            None => Ok(None),
            Some(v) => parse_int(v).map(Some).ok_or(RpcError::MissingParam(name)),
        }
    }

    /// A required whole number (upstream's `get_int($name)`).
    pub fn required_int(&self, name: &'static str) -> Result<i64, RpcError> {
        self.int(name)?.ok_or(RpcError::MissingParam(name))
    }
}

/// `[+-]?[0-9]+` as an i64; nothing else (no blanks, exponents, fractions).
pub fn parse_int(v: &str) -> Option<i64> {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// Percent-decode one form component to bytes (`+` is a space; a `%`
/// not followed by two hex digits is itself).
fn form_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Bytes a parameter may carry: UTF-8 (lone surrogates and overlong forms
/// are not) without NUL (C strings, libcrypt and MariaDB cut or refuse it).
fn text(bytes: Vec<u8>) -> Result<String, &'static str> {
    let s = String::from_utf8(bytes).map_err(|_| "is not valid UTF-8")?;
    if s.contains('\0') {
        return Err("contains a NUL byte");
    }
    Ok(s)
}

/// A parameter name for a message (and so for the log line that carries
/// it): as sent when it is short printable ASCII, else quoted with its
/// control characters escaped and cut, so a name cannot forge log lines.
fn shown(name: &str) -> String {
    if name.len() <= 64 && name.bytes().all(|b| b.is_ascii_graphic()) {
        return name.to_owned();
    }
    let cut: String = name.chars().take(64).collect();
    format!("{cut:?}")
}

/// A `0`/`1` flag parameter; anything else is refused (consent must be
/// explicit, never guessed from an empty or odd value).
pub fn flag(name: &str, v: &str) -> Result<bool, RpcError> {
    match v {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(RpcError::generic(format!("{name} must be 0 or 1"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_only() {
        assert_eq!(parse_int("42"), Some(42));
        assert_eq!(parse_int("-7"), Some(-7));
        assert_eq!(parse_int("+7"), Some(7));
        for bad in [
            "",
            "-",
            "1.5",
            "1e3",
            " 1",
            "1 ",
            "0x10",
            "abc",
            "99999999999999999999",
        ] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }

    fn refusal(raw: &[u8], max: usize) -> Option<String> {
        Params::parse(raw).check(max).err().map(|e| {
            assert_eq!(e.error_num(), -1);
            e.to_string()
        })
    }

    #[test]
    fn decodes_like_a_form() {
        let p = Params::parse(b"a=1&b=x+y%20z&c&d=&&e=%41%4a%zz%4&a=2&f=%e2%82%ac");
        assert_eq!(p.get("a"), Some("2"), "last value wins");
        assert_eq!(p.get("b"), Some("x y z"));
        assert_eq!(p.get("c"), Some(""));
        assert_eq!(p.get("d"), Some(""));
        assert_eq!(p.get("e"), Some("AJ%zz%4"));
        assert_eq!(p.get("f"), Some("€"));
        assert!(p.check(64).is_ok());
    }

    #[test]
    fn bytes_that_are_not_text_are_refused_by_name() {
        for (raw, msg) in [
            (&b"passwd_hash=%00"[..], "passwd_hash contains a NUL byte"),
            (b"user_name=a%00b", "user_name contains a NUL byte"),
            (b"email_addr=%FF", "email_addr is not valid UTF-8"),
            (b"email_addr=\xff", "email_addr is not valid UTF-8"),
            // A lone surrogate (U+D800) and an overlong NUL as UTF-8.
            (b"venue=%ED%A0%80", "venue is not valid UTF-8"),
            (b"venue=%C0%80", "venue is not valid UTF-8"),
            (b"x=1&name=%C3", "name is not valid UTF-8"),
            (b"%FF=1", "a parameter name is not valid UTF-8"),
            (b"a%00b=1", "a parameter name contains a NUL byte"),
            (b"%1B%5B31m=%00", "\"\\u{1b}[31m\" contains a NUL byte"),
            (b"a%0Ab=%FF", "\"a\\nb\" is not valid UTF-8"),
        ] {
            assert_eq!(refusal(raw, 64).as_deref(), Some(msg), "{raw:?}");
        }
        // The first problem in the order sent.
        assert_eq!(
            refusal(b"b=%00&a=%FF", 64).as_deref(),
            Some("b contains a NUL byte")
        );
    }

    #[test]
    fn over_long_names_and_values_are_refused_by_name() {
        assert_eq!(
            refusal(b"ok=1&venue=123456", 5).as_deref(),
            Some("venue is too long (6 bytes given, at most 5 bytes)")
        );
        assert_eq!(
            refusal(b"abcdef=1", 5).as_deref(),
            Some("a parameter name is too long (at most 5 bytes)")
        );
        assert!(Params::parse(b"abcde=12345").check(5).is_ok());
    }

    #[test]
    fn merging_keeps_body_values_and_every_problem() {
        let q = Params::parse(b"a=1&b=2");
        let b = Params::parse(b"b=3&c=%00");
        let m = Params::merged(q, b);
        assert_eq!((m.get("a"), m.get("b")), (Some("1"), Some("3")));
        assert_eq!(
            m.check(64).unwrap_err().to_string(),
            "c contains a NUL byte"
        );
    }
}
