//! `boinc-ops db init|upgrade`: create or upgrade the schema.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use boinc_db::schema;
use clap::Subcommand;

use super::print::clean;
use super::{load_config, EXIT_ATTENTION};

#[derive(Subcommand)]
pub enum DbCmd {
    /// Create the database and schema if missing.
    Init,
    /// Add missing tables, indexes, guards and predefined types (idempotent);
    /// exit status 3 when consent types had to be recreated or consent rows
    /// point at no type.
    Upgrade,
}

pub async fn run(config: Option<&Path>, cmd: DbCmd) -> anyhow::Result<ExitCode> {
    let (cfg, _) = load_config(config, false)?;
    let settings = cfg.database()?;
    let report = match cmd {
        DbCmd::Init => schema::init(&settings).await?,
        DbCmd::Upgrade => {
            let mut conn = boinc_db::mysql_async::Conn::new(settings.opts())
                .await
                .with_context(|| format!("connecting to {settings:?}"))?;
            let r = schema::upgrade(&mut conn).await?;
            conn.disconnect().await.ok();
            r
        }
    };
    if report.created_database {
        println!("created database {}", clean(&settings.name));
    }
    println!(
        "tables as upstream server release {} makes them",
        report.release
    );
    for k in &report.kept_release_indexes {
        println!(
            "kept as the release made it (not unique, may hold duplicates): {}",
            clean(k)
        );
    }
    if report.applied.is_empty() {
        println!(
            "schema up to date ({} constraints already present)",
            report.already_present
        );
    } else {
        for a in &report.applied {
            println!("applied: {}", clean(a));
        }
        println!(
            "{} applied, {} already present",
            report.applied.len(),
            report.already_present
        );
    }
    if report.needs_attention() {
        // Loud on purpose: consent records may be attributed to nothing.
        for w in report.warnings() {
            eprintln!("WARNING: {}", clean(&w));
        }
        eprintln!(
            "WARNING: the schema is complete, but the consent data needs attention \
             (see \"Consent types lost to TRUNCATE\" in README.md); exit status {EXIT_ATTENTION}"
        );
        return Ok(ExitCode::from(EXIT_ATTENTION));
    }
    Ok(ExitCode::SUCCESS)
}
