//! Which optional profile fields a project shows: config.xml's
//! `user_country` and `user_url`. The one place their default is decided,
//! and it differs by reader on purpose:
//!
//! * the web RPCs (am_set_info accepting the fields, show_user showing
//!   them) follow BOINC's PHP (`html/inc/util.inc`): an absent key means
//!   on, so a project that never wrote the keys behaves as it does under
//!   upstream's own pages;
//! * db_dump follows SPEC section 2 (booleans: absent is false): a stats
//!   file publishes country and URL only where the admin asked for it, so
//!   upgrading never widens what goes public. (Upstream's C++ exporter
//!   defaults both to on since 2018; a project that wants that writes the
//!   keys.)

use crate::ProjectConfig;

/// Whether country and URL are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileFields {
    pub country: bool,
    pub url: bool,
}

impl ProfileFields {
    /// For the web RPCs: a key that is absent means on (BOINC's PHP).
    pub fn web(cfg: &ProjectConfig) -> Self {
        let on = |key: &str| cfg.str(key).is_none() || cfg.bool(key);
        Self {
            country: on("user_country"),
            url: on("user_url"),
        }
    }

    /// For db_dump: a key that is absent means off (SPEC section 2).
    pub fn dump(cfg: &ProjectConfig) -> Self {
        Self {
            country: cfg.bool("user_country"),
            url: cfg.bool("user_url"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_means_on_for_the_web_and_off_for_the_dump() {
        let none = ProjectConfig::from_pairs(".".into(), &[]);
        assert_eq!(
            ProfileFields::web(&none),
            ProfileFields {
                country: true,
                url: true
            }
        );
        assert_eq!(
            ProfileFields::dump(&none),
            ProfileFields {
                country: false,
                url: false
            }
        );
        let set = ProjectConfig::from_pairs(".".into(), &[("user_country", "0"), ("user_url", "")]);
        let web = ProfileFields::web(&set);
        assert!(!web.country && web.url, "{web:?}");
        let dump = ProfileFields::dump(&set);
        assert!(!dump.country && dump.url, "{dump:?}");
    }
}
