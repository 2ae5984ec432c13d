//! Typed rows of BOINC's tables, as far as these components read them.

use mysql_async::prelude::FromRow;

/// Columns of `user` read by the RPCs (see `queries::USER_COLUMNS`).
#[derive(Debug, Clone, FromRow)]
pub struct User {
    pub id: i64,
    pub create_time: i64,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub email_addr: String,
    #[mysql(deserialize_with = "crate::text::charset::opt_string")]
    pub name: Option<String>,
    #[mysql(deserialize_with = "crate::text::charset::opt_string")]
    pub authenticator: Option<String>,
    #[mysql(deserialize_with = "crate::text::charset::opt_string")]
    pub country: Option<String>,
    #[mysql(deserialize_with = "crate::text::charset::opt_string")]
    pub postal_code: Option<String>,
    pub total_credit: f64,
    pub expavg_credit: f64,
    pub expavg_time: f64,
    pub global_prefs: Option<Vec<u8>>,
    pub project_prefs: Option<Vec<u8>>,
    pub teamid: i64,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub venue: String,
    #[mysql(deserialize_with = "crate::text::charset::opt_string")]
    pub url: Option<String>,
    pub send_email: i64,
    pub show_hosts: i64,
    pub posts: i64,
    pub has_profile: i64,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub cross_project_id: String,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub passwd_hash: String,
    #[mysql(deserialize_with = "crate::text::charset::string")]
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
    /// Cross-project id as stats sites see it: [`cpid_hex`].
    pub fn cpid(&self) -> String {
        cpid_string(&self.cross_project_id, &self.email_addr)
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct Team {
    pub id: i64,
    pub userid: i64,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub name: String,
    pub joinable: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct ConsentType {
    pub id: i64,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub shortname: String,
    #[mysql(deserialize_with = "crate::text::charset::string")]
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
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub source: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct Platform {
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub name: String,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub user_friendly_name: String,
    #[mysql(deserialize_with = "crate::text::charset::string")]
    pub plan_class: String,
}

/// The cross-project id stats sites see for an account: md5 of
/// cross_project_id followed by email_addr (the bytes as stored), in lower
/// case hex. The one implementation: RPC replies, public lookups and
/// db_dump's files.
pub fn cpid_hex(cross_project_id: &[u8], email_addr: &[u8]) -> [u8; 32] {
    use md5::{Digest, Md5};
    let digest = Md5::new()
        .chain_update(cross_project_id)
        .chain_update(email_addr)
        .finalize();
    let mut hex = [0u8; 32];
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in digest.iter().enumerate() {
        hex[2 * i] = DIGITS[usize::from(b >> 4)];
        hex[2 * i + 1] = DIGITS[usize::from(b & 15)];
    }
    hex
}

/// [`cpid_hex`] as a `String`.
pub fn cpid_string(cross_project_id: &str, email_addr: &str) -> String {
    cpid_hex(cross_project_id.as_bytes(), email_addr.as_bytes())
        .into_iter()
        .map(char::from)
        .collect()
}

/// Names of the predefined consent types.
pub const CONSENT_ENROLL: &str = "ENROLL";
pub const CONSENT_STATSEXPORT: &str = "STATSEXPORT";

/// BOINC marks a deleted (obfuscated) account by an authenticator that
/// starts with this (`deleted_<time>_<random>`, see `erase`). The marker's
/// one owner: the checks below in Rust and in SQL. (Here, beside `User`,
/// so that lookups and the erasure both use it without importing each
/// other.)
pub const DELETED_PREFIX: &str = "deleted";

/// Is this account deleted (obfuscated)?
pub fn is_deleted(u: &User) -> bool {
    is_deleted_key(u.authenticator())
}

/// The same rule on the authenticator alone: exact bytes. Only our own
/// erase and BOINC's write the marker, always in lower case.
pub fn is_deleted_key(authenticator: &str) -> bool {
    authenticator.starts_with(DELETED_PREFIX)
}

/// SQL: the authenticator column `col` carries the marker (LIKE:
/// case-insensitive under the default collation, as upstream's own
/// checks; NULL when `col` is NULL).
pub fn deleted_sql(col: &str) -> String {
    format!("{col} LIKE '{DELETED_PREFIX}%'")
}

/// SQL: the account whose authenticator column is `col` is not deleted
/// (a NULL authenticator is not deleted).
pub fn live_sql(col: &str) -> String {
    format!("({col} IS NULL OR {col} NOT LIKE '{DELETED_PREFIX}%')")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpid_is_md5_of_concatenation() {
        // md5("abc") = 900150983cd24fb0d6963f7d28e17f72
        assert_eq!(&cpid_hex(b"a", b"bc"), b"900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn cpid_string_is_cpid_hex() {
        let (x, e) = ("0123456789abcdef0123456789abcdef", "J\u{f6}rg@example.com");
        assert_eq!(
            cpid_string(x, e).as_bytes(),
            cpid_hex(x.as_bytes(), e.as_bytes())
        );
        assert_eq!(
            cpid_string(x, e),
            crate::password::md5_hex(&format!("{x}{e}"))
        );
    }
}
