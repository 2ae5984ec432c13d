//! Consent types for project admins: the operations (list, add,
//! enable/disable, privacypref on/off, audit history) shared by the
//! `boinc-ops` CLI and the ops web page, plus that web page.
//! [`consent_records`] adds the read-only consent reports, per-user
//! consent history (data-subject requests) and stored terms versions.
//! Neither front end holds SQL: everything goes through [`ConsentOps`],
//! which goes through `boinc_db::consent::types`. [`terminal`] is the one
//! sanitiser for everything the CLI prints.

pub mod account;
pub mod consent_records;
pub mod ops;
pub mod project;
pub mod terminal;
pub mod time;
pub mod web;

pub use consent_records::{ConsentReport, RecordsError, SubjectHistory, UserRef};
pub use ops::{
    validate_description, validate_shortname, Change, ConsentOps, OpsError, DELETE_EXPLANATION,
    DESCRIPTION_MAX, SHORTNAME_MAX,
};
pub use web::{serve, serve_until, Credentials, ServeError, ServeOptions};
