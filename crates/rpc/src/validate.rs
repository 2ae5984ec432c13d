//! Input rules shared by the RPCs (lengths, user names, email syntax,
//! countries, prefs).

use boinc_db::text::charset::Charset;
use boinc_db::text::columns::{self, Column};

use crate::error::RpcError;
use crate::params::Params;

/// Longest value the `user.name` / `user.email_addr` columns hold.
const MAX_NAME_CHARS: usize = columns::USER_NAME.max;
const MAX_EMAIL_CHARS: usize = columns::USER_EMAIL_ADDR.max;

/// The error an over-long value gets: the RPC's own number where BOINC has
/// one for the field, else -1.
#[derive(Debug, Clone, Copy)]
enum TooLong {
    Generic,
    UserName,
    Email,
}

/// Every RPC parameter whose value is stored, with the column it is stored
/// in: the one place the RPCs' length limits come from (the columns' sizes
/// come from `boinc_db::text::columns`, checked against the schema).
const STORED: &[(&str, Column, TooLong)] = &[
    ("email_addr", columns::USER_EMAIL_ADDR, TooLong::Email),
    ("user_name", columns::USER_NAME, TooLong::UserName),
    ("name", columns::USER_NAME, TooLong::UserName),
    ("country", columns::USER_COUNTRY, TooLong::Generic),
    ("postal_code", columns::USER_POSTAL_CODE, TooLong::Generic),
    ("url", columns::USER_URL, TooLong::Generic),
    ("venue", columns::USER_VENUE, TooLong::Generic),
    ("global_prefs", columns::USER_GLOBAL_PREFS, TooLong::Generic),
    (
        "project_prefs",
        columns::USER_PROJECT_PREFS,
        TooLong::Generic,
    ),
    ("source", columns::CONSENT_SOURCE, TooLong::Generic),
    ("consent_source", columns::CONSENT_SOURCE, TooLong::Generic),
];

/// Refuse `value` of parameter `name` if its column cannot hold it, with a
/// message naming the parameter. Parameters that are not stored pass.
/// Counts as a utf8mb4 database does (characters); a value that passes
/// here may still be too long for a legacy latin1 database (`fits_in`).
pub fn fits(name: &str, value: &str) -> Result<(), RpcError> {
    fits_in(name, value, Charset::Utf8mb4)
}

/// `fits` for a database talking `cs` (latin1: bytes).
pub fn fits_in(name: &str, value: &str, cs: Charset) -> Result<(), RpcError> {
    let Some((_, col, kind)) = STORED.iter().find(|(n, _, _)| *n == name) else {
        return Ok(());
    };
    if col.fits_in(value, cs) {
        return Ok(());
    }
    let msg = format!(
        "{name} is too long ({} {unit} given, at most {} {unit})",
        col.len_in(value, cs),
        col.max,
        unit = col.unit_name_in(cs)
    );
    Err(match kind {
        TooLong::Generic => RpcError::Generic(msg),
        TooLong::UserName => RpcError::BadUserName(msg),
        TooLong::Email => RpcError::BadEmail(Some(msg)),
    })
}

/// `fits` for each of `names` that `p` carries (in the order given).
pub fn lengths(p: &Params, names: &[&str]) -> Result<(), RpcError> {
    for name in names {
        if let Some(v) = p.get(name) {
            fits(name, v)?;
        }
    }
    Ok(())
}

/// The byte check a legacy latin1 database adds once the session's
/// character set is known (a no-op on utf8mb4): each (parameter, value)
/// that is set, in the order given.
pub fn stored_in(cs: Charset, values: &[(&str, Option<&str>)]) -> Result<(), RpcError> {
    if cs == Charset::Utf8mb4 {
        return Ok(());
    }
    for (name, v) in values {
        if let Some(v) = v {
            fits_in(name, v, cs)?;
        }
    }
    Ok(())
}

/// A country from BOINC's list, or empty; else upstream's -1.
pub fn country(name: &str) -> Result<(), RpcError> {
    if boinc_db::text::countries::is_valid(name) {
        Ok(())
    } else {
        Err(RpcError::generic("invalid country"))
    }
}

/// BOINC's user-name rules, each with its own message (-188).
pub fn user_name(name: &str) -> Result<(), RpcError> {
    let bad = |m: &str| Err(RpcError::BadUserName(m.to_owned()));
    if name.is_empty() {
        return bad("user name must be nonempty");
    }
    let is_ws = |c: char| c.is_whitespace() || c == '\0';
    if name.starts_with(is_ws) || name.ends_with(is_ws) {
        return bad("user name cannot have leading or trailing white space");
    }
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, '<' | '>' | '&' | '"' | '\''))
    {
        return bad("user name may not contain special characters");
    }
    if is_numeric(name) {
        return bad("user name may not be a number");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return bad("user name is too long");
    }
    Ok(())
}

