//! Numbers as people read them on the ops page: thousands separators and a
//! share next to a count ("692,458 (69.9%)"). The page is in English, so
//! the separator is a comma whatever the server's locale.

/// `1234567` -> `1,234,567`; `-1234` -> `-1,234`.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `part` of `whole` with one decimal: `69.9%`. Rounding never claims all
/// or none when that is not so ("99.9%" for 99.96%, "<0.1%" for 0.04%),
/// and an empty whole has no share ("-").
pub fn percent(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "-".to_owned();
    }
    let p = part as f64 * 100.0 / whole as f64;
    let shown = format!("{p:.1}");
    if part > 0 && part < whole && shown == "0.0" {
        "<0.1%".to_owned()
    } else if part > 0 && part < whole && shown == "100.0" {
        "99.9%".to_owned()
    } else {
        format!("{shown}%")
    }
}

/// `692,458 (69.9%)`
pub fn count_share(part: i64, whole: i64) -> String {
    format!("{} ({})", count(part), percent(part, whole))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(count(0), "0");
        assert_eq!(count(7), "7");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(692_458), "692,458");
        assert_eq!(count(1_000_000), "1,000,000");
        assert_eq!(count(-1234), "-1,234");
        assert_eq!(count(i64::MIN), "-9,223,372,036,854,775,808");
        assert_eq!(count(i64::MAX), "9,223,372,036,854,775,807");
    }

    #[test]
    fn shares_have_one_decimal_and_never_round_to_all_or_none() {
        assert_eq!(percent(692_458, 990_000), "69.9%");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(2, 3), "66.7%");
        assert_eq!(percent(0, 5), "0.0%");
        assert_eq!(percent(5, 5), "100.0%");
        assert_eq!(percent(9_999, 10_000), "99.9%");
        assert_eq!(percent(19_999, 20_000), "99.9%");
        assert_eq!(percent(1, 10_000), "<0.1%");
        assert_eq!(percent(1, 0), "-");
        assert_eq!(count_share(692_458, 990_000), "692,458 (69.9%)");
        assert_eq!(count_share(0, 0), "0 (-)");
    }
}
