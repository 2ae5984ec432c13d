//! Typed rows of BOINC's tables, as far as these components read them.

use mysql_async::prelude::FromRow;

/// Columns of `user` read by the RPCs (see `queries::USER_COLUMNS`).
#[derive(Debug, Clone, FromRow)]
pub struct User {
    pub id: i64,
    pub create_time: i64,
    #[mysql(deserialize_with = "crate::charset::string")]
    pub email_addr: String,
    #[mysql(deserialize_with = "crate::charset::opt_string")]
    pub name: Option<String>,
    #[mysql(deserialize_with = "crate::charset::opt_string")]
    pub authenticator: Option<String>,
    #[mysql(deserialize_with = "crate::charset::opt_string")]
    pub country: Option<String>,
    #[mysql(deserialize_with = "crate::charset::opt_string")]
    pub postal_code: Option<String>,
    pub total_credit: f64,
    pub expavg_credit: f64,
    pub expavg_time: f64,
    pub global_prefs: Option<Vec<u8>>,
    pub project_prefs: Option<Vec<u8>>,
    pub teamid: i64,
    #[mysql(deserialize_with = "crate::charset::string")]
    pub venue: String,
    #[mysql(deserialize_with = "crate::charset::opt_string")]
    pub url: Option<String>,
    pub send_email: i64,
    pub show_hosts: i64,
    pub posts: i64,
    pub has_profile: i64,
    #[mysql(deserialize_with = "crate::charset::string")]
    pub cross_project_id: String,
    #[mysql(deserialize_with = "crate::charset::string")]
    pub passwd_hash: String,
    #[mysql(deserialize_with = "crate::charset::string")]
    pub previous_email_addr: String,
    pub email_addr_change_time: f64,
}

impl User {
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
    pub fn authenticator(&self) -> &str {
        self.authenticator.as_deref().unwrap_or("")
    }
    /// Cross-project id as stats sites see it: md5(cross_project_id . email_addr).
    pub fn cpid(&self) -> String {
        crate::cpid(&self.cross_project_id, &self.email_addr)
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct Team {
    pub id: i64,
    pub userid: i64,
    #[mysql(deserialize_with = "crate::charset::string")]
    pub name: String,
    pub joinable: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct ConsentType {
    pub id: i64,
    #[mysql(deserialize_with = "crate::charset::string")]
    pub shortname: String,
    #[mysql(deserialize_with = "crate::charset::string")]
    pub description: String,
    pub enabled: i64,
    pub project_specific: i64,
    pub privacypref: i64,
}

impl ConsentType {
    pub fn is_enabled(&self) -> bool {
        self.enabled != 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct Consent {
    pub id: i64,
    pub userid: i64,
    pub consent_type_id: i64,
    pub consent_time: i64,
    pub consent_flag: i64,
    pub consent_not_required: i64,
    #[mysql(deserialize_with = "crate::charset::string")]
    pub source: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct Platform {
    #[mysql(deserialize_with = "crate::charset::string")]
    pub name: String,
    #[mysql(deserialize_with = "crate::charset::string")]
    pub user_friendly_name: String,
    #[mysql(deserialize_with = "crate::charset::string")]
    pub plan_class: String,
}

/// Names of the predefined consent types.
pub const CONSENT_ENROLL: &str = "ENROLL";
pub const CONSENT_STATSEXPORT: &str = "STATSEXPORT";

/// Is this account deleted (obfuscated)? The same rule db_dump and the
/// consent reports use. (Here, beside `User`, so that lookups and the
/// erasure both use it without importing each other.)
pub fn is_deleted(u: &User) -> bool {
    is_deleted_key(u.authenticator())
}

/// The same rule on the authenticator alone (BOINC's marker).
pub fn is_deleted_key(authenticator: &str) -> bool {
    authenticator.starts_with("deleted")
}