/// PHP's is_numeric() for strings without surrounding white space:
/// optional sign, digits with an optional point, optional exponent.
pub fn is_numeric(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let exp_start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j == exp_start {
            return false;
        }
        i = j;
    }
    i == b.len()
}

/// Email syntax close to PHP's FILTER_VALIDATE_EMAIL: a dot-atom local
/// part and a dotted host name whose last label starts with a letter.
pub fn email_syntax(addr: &str) -> bool {
    if addr.chars().count() > MAX_EMAIL_CHARS || !addr.is_ascii() {
        return false;
    }
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return false;
    };
    if local.is_empty() || local.len() > 64 {
        return false;
    }
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    if local
        .split('.')
        .any(|part| part.is_empty() || !part.chars().all(atext))
    {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || domain.len() > 253 {
        return false;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !labels.iter().all(|l| label_ok(l)) {
        return false;
    }
    labels
        .last()
        .and_then(|l| l.chars().next())
        .is_some_and(|c| c.is_ascii_alphabetic())
}

/// BOINC's cursory preferences check: starts with the start tag, ends
/// with the end tag, has a line break. Returns why not.
pub fn prefs_problem(text: &str, start: &str, end: &str) -> Option<&'static str> {
    let t = text.trim();
    if !t.starts_with(start) {
        return Some("No start tag");
    }
    if !t.ends_with(end) {
        return Some("No end tag");
    }
    if !t.contains('\n') {
        return Some("No CR");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_like_php() {
        for s in ["1", "-1", "+1.5", ".5", "5.", "1e3", "1E-3", "007"] {
            assert!(is_numeric(s), "{s}");
        }
        for s in ["", "a1", "1a", "1e", ".", "-", "inf", "NaN", "0x1A", "1 2"] {
            assert!(!is_numeric(s), "{s}");
        }
    }

    #[test]
    fn email_rules() {
        for s in [
            "a@b.co",
            "first.last+tag@sub.example.org",
            "x_y@ex-ample.com",
        ] {
            assert!(email_syntax(s), "{s}");
        }
        for s in [
            "",
            "a",
            "a@",
            "@b.co",
            "a@b",
            "a..b@c.de",
            ".a@b.co",
            "a@-b.co",
            "a@b.1c",
            "a b@c.de",
            "ü@x.de",
            "a@b..co",
        ] {
            assert!(!email_syntax(s), "{s}");
        }
    }

    #[test]
    fn stored_lengths_name_the_field() {
        assert!(fits("postal_code", &"é".repeat(254)).is_ok());
        let e = fits("postal_code", &"é".repeat(255)).unwrap_err();
        assert_eq!(e.error_num(), -1);
        assert_eq!(
            e.to_string(),
            "postal_code is too long (255 characters given, at most 254 characters)"
        );
        assert_eq!(
            fits("name", &"n".repeat(192)).unwrap_err().error_num(),
            -188
        );
        assert_eq!(
            fits("email_addr", &"e".repeat(192))
                .unwrap_err()
                .error_num(),
            -205
        );
        let prefs = "x".repeat(65535);
        assert!(fits("global_prefs", &prefs).is_ok());
        let e = fits("global_prefs", &"é".repeat(32768)).unwrap_err();
        assert!(e.to_string().contains("65536 bytes given"), "{e}");
        // Not stored: no limit here.
        assert!(fits("team_name", &"t".repeat(10_000)).is_ok());
    }

    #[test]
    fn emails_with_space_control_or_non_ascii_are_refused() {
        for s in [
            " a@b.co",
            "a@b.co ",
            "a@b.co\t",
            "a@b.co\u{a0}",
            "a@b.co\u{200b}",
            "a\u{200d}@b.co",
            "a\u{0}@b.co",
            "\u{212a}@b.co",
            "á@b.co",
        ] {
            assert!(!email_syntax(s), "{s:?}");
        }
    }

    #[test]
    fn countries() {
        assert!(country("Germany").is_ok());
        assert!(country("").is_ok());
        let e = country("Not A Country <b>").unwrap_err();
        assert_eq!(
            (e.error_num(), e.to_string().as_str()),
            (-1, "invalid country")
        );
    }

    #[test]
    fn names() {
        assert!(user_name("Alice Smith").is_ok());
        assert!(user_name("Jörg").is_ok());
        for s in [
            "", " a", "a ", "a\tb", "a<b", "a&b", "a\"b", "a'b", "42", "1.5e3",
        ] {
            assert!(user_name(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn prefs_check() {
        let s = "<global_preferences>\n</global_preferences>";
        assert_eq!(
            prefs_problem(s, "<global_preferences>", "</global_preferences>"),
            None
        );
        assert_eq!(
            prefs_problem("<x>\n</x>", "<global_preferences>", "</global_preferences>"),
            Some("No start tag")
        );
        assert_eq!(
            prefs_problem(
                "<global_preferences></global_preferences>",
                "<global_preferences>",
                "</global_preferences>"
            ),
            Some("No CR")
        );
    }
}
