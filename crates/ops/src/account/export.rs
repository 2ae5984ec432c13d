//! The access request: everything the database holds about one person as
//! one self-describing document (the parts are `boinc_db::account::subject::PARTS`,
//! plus the consent record and the admin trail).
//!
//! All of it is read in one consistent snapshot (REPEATABLE READ, `START
//! TRANSACTION WITH CONSISTENT SNAPSHOT`), so the parts agree with each other
//! whatever changes meanwhile. The export's own audit row is the last
//! statement of that same transaction, and the transaction commits only
//! after the caller has staged the document (serialised it, written it to a
//! temporary file): an audit row exists if and only if an export was
//! produced. The transaction is not `READ ONLY` because of that one insert;
//! InnoDB still runs it as a read-only one (no transaction id, no undo)
//! until the insert, so the snapshot reads cost the same. Only the last step
//! of delivery (rename into place, sending the response) comes after the
//! commit: if that fails the trail shows an export nobody received, never
//! the reverse.

use boinc_db::account::audit::{self, Action, AuditRow};
use boinc_db::account::subject::{self, Row, TablePart};
use boinc_db::mysql_async::{IsolationLevel, Pool, Transaction, TxOpts};
use boinc_db::queries;
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::resolve::{resolve_on, AccountError};
use crate::consent_records::{self, CurrentState, HistoryRow, TermsDocument, UserRef};
use crate::time::utc;

pub const EXPORT_DOCUMENT: &str = "Copy of the personal data this BOINC project's database \
    holds about one account, produced for the account's owner (GDPR Art. 15 and 20). Each \
    part below is named in about.parts with the database table it comes from. Times are \
    seconds since 1970-01-01 UTC unless a field ends in _utc.";

pub const EXPORT_NOT_INCLUDED: &str = "The password hash, the account key (authenticator), \
    login tokens and the secret of one-time links are credentials, not information about you, \
    and are never exported. The input the project sent with each task (result xml_doc_in), \
    and the project's applications, work units and files, are its scientific data. Other \
    people appear only as account ids (the other side of a message or friend request, a \
    moderator, a team's founder): their names, addresses and texts are theirs, except the \
    messages and friend requests they sent you. Team credit and team badges describe the \
    whole team and are on the team's public page.";

const CONSENT_CONTENTS: &str = "Every consent record kept for the account (what you agreed \
    to or withdrew, when, and through which software), your current state per consent type, \
    and the full text of each version of the terms of use you accepted.";

const AUDIT_CONTENTS: &str = "What the project's administrators did with this account on \
    data requests (exports, deletions, views on the admin page): when, by which \
    administrator, what. The last entry is this export.";

/// One part of the document: its key, its table, what it holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PartAbout {
    pub part: &'static str,
    pub table: &'static str,
    pub contents: &'static str,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct About {
    pub document: &'static str,
    pub generated_at: i64,
    pub generated_at_utc: String,
    pub not_included: &'static str,
    pub parts: Vec<PartAbout>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConsentPart {
    pub records: Vec<HistoryRow>,
    pub current: Vec<CurrentState>,
    pub terms_versions: Vec<TermsDocument>,
    pub notes: &'static [&'static str],
}

/// Everything the database holds about one person. Serialised as one
/// object: `about`, `account`, one key per table part (in `PARTS` order,
/// only tables this database has), `consent`, `audit_trail`.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    /// The account's id (also in `account`).
    pub userid: i64,
    pub about: About,
    pub account: Row,
    pub tables: Vec<TablePart>,
    pub consent: ConsentPart,
    pub audit_trail: Vec<AuditRow>,
}

impl Serialize for Export {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.tables.len() + 4))?;
        m.serialize_entry("about", &self.about)?;
        m.serialize_entry("account", &self.account)?;
        for t in &self.tables {
            m.serialize_entry(t.spec.part, &t.rows)?;
        }
        m.serialize_entry("consent", &self.consent)?;
        m.serialize_entry("audit_trail", &self.audit_trail)?;
        m.end()
    }
}

/// The export of account `who`, recorded in its audit trail (which the
/// document includes). `now` is the export's time.
pub async fn export(
    pool: &Pool,
    who: &UserRef,
    actor: &str,
    now: i64,
) -> Result<Export, AccountError> {
    export_staged(pool, who, actor, now, |_| Ok(()))
        .await
        .map(|(doc, ())| doc)
}

/// As `export`, calling `stage` with the finished document before the
/// audit row commits: when `stage` fails nothing is recorded
/// ([`AccountError::Output`]); when recording fails what `stage` returned
/// is dropped (a temporary file removes itself).
pub async fn export_staged<T>(
    pool: &Pool,
    who: &UserRef,
    actor: &str,
    now: i64,
    stage: impl FnOnce(&Export) -> std::io::Result<T>,
) -> Result<(Export, T), AccountError> {
    let mut conn = pool.get_conn().await?;
    let mut opts = TxOpts::default();
    opts.with_consistent_snapshot(true)
        .with_isolation_level(IsolationLevel::RepeatableRead);
    let mut tx = conn.start_transaction(opts).await?;
    let built = match build(&mut tx, who, actor, now).await {
        Ok(doc) => stage(&doc)
            .map(|staged| (doc, staged))
            .map_err(AccountError::Output),
        Err(e) => Err(e),
    };
    match built {
        Ok(done) => {
            tx.commit().await?;
            Ok(done)
        }
        Err(e) => {
            // Explicitly: a dropped transaction is only rolled back when
            // the pool next hands the connection out.
            if let Err(r) = tx.rollback().await {
                tracing::warn!("export: rollback failed: {r}");
            }
            Err(e)
        }
    }
}

async fn build(
    tx: &mut Transaction<'_>,
    who: &UserRef,
    actor: &str,
    now: i64,
) -> Result<Export, AccountError> {
    let userid = resolve_on(tx, who).await?;
    let user = queries::user_by_id(tx, userid)
        .await?
        .ok_or(AccountError::UnknownUser(userid))?;
    let mut tables = subject::read_parts(tx, userid).await?;
    let account = match tables.first() {
        Some(p) if p.spec.table == "user" => tables.remove(0).rows.into_iter().next(),
        _ => None,
    }
    .ok_or(AccountError::UnknownUser(userid))?;
    let history = consent_records::history_of(tx, &user).await?;
    // Last, once every read has succeeded; the trail read after it sees
    // this transaction's own row.
    audit::record(tx, actor, userid, Action::Export, "", now).await?;
    let audit_trail = audit::for_user(tx, userid).await?;

    let mut parts = vec![PartAbout {
        part: "account",
        table: "user",
        contents: subject::PARTS[0].contents,
    }];
    parts.extend(tables.iter().map(|t| PartAbout {
        part: t.spec.part,
        table: t.spec.table,
        contents: t.spec.contents,
    }));
    parts.push(PartAbout {
        part: "consent",
        table: "consent",
        contents: CONSENT_CONTENTS,
    });
    parts.push(PartAbout {
        part: "audit_trail",
        table: "account_audit",
        contents: AUDIT_CONTENTS,
    });
    Ok(Export {
        userid,
        about: About {
            document: EXPORT_DOCUMENT,
            generated_at: now,
            generated_at_utc: utc(now),
            not_included: EXPORT_NOT_INCLUDED,
            parts,
        },
        account,
        tables,
        consent: ConsentPart {
            records: history.consents,
            current: history.current,
            terms_versions: history.terms_versions,
            notes: consent_records::HISTORY_NOTES,
        },
        audit_trail,
    })
}
