//! The consent-type operations. Every change and its audit row are written
//! in one transaction, so the audit trail can't miss a change.

use std::path::{Path, PathBuf};

use boinc_db::consent::types::{self as q, AuditEntry, NewAudit};
use boinc_db::models::ConsentType;
use boinc_db::mysql_async::{self, Pool, TxOpts};
use boinc_db::DbError;

/// Column limits of `consent_type` (characters, utf8mb4).
pub const SHORTNAME_MAX: usize = 191;
pub const DESCRIPTION_MAX: usize = 255;
/// Longest actor name the audit table holds.
const ACTOR_MAX: usize = 191;

/// What both front ends say when asked to delete a consent type.
pub const DELETE_EXPLANATION: &str = "Consent types cannot be deleted. \
Every consent a volunteer gave or withdrew refers to its consent type; that \
history is an audit trail the project may be legally required to keep (for \
example to show under the GDPR who agreed to what, and when). Deleting a type \
would orphan or destroy that record, so neither these tools nor the database \
allow it. To stop using a type, disable it: `boinc-ops consent-type disable \
SHORTNAME` or the Disable button on the ops page. A disabled type is no longer \
offered or required, and its history stays intact.";

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("invalid short name {0:?}: {1}")]
    InvalidShortname(String, &'static str),
    #[error("invalid description: {0}")]
    InvalidDescription(&'static str),
    #[error("a consent type named {0} already exists")]
    Duplicate(String),
    #[error("no consent type named {0:?}")]
    UnknownType(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<mysql_async::Error> for OpsError {
    fn from(e: mysql_async::Error) -> Self {
        OpsError::Db(DbError::Mysql(e))
    }
}

impl OpsError {
    /// A refusal caused by the request (as opposed to the database failing).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, OpsError::Db(_))
    }
}

/// Result of enable/disable/privacypref: the type after the call, and
/// whether anything changed (setting a flag to its current value is a
/// no-op and writes no audit row).
#[derive(Debug, Clone)]
pub struct Change {
    pub consent_type: ConsentType,
    pub changed: bool,
}

/// ALLCAPS letters, digits and `_`; non-empty; at most 191 characters.
pub fn validate_shortname(name: &str) -> Result<(), OpsError> {
    let bad = |why| Err(OpsError::InvalidShortname(name.to_owned(), why));
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.chars().any(char::is_whitespace) {
        return bad("it must not contain spaces");
    }
    if name.chars().count() > SHORTNAME_MAX {
        return bad("it is longer than 191 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    {
        return bad("use only capital letters A-Z, digits and _ (for example MY_CONSENT)");
    }
    Ok(())
}

/// Non-blank, at most 255 characters, no control characters and no
/// invisible bidi/format characters (they would reorder or hide text on
/// the ops page and in every report that shows the description).
pub fn validate_description(desc: &str) -> Result<(), OpsError> {
    if desc.trim().is_empty() {
        return Err(OpsError::InvalidDescription("it is empty"));
    }
    if desc.chars().count() > DESCRIPTION_MAX {
        return Err(OpsError::InvalidDescription(
            "it is longer than 255 characters",
        ));
    }
    if desc.chars().any(crate::terminal::is_unsafe) {
        return Err(OpsError::InvalidDescription(
            "it must not contain control characters (newlines, tabs, ...) or invisible \
             formatting characters (bidi overrides, zero-width characters)",
        ));
    }
    Ok(())
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn flag(v: i64) -> &'static str {
    if v != 0 {
        "1"
    } else {
        "0"
    }
}

/// The operations. Cheap to clone (the pool is shared); no caching, so a
/// change is visible to the RPC server as soon as it commits.
#[derive(Clone)]
pub struct ConsentOps {
    pool: Pool,
    terms_file: Option<PathBuf>,
}

impl ConsentOps {
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            terms_file: None,
        }
    }

    /// The project's terms-of-use file, so the consent report can say which
    /// stored version is the current one.
    pub fn with_terms_file(mut self, path: PathBuf) -> Self {
        self.terms_file = Some(path);
        self
    }

    pub fn terms_file(&self) -> Option<&Path> {
        self.terms_file.as_deref()
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub async fn list(&self) -> Result<Vec<ConsentType>, OpsError> {
        let mut conn = self.pool.get_conn().await?;
        Ok(boinc_db::queries::consent_types(&mut conn).await?)
    }

    pub async fn get(&self, shortname: &str) -> Result<ConsentType, OpsError> {
        let mut conn = self.pool.get_conn().await?;
        boinc_db::queries::consent_type_by_name(&mut conn, shortname)
            .await?
            .filter(|ct| ct.shortname == shortname)
            .ok_or_else(|| OpsError::UnknownType(shortname.to_owned()))
    }

    /// Add a project-specific type (disabled, privacypref off).
    pub async fn add(
        &self,
        actor: &str,
        shortname: &str,
        description: &str,
    ) -> Result<ConsentType, OpsError> {
        validate_shortname(shortname)?;
        validate_description(description)?;
        let description = description.trim();
        let mut tx = self.pool.start_transaction(TxOpts::default()).await?;
        // A plain read for the common case; no locking read here, since
        // locking a missing row takes gap locks that make concurrent adds
        // deadlock. The unique index settles races below.
        if boinc_db::queries::consent_type_by_name(&mut tx, shortname)
            .await?
            .is_some()
        {
            return Err(OpsError::Duplicate(shortname.to_owned()));
        }
        let id = match q::insert(&mut tx, shortname, description).await {
            Ok(id) => id,
            // A concurrent add won the race; the unique index refused ours.
            Err(e) if e.is_duplicate_key() => {
                return Err(OpsError::Duplicate(shortname.to_owned()))
            }
            Err(e) => return Err(e.into()),
        };
        q::insert_audit(
            &mut tx,
            &NewAudit {
                change_time: boinc_db::now(),
                actor: &clip(actor, ACTOR_MAX),
                consent_type_id: id,
                shortname,
                action: "add",
                old_value: "",
                new_value: description,
            },
        )
        .await?;
        let ct = q::by_id(&mut tx, id)
            .await?
            .ok_or(DbError::Missing("inserted consent type"))?;
        tx.commit().await?;
        tracing::info!(actor, shortname, "consent type added");
        Ok(ct)
    }

    pub async fn set_enabled(
        &self,
        actor: &str,
        shortname: &str,
        on: bool,
    ) -> Result<Change, OpsError> {
        self.set_flag(actor, shortname, Flag::Enabled, on).await
    }

    pub async fn set_privacypref(
        &self,
        actor: &str,
        shortname: &str,
        on: bool,
    ) -> Result<Change, OpsError> {
        self.set_flag(actor, shortname, Flag::PrivacyPref, on).await
    }

    async fn set_flag(
        &self,
        actor: &str,
        shortname: &str,
        which: Flag,
        on: bool,
    ) -> Result<Change, OpsError> {
        let mut tx = self.pool.start_transaction(TxOpts::default()).await?;
        let ct = q::by_name_for_update(&mut tx, shortname)
            .await?
            // The column's collation is case-insensitive; names are exact here.
            .filter(|ct| ct.shortname == shortname)
            .ok_or_else(|| OpsError::UnknownType(shortname.to_owned()))?;
        let old = match which {
            Flag::Enabled => ct.enabled,
            Flag::PrivacyPref => ct.privacypref,
        };
        if (old != 0) == on {
            tx.rollback().await?;
            return Ok(Change {
                consent_type: ct,
                changed: false,
            });
        }
        match which {
            Flag::Enabled => q::set_enabled(&mut tx, ct.id, on).await?,
            Flag::PrivacyPref => q::set_privacypref(&mut tx, ct.id, on).await?,
        }
        let action = match (which, on) {
            (Flag::Enabled, true) => "enable",
            (Flag::Enabled, false) => "disable",
            (Flag::PrivacyPref, true) => "privacypref_on",
            (Flag::PrivacyPref, false) => "privacypref_off",
        };
        q::insert_audit(
            &mut tx,
            &NewAudit {
                change_time: boinc_db::now(),
                actor: &clip(actor, ACTOR_MAX),
                consent_type_id: ct.id,
                shortname: &ct.shortname,
                action,
                old_value: flag(old),
                new_value: if on { "1" } else { "0" },
            },
        )
        .await?;
        let after = q::by_id(&mut tx, ct.id)
            .await?
            .ok_or(DbError::Missing("consent type"))?;
        tx.commit().await?;
        tracing::info!(actor, shortname, action, "consent type changed");
        Ok(Change {
            consent_type: after,
            changed: true,
        })
    }

    /// Audit rows, newest first. An unknown name is an error only if the
    /// type does not exist now (types are never deleted, so that's a typo).
    pub async fn history(
        &self,
        shortname: Option<&str>,
        limit: u64,
    ) -> Result<Vec<AuditEntry>, OpsError> {
        let mut conn = self.pool.get_conn().await?;
        if let Some(name) = shortname {
            if boinc_db::queries::consent_type_by_name(&mut conn, name)
                .await?
                .is_none_or(|ct| ct.shortname != name)
            {
                return Err(OpsError::UnknownType(name.to_owned()));
            }
        }
        Ok(q::audit_history(&mut conn, shortname, limit).await?)
    }
}

#[derive(Clone, Copy)]
enum Flag {
    Enabled,
    PrivacyPref,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortname_rules() {
        assert!(validate_shortname("MY_TYPE2").is_ok());
        for bad in [
            "",
            "lower",
            "Mixed",
            "HAS SPACE",
            " LEAD",
            "DASH-X",
            "ÄÖ",
            "TAB\t",
        ] {
            assert!(validate_shortname(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_shortname(&"A".repeat(191)).is_ok());
        assert!(validate_shortname(&"A".repeat(192)).is_err());
    }

    #[test]
    fn description_rules() {
        assert!(validate_description("Fine <b>text</b> é").is_ok());
        assert!(validate_description("").is_err());
        assert!(validate_description("   ").is_err());
        assert!(validate_description("a\nb").is_err());
        assert!(validate_description("a\u{202e}b").is_err());
        assert!(validate_description("a\u{200b}b").is_err());
        assert!(validate_description(&"é".repeat(255)).is_ok());
        assert!(validate_description(&"é".repeat(256)).is_err());
    }
}
