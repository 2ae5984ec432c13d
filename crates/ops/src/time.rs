//! UTC timestamps as ops shows them, in one place: the CLI (`cmd/`), the
//! reports and histories (`consent_records.rs`), the account export
//! (`account/`) and the web page all print times through these. A leaf:
//! it imports nothing from this crate.

/// `2026-01-31 12:00:00 UTC`; the number itself if out of range.
pub fn utc(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// `2026-01-31` (the day in UTC, for a time axis); empty if out of range.
pub fn utc_date(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_769_860_800), "2026-01-31 12:00:00 UTC");
        assert_eq!(utc(i64::MAX), i64::MAX.to_string());
        assert_eq!(utc_date(1_769_860_800), "2026-01-31");
        assert_eq!(utc_date(i64::MAX), "");
    }
}
