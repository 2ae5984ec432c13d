//! Numbers in config.xml, two ways:
//!
//! * strict ([`ProjectConfig::seconds`], [`ProjectConfig::int_in`]): the
//!   keys only our programs read (durations, limits, sizes). A value that
//!   is not a number, or outside what the key can mean, is a
//!   configuration error naming the key, so the program refuses to start
//!   (exit 1) instead of panicking on it or quietly running with another
//!   limit than the admin wrote;
//! * lenient ([`ProjectConfig::int`], [`ProjectConfig::bool`]): keys BOINC's
//!   own programs read too, read as they read them (an unparsable number
//!   is the default, a boolean that is not a number is false), but said at
//!   WARN, naming the key, once per key and process.

use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::config::{ConfigError, ProjectConfig};

/// The longest duration any key may give: 7 days.
pub const MAX_SECS: f64 = 7.0 * 86_400.0;
/// The shortest non-zero duration: 1 ms.
pub const MIN_SECS: f64 = 0.001;

impl ProjectConfig {
    /// `<key>` as seconds (fractions allowed), None when the key is absent.
    /// Anything but a number from 1 ms to 7 days (or 0 where `zero_ok`) is
    /// an error naming the key: text, NaN, infinities, negative numbers,
    /// `1e30` (which `Duration` cannot hold), an empty element.
    pub fn seconds(&self, key: &str, zero_ok: bool) -> Result<Option<Duration>, ConfigError> {
        let Some(v) = self.str(key) else {
            return Ok(None);
        };
        let expected = || {
            format!(
                "a number of seconds from {}{MIN_SECS} to {MAX_SECS} (7 days)",
                if zero_ok { "0 or " } else { "" }
            )
        };
        let secs: f64 = v.parse().map_err(|_| bad(key, v, expected()))?;
        let ok =
            secs.is_finite() && ((zero_ok && secs == 0.0) || (MIN_SECS..=MAX_SECS).contains(&secs));
        if !ok {
            return Err(bad(key, v, expected()));
        }
        Ok(Some(Duration::from_secs_f64(secs)))
    }

    /// `<key>` as a whole number within `range`, None when the key is
    /// absent; anything else is an error naming the key.
    pub fn int_in(
        &self,
        key: &str,
        range: RangeInclusive<i64>,
    ) -> Result<Option<i64>, ConfigError> {
        let Some(v) = self.str(key) else {
            return Ok(None);
        };
        match v.parse::<i64>() {
            Ok(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(bad(
                key,
                v,
                format!("a whole number from {} to {}", range.start(), range.end()),
            )),
        }
    }

    /// `<key>` as a whole number; None when absent, or (said at WARN once)
    /// when it is not one: the caller's default applies, as in BOINC.
    pub fn int(&self, key: &str) -> Option<i64> {
        let v = self.str(key)?;
        match v.parse() {
            Ok(n) => Some(n),
            Err(_) => {
                warn_once(key, v, "is not a whole number; the default applies");
                None
            }
        }
    }

    /// BOINC booleans: `<x/>` and `<x>1</x>` (any non-zero number) are
    /// true; `<x>0</x>` or absent false. Anything else is false, as BOINC
    /// reads it, and said at WARN once (`<x>true</x>` is false!).
    pub fn bool(&self, key: &str) -> bool {
        match self.str(key) {
            None => false,
            Some("") => true,
            Some(v) => match v.parse::<i64>() {
                Ok(n) => n != 0,
                Err(_) => {
                    warn_once(
                        key,
                        v,
                        "is not a number; read as false, as BOINC reads it \
                         (write <KEY/> or <KEY>1</KEY> for true)",
                    );
                    false
                }
            },
        }
    }
}

fn bad(key: &str, value: &str, expected: String) -> ConfigError {
    ConfigError::Value {
        key: key.to_owned(),
        value: shown(value),
        expected,
    }
}

/// A value for a message: quoted, control characters escaped, cut short.
fn shown(v: &str) -> String {
    let cut: String = v.chars().take(40).collect();
    if cut.len() < v.len() {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}

/// Keys already warned about in this process.
fn warn_once(key: &str, value: &str, what: &str) {
    static WARNED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let first = WARNED
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .map(|mut s| s.insert(key.to_owned()))
        .unwrap_or(true);
    if first {
        let what = what.replace("KEY", key);
        tracing::warn!("configuration: config.xml <{key}> {} {what}", shown(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn cfg(pairs: &[(&str, &str)]) -> ProjectConfig {
        ProjectConfig::from_pairs(PathBuf::from("."), pairs)
    }

    #[test]
    fn seconds_in_range_are_read() {
        let c = cfg(&[("a", "1.5"), ("b", " 604800 "), ("c", "0.001"), ("z", "0")]);
        assert_eq!(
            c.seconds("a", false).unwrap(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            c.seconds("b", false).unwrap(),
            Some(Duration::from_secs(604_800))
        );
        assert_eq!(
            c.seconds("c", false).unwrap(),
            Some(Duration::from_millis(1))
        );
        assert_eq!(c.seconds("z", true).unwrap(), Some(Duration::ZERO));
        assert_eq!(c.seconds("missing", false).unwrap(), None);
    }

    #[test]
    fn seconds_out_of_range_or_not_numbers_name_the_key() {
        for v in [
            "1e30",
            "1e400",
            "-1",
            "-0.5",
            "0",
            "0.0009",
            "604800.5",
            "NaN",
            "nan",
            "inf",
            "-inf",
            "infinity",
            "ten",
            "10s",
            "",
            "1,5",
            "0x10",
            "\u{1b}[31m",
        ] {
            let e = cfg(&[("rpc_request_timeout", v)])
                .seconds("rpc_request_timeout", false)
                .unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.starts_with("config.xml <rpc_request_timeout>: "),
                "{v:?}: {msg}"
            );
            assert!(
                msg.contains("is not a number of seconds from 0.001 to 604800"),
                "{msg}"
            );
            assert!(!msg.contains('\u{1b}'), "{msg:?}");
        }
        assert!(cfg(&[("k", "-1")]).seconds("k", true).is_err());
        assert!(cfg(&[("k", "1e30")]).seconds("k", true).is_err());
    }

    #[test]
    fn whole_numbers_in_range_or_an_error_naming_the_key() {
        let c = cfg(&[
            ("n", "5"),
            ("p", "+7"),
            ("big", "99999999999999999999"),
            ("f", "1.5"),
        ]);
        assert_eq!(c.int_in("n", 1..=10).unwrap(), Some(5));
        assert_eq!(c.int_in("p", 1..=10).unwrap(), Some(7));
        assert_eq!(c.int_in("missing", 1..=10).unwrap(), None);
        assert_eq!(
            c.int_in("n", 6..=10).unwrap_err().to_string(),
            "config.xml <n>: \"5\" is not a whole number from 6 to 10"
        );
        for k in ["big", "f"] {
            assert!(c
                .int_in(k, 0..=i64::MAX)
                .unwrap_err()
                .to_string()
                .contains(&format!("<{k}>")));
        }
    }

    #[test]
    fn lenient_numbers_and_booleans_read_as_boinc_does() {
        let c = cfg(&[
            ("a", ""),
            ("b", "1"),
            ("c", "0"),
            ("d", "2"),
            ("e", "true"),
            ("f", "x"),
        ]);
        assert!(c.bool("a") && c.bool("b") && c.bool("d"));
        assert!(!c.bool("c") && !c.bool("e") && !c.bool("missing"));
        assert_eq!(c.int("b"), Some(1));
        assert_eq!(c.int("f"), None);
        assert_eq!(c.int("missing"), None);
    }
}
