//! Test data: fills a BOINC database with `users` users, 2x hosts, users/50
//! teams, realistic credits (many zero), names with non-ASCII and
//! XML-special characters, STATSEXPORT histories (consented, withdrawn,
//! same-second ties, never asked), deleted users/hosts with their
//! user_deleted/host_deleted rows, badges (badge, badge_user, badge_team)
//! and per-application credit (credit_user, credit_team).
//!
//! Every property of a row is a pure function of (seed, id), so the three
//! streams (users, hosts, consent) run on their own connections in parallel
//! and still agree, and tests can recompute what a row should be.
//!
//! * `values` holds those functions: every value of every row.
//! * `rows` writes each table's rows from them.
//! * `load` is how they get in: batched INSERTs, secondary indexes
//!   dropped for the load and built after it.
//!
//! The command line is `src/bin/db_dump_gen.rs`.

use mysql_async::prelude::*;
use mysql_async::Conn;

use boinc_db::DbSettings;

mod load;
mod rows;
mod values;

use load::{defer_indexes, restore_indexes, BULK_TABLES};
pub use values::{history, user_credit, user_deleted, History};

#[derive(Debug, Clone)]
pub struct GenOptions {
    pub users: u64,
    pub seed: u64,
    /// Set STATSEXPORT's `enabled`.
    pub statsexport_enabled: bool,
    /// "Now" for consent and credit times.
    pub now: i64,
    /// Rows per INSERT statement.
    pub rows_per_insert: usize,
}

impl GenOptions {
    pub fn new(users: u64) -> Self {
        Self {
            users,
            seed: 1,
            statsexport_enabled: true,
            now: boinc_db::now(),
            rows_per_insert: 1000,
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct GenStats {
    pub users: u64,
    pub hosts: u64,
    pub teams: u64,
    pub consent_rows: u64,
    pub users_deleted: u64,
    pub hosts_deleted: u64,
    pub badge_users: u64,
    pub badge_teams: u64,
    pub credit_users: u64,
    pub credit_teams: u64,
}

pub async fn generate(
    settings: &DbSettings,
    o: &GenOptions,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<GenStats, mysql_async::Error> {
    let mut conn = Conn::new(settings.opts()).await?;
    conn.query_drop(format!(
        "UPDATE consent_type SET enabled = {} WHERE shortname = 'STATSEXPORT'",
        o.statsexport_enabled as i32
    ))
    .await?;
    let statsexport: i64 = conn
        .query_first("SELECT id FROM consent_type WHERE shortname = 'STATSEXPORT'")
        .await?
        .unwrap_or(0);
    let enroll: i64 = conn
        .query_first("SELECT id FROM consent_type WHERE shortname = 'ENROLL'")
        .await?
        .unwrap_or(0);
    let apps: i64 = conn
        .query_first("SELECT COUNT(*) FROM app")
        .await?
        .unwrap_or(0);
    if apps == 0 {
        conn.query_drop(
            "INSERT INTO app (create_time, name, user_friendly_name) VALUES \
             (1, 'uppercase', 'Upper Case & Co'), (1, 'einstein_o3', 'Gravitational <Waves>')",
        )
        .await?;
    }
    let app_ids: Vec<i64> = conn.query("SELECT id FROM app ORDER BY id").await?;
    let badges: i64 = conn
        .query_first("SELECT COUNT(*) FROM badge")
        .await?
        .unwrap_or(0);
    if badges == 0 {
        conn.query_drop(
            "INSERT INTO badge (create_time, type, name, title, description, image_url, level, \
             tags, sql_rule) VALUES \
             (1, 0, 'bronze', 'Bronze & <co>', '', 'img/bronze.png', '', '', ''), \
             (1, 0, 'silver', 'Silver', '', 'img/silver.png', '', '', ''), \
             (1, 0, 'gold', 'Gold', '', 'img/gold.png', '', '', ''), \
             (1, 1, 'team_bronze', 'Team Bronze', '', 'img/tbronze.png', '', '', ''), \
             (1, 1, 'team_gold', 'Team Gold', '', 'img/tgold.png', '', '', '')",
        )
        .await?;
    }
    let user_badges: Vec<i64> = conn
        .query("SELECT id FROM badge WHERE type = 0 ORDER BY id")
        .await?;
    let team_badges: Vec<i64> = conn
        .query("SELECT id FROM badge WHERE type = 1 ORDER BY id")
        .await?;
    let base: u64 = conn
        .query_first::<Option<u64>, _>("SELECT MAX(id) FROM user")
        .await?
        .flatten()
        .unwrap_or(0);
    let hbase: u64 = conn
        .query_first::<Option<u64>, _>("SELECT MAX(id) FROM host")
        .await?
        .flatten()
        .unwrap_or(0);
    let tbase: u64 = conn
        .query_first::<Option<u64>, _>("SELECT MAX(id) FROM team")
        .await?
        .flatten()
        .unwrap_or(0);
    let nteams = (o.users / 50).max(1);
    let g = Gen {
        o: o.clone(),
        base,
        hbase,
        tbase,
        nteams,
        statsexport,
        enroll,
        app_ids,
        user_badges,
        team_badges,
    };
    g.teams(&mut conn).await?;
    // Into empty tables, secondary indexes are built after the load (one
    // sort per index) instead of row by row: random inserts into unique
    // indexes on hashes crawl once they outgrow the buffer pool.
    let deferred = if base == 0 && hbase == 0 {
        defer_indexes(&mut conn, BULK_TABLES).await?
    } else {
        Vec::new()
    };
    let (u, h, c, extras) = tokio::try_join!(
        g.users(settings, progress),
        g.hosts(settings),
        g.consent(settings),
        g.extras(settings)
    )?;
    let _ = conn.disconnect().await;
    restore_indexes(settings, &deferred).await?;
    Ok(GenStats {
        users: o.users,
        hosts: 2 * o.users,
        teams: nteams,
        consent_rows: c,
        users_deleted: u,
        hosts_deleted: h,
        badge_users: extras.badge_users,
        badge_teams: extras.badge_teams,
        credit_users: extras.credit_users,
        credit_teams: extras.credit_teams,
    })
}

struct Gen {
    o: GenOptions,
    base: u64,
    hbase: u64,
    tbase: u64,
    nteams: u64,
    statsexport: i64,
    enroll: i64,
    app_ids: Vec<i64>,
    user_badges: Vec<i64>,
    team_badges: Vec<i64>,
}
