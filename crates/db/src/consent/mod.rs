//! Consent: the rules every writer and reader of the `consent` history
//! shares, each written once.
//!
//! * [`decide`]: what a requested change does (refused ENROLL withdrawal,
//!   disabled or unknown type, a row only when the flag differs), for
//!   am_set_info alone and for the grouped path ([`group`]) alike.
//! * [`latest`]: which row is a user's current one (latest
//!   `consent_time`, ties broken by id, the later insert winning), in SQL
//!   and as reads.
//! * [`insert`]: the one `INSERT INTO consent` (the history is append-only:
//!   nothing here or anywhere updates or deletes a consent row).

pub mod group;
pub mod insert;
pub mod latest;
pub mod report;
pub mod terms;
pub mod types;

pub use insert::{insert, NewConsent};

use crate::models::CONSENT_ENROLL;

/// What a requested consent change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Append a row: the flag differs from the latest one (or there is none).
    Record,
    /// Nothing to write: the latest row already says this.
    AlreadyLatest,
    /// A withdrawal of ENROLL, which only deleting the account does:
    /// refused, nothing written.
    EnrollWithdrawal,
    /// The type exists but is disabled: nothing written, a warning.
    Disabled,
    /// No type has exactly this name: nothing written, a warning.
    UnknownType,
}

/// The consent type a change names, as found by its exact name.
#[derive(Debug, Clone, Copy)]
pub struct FoundType<'a> {
    pub shortname: &'a str,
    pub enabled: bool,
}

/// Decide a change asking for `flag` of the type `found` (None: no type
/// has exactly the name sent), whose latest stored flag for this user is
/// `latest` (None: no row yet). Decided on the type found, never on the
/// text sent; ENROLL's withdrawal is refused even when ENROLL is disabled.
pub fn decide(found: Option<FoundType<'_>>, flag: bool, latest: Option<i64>) -> Decision {
    let Some(t) = found else {
        return Decision::UnknownType;
    };
    if t.shortname == CONSENT_ENROLL && !flag {
        return Decision::EnrollWithdrawal;
    }
    if !t.enabled {
        return Decision::Disabled;
    }
    if changes_latest(latest, flag) {
        Decision::Record
    } else {
        Decision::AlreadyLatest
    }
}

/// Whether asking for `flag` changes the consent state whose latest stored
/// flag is `latest` (None: no row yet), i.e. whether a row is appended.
/// Consented means flag 1: an odd stored flag is not consent.
fn changes_latest(latest: Option<i64>, flag: bool) -> bool {
    latest.is_none_or(|stored| (stored == 1) != flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATS: FoundType<'static> = FoundType {
        shortname: "STATSEXPORT",
        enabled: true,
    };

    #[test]
    fn decisions() {
        assert_eq!(decide(None, true, None), Decision::UnknownType);
        let enroll_off = FoundType {
            shortname: CONSENT_ENROLL,
            enabled: false,
        };
        assert_eq!(
            decide(Some(enroll_off), false, Some(1)),
            Decision::EnrollWithdrawal
        );
        assert_eq!(decide(Some(enroll_off), true, None), Decision::Disabled);
        assert_eq!(decide(Some(STATS), true, None), Decision::Record);
        assert_eq!(decide(Some(STATS), true, Some(1)), Decision::AlreadyLatest);
        assert_eq!(decide(Some(STATS), false, Some(1)), Decision::Record);
        assert_eq!(decide(Some(STATS), false, Some(0)), Decision::AlreadyLatest);
        // An odd stored flag is not consent.
        assert_eq!(decide(Some(STATS), true, Some(2)), Decision::Record);
        assert_eq!(decide(Some(STATS), false, Some(2)), Decision::AlreadyLatest);
    }
}
