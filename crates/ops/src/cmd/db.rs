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
    /// Convert a latin1 database to utf8mb4 (utf8mb4_unicode_ci, upstream's
    /// column sizes) so every stored name reads as PHP meant it; checks
    /// first, safe to interrupt and run again. Restart boinc-rpc and
    /// `boinc-ops serve` afterwards.
    #[command(name = "convert-utf8mb4")]
    ConvertUtf8mb4 {
        /// Only check and list what would change.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(config: Option<&Path>, cmd: DbCmd) -> anyhow::Result<ExitCode> {
    let (cfg, _) = load_config(config, false)?;
    let settings = cfg.database()?;
    let report = match cmd {
        DbCmd::ConvertUtf8mb4 { dry_run } => return convert(&settings, dry_run).await,
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
             (see \"Consent types lost to TRUNCATE\" in docs/admin-guide.md); exit status {EXIT_ATTENTION}"
        );
        return Ok(ExitCode::from(EXIT_ATTENTION));
    }
    Ok(ExitCode::SUCCESS)
}

async fn convert(settings: &boinc_db::DbSettings, dry_run: bool) -> anyhow::Result<ExitCode> {
    use boinc_db::schema::utf8mb4::{self, Method};
    let mut conn = boinc_db::mysql_async::Conn::new(settings.opts())
        .await
        .with_context(|| format!("connecting to {settings:?}"))?;
    let mut progress = |what: &str| eprintln!("{}", clean(what));
    let report = utf8mb4::convert(&mut conn, dry_run, &mut progress).await;
    conn.disconnect().await.ok();
    let report = report?;
    for t in &report.too_long {
        println!(
            "too long for upstream's {}.{} ({} characters): {} characters in row {}",
            clean(&t.table),
            clean(&t.column),
            t.max,
            t.chars,
            clean(&t.row)
        );
    }
    for c in &report.collisions {
        println!(
            "would collide in {}'s unique index {} (equal as {}): {}",
            clean(&c.table),
            clean(&c.index),
            utf8mb4::COLLATION,
            c.values
                .iter()
                .map(|v| clean(v))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    if report.blocked() {
        eprintln!(
            "nothing was changed: shorten or rename the values above (e.g. on the ops page or \
             with BOINC's admin pages), then run this again"
        );
        return Ok(ExitCode::from(super::EXIT_ATTENTION));
    }
    let verb = if dry_run { "would repair" } else { "repaired" };
    for (t, c, n) in &report.repaired {
        println!(
            "{verb} {n} value(s) of {}.{} (bytes that are not UTF-8, read as latin1)",
            clean(t),
            clean(c)
        );
    }
    let how = |m: &Method| match m {
        Method::Online => "online (copy, triggers, rename)",
        Method::Alter => "ALTER TABLE (writes wait while it copies)",
    };
    for (t, m) in &report.would_convert {
        println!("would convert {}: {}", clean(t), how(m));
    }
    for (t, m, d) in &report.converted {
        println!(
            "converted {} {} in {:.1}s",
            clean(t),
            how(m),
            d.as_secs_f64()
        );
    }
    for t in &report.cleaned {
        println!("removed {} (left by an interrupted run)", clean(t));
    }
    println!(
        "{} table(s) already utf8mb4 ({})",
        report.already.len(),
        utf8mb4::COLLATION
    );
    if !dry_run && !report.converted.is_empty() {
        println!(
            "RESTART boinc-rpc and `boinc-ops serve` now (bin/stop, then bin/start): \
             connections they opened before the conversion still talk latin1"
        );
    }
    Ok(ExitCode::SUCCESS)
}
