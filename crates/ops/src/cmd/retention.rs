//! `boinc-ops retention purge`: the daily clean-up of deletion records and
//! expired tokens (BOINC's delete_expired_users_and_hosts and
//! delete_expired_tokens tasks in one), runnable as a config.xml <task>.

use std::path::Path;
use std::process::ExitCode;

use boinc_db::account::retention::{self, DEFAULT_DAYS};
use clap::Subcommand;

use super::load_config;

#[derive(Subcommand)]
pub enum RetentionCmd {
    /// Remove user_deleted/host_deleted rows older than --days and expired tokens.
    Purge {
        /// Keep deletion records this many days (stats sites and account
        /// managers read them from db_dump meanwhile).
        #[arg(long, default_value_t = DEFAULT_DAYS, value_parser = clap::value_parser!(u32).range(1..=36500))]
        days: u32,
        /// Only count what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(config: Option<&Path>, cmd: RetentionCmd) -> anyhow::Result<ExitCode> {
    let RetentionCmd::Purge { days, dry_run } = cmd;
    let (cfg, _) = load_config(config, false)?;
    let mut conn = boinc_db::mysql_async::Conn::new(cfg.database()?.opts()).await?;
    let p = retention::purge(&mut conn, days, boinc_db::now(), dry_run).await;
    conn.disconnect().await.ok();
    let p = p?;
    let verb = if dry_run { "would remove" } else { "removed" };
    println!(
        "{verb}: {} user_deleted and {} host_deleted row(s) older than {days} days, {} expired \
         token(s)",
        p.user_deleted, p.host_deleted, p.tokens
    );
    Ok(ExitCode::SUCCESS)
}
