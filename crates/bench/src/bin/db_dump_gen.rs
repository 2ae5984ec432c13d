//! `db_dump_gen`: fill a BOINC database with generated users, hosts, teams
//! and consent histories (for db_dump tests and benchmarks).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use boinc_bench::gen::{self, GenOptions};
use boinc_db::{DbSettings, ProjectConfig};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "db_dump_gen",
    about = "Generate a BOINC database for db_dump benchmarks and tests"
)]
struct Cli {
    /// Number of users (hosts: twice as many, teams: users/50).
    #[arg(long)]
    users: u64,
    /// Database as mysql://user:pass@host:port/db (else BOINC_DATABASE_URL,
    /// else --config).
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long, default_value = "config/config.xml")]
    config: PathBuf,
    /// Create the database and schema first if missing.
    #[arg(long)]
    create: bool,
    /// Leave STATSEXPORT disabled (default: enable it).
    #[arg(long)]
    statsexport_disabled: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let env_url = std::env::var(boinc_db::config::DATABASE_URL_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty());
    let settings = match cli.database_url.as_ref().or(env_url.as_ref()) {
        Some(u) => DbSettings::from_url(u.trim())?,
        None => ProjectConfig::load(&cli.config)
            .with_context(|| format!("loading {}", cli.config.display()))?
            .database()?,
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        if cli.create {
            boinc_db::schema::init(&settings)
                .await
                .with_context(|| format!("creating {settings:?}"))?;
        }
        let pb = if std::io::stderr().is_terminal() {
            let pb = indicatif::ProgressBar::new(cli.users);
            pb.set_style(
                indicatif::ProgressStyle::with_template(
                    "users {bar:40} {human_pos}/{human_len} {per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            pb
        } else {
            indicatif::ProgressBar::hidden()
        };
        let mut o = GenOptions::new(cli.users);
        o.seed = cli.seed;
        o.statsexport_enabled = !cli.statsexport_disabled;
        let t = Instant::now();
        let s = gen::generate(&settings, &o, Some(&pb))
            .await
            .with_context(|| format!("generating into {settings:?}"))?;
        pb.finish_and_clear();
        println!(
            "generated {} users, {} hosts, {} teams, {} consent rows, {} deleted users, {} deleted hosts, \
             {} user badges, {} team badges, {} credit_user rows, {} credit_team rows in {:.1}s",
            s.users,
            s.hosts,
            s.teams,
            s.consent_rows,
            s.users_deleted,
            s.hosts_deleted,
            s.badge_users,
            s.badge_teams,
            s.credit_users,
            s.credit_teams,
            t.elapsed().as_secs_f64()
        );
        anyhow::Ok(())
    })
}
