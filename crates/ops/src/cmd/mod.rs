//! One module per `boinc-ops` subcommand group, plus what they share.

pub mod account;
pub mod consent;
pub mod consent_type;
pub mod db;
pub mod password;
pub mod print;
pub mod retention;
pub mod serve;

use std::path::{Path, PathBuf};

use anyhow::Context;
use boinc_db::config::DATABASE_URL_ENV;
use boinc_db::ProjectConfig;

/// Exit status for a refused request (bad input, unknown type, delete).
pub const EXIT_REFUSED: u8 = 2;
/// Exit status of `db init|upgrade` when the schema is complete but the
/// consent data needs the operator (predefined types recreated, consent
/// rows pointing at no type).
pub const EXIT_ATTENTION: u8 = 3;

/// config.xml (`--config`, else found as BOINC's programs find it); without
/// one, BOINC_DATABASE_URL alone is enough for the database commands
/// (containers, CI). The flag says whether a file was read.
pub fn load_config(path: Option<&Path>, need_file: bool) -> anyhow::Result<(ProjectConfig, bool)> {
    let found = boinc_db::config::find_config(path);
    let missing = match &found {
        Ok(p) => !p.exists(),
        Err(_) => true,
    };
    if !need_file && missing && std::env::var_os(DATABASE_URL_ENV).is_some() {
        return Ok((ProjectConfig::from_pairs(PathBuf::from("."), &[]), false));
    }
    let path = found?;
    let cfg = ProjectConfig::load(&path).with_context(|| format!("loading {}", path.display()))?;
    Ok((cfg, true))
}

/// Who runs the command, for the audit trail: the admin behind sudo, else
/// the login name.
pub fn actor() -> String {
    ["SUDO_USER", "USER"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "cli".to_owned())
}
