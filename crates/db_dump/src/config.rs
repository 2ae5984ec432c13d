//! What db_dump takes from config.xml and its command line, read once
//! before anything runs: a value it cannot mean stops it with an error
//! naming the key. A flag (`--db-host`) overrides the typed value, never
//! the parsed file.

use boinc_db::config::profile::ProfileFields;
use boinc_db::config::ConfigError;
use boinc_db::{DbSettings, ProjectConfig};

use crate::credit_by_app::SUBPROJECTS_KEY;
use crate::replica;

#[derive(Debug, Clone)]
pub struct DumpConfig {
    /// Where every connection of the dump goes: the replica when there is
    /// one (`replica_db_host` or `--db-host`), else the database.
    pub database: DbSettings,
    /// The replica's host, when reading from one (for the lag note).
    pub replica_host: Option<String>,
    /// `<replica_max_lag>` in whole seconds.
    pub max_lag: i64,
    /// `<credit_by_app>`: write user_work and team_work.
    pub credit_by_app: bool,
    /// `<credit_by_app_subprojects>` as written (parsed when used; None:
    /// one per app).
    pub subprojects: Option<String>,
    /// Country and URL in user records (absent keys: off; see
    /// `ProfileFields::dump`).
    pub fields: ProfileFields,
}

impl DumpConfig {
    /// `db_host`: `--db-host`, which wins over `replica_db_host`.
    pub fn new(cfg: &ProjectConfig, db_host: Option<&str>) -> Result<Self, ConfigError> {
        let max_lag = replica::max_lag(cfg)?;
        Ok(Self {
            database: cfg.replica_database_at(db_host)?,
            replica_host: cfg.replica_host(db_host).map(str::to_owned),
            max_lag,
            credit_by_app: cfg.bool("credit_by_app"),
            subprojects: cfg.str(SUBPROJECTS_KEY).map(str::to_owned),
            fields: ProfileFields::dump(cfg),
        })
    }
}
