//! Load benchmark for boinc-rpc (see crates/rpc/PERFORMANCE.md).
//!
//! `cargo build --release -p boinc-rpc -p boinc-bench --bin boinc-rpc --bin rpc_bench && target/release/rpc_bench`
//!
//! Creates a fresh database on the local MariaDB (boinc_db::testing),
//! starts the release `boinc-rpc` beside this binary on 127.0.0.1, and
//! measures with `wrk` (Debian package) plus a few Rust probes: bcrypt
//! hashes/s per core, password-check latency (lookup_account, am_set_info),
//! the MariaDB ceiling for am_set_info's statements,
//! get_project_config latency while create_account saturates the hashing
//! pool, and a mixed run of 100,000+ requests with consistency checks.
//! Only ever talks to 127.0.0.1; every phase is bounded in time.
//!
//! The phases are in `boinc_bench::rpc`.

use anyhow::Context;
use boinc_bench::load;
use boinc_bench::rpc::probe::{self, tag, Http};
use boinc_bench::rpc::server::start_server;
use boinc_bench::rpc::{ceiling, mixed, scenario, scripts_dir, wrk, Bench};
use boinc_db::testing::TestDb;
use clap::Parser;
use mysql_async::prelude::*;

#[derive(Parser)]
#[command(about = "Load benchmark for boinc-rpc (127.0.0.1 only)")]
struct Args {
    /// Seconds per wrk run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Phases to run (default all): gpc16 gpc64 gpc_metrics set_info flip_vs_slap create limits gpc_under_create bcrypt login ceiling mixed
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Requests in the mixed run.
    #[arg(long, default_value_t = 120_000)]
    mixed_requests: usize,
    /// rpc_consent_group_workers of the server under test (default: the
    /// server's own default).
    #[arg(long)]
    group_workers: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let want = |p: &str| args.only.is_empty() || args.only.iter().any(|o| o == p);
    let secs = args.duration;
    println!(
        "# rpc_bench  ({} cores, load at start {})",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        load()
    );

    let db = TestDb::new().await;
    let dir = tempfile::tempdir()?;
    let config = db.write_project(
        dir.path(),
        // The load generator (127.0.0.1) is exempt from the per-IP limits
        // unless it names other clients in X-Forwarded-For (the `limits`
        // phase), whose limits are too high to refuse anything.
        &format!(
            "<rpc_create_account_per_ip_per_hour>1000000000</rpc_create_account_per_ip_per_hour>\
             <rpc_failed_logins_per_ip>1000000000</rpc_failed_logins_per_ip>\
             <rpc_trusted_proxies>127.0.0.1</rpc_trusted_proxies>\
             <rpc_rate_limit_exempt>127.0.0.1</rpc_rate_limit_exempt>{}",
            args.group_workers
                .map(|n| format!("<rpc_consent_group_workers>{n}</rpc_consent_group_workers>"))
                .unwrap_or_default()
        ),
        Some("Bench terms of use."),
    );
    let mut conn = db.conn().await;
    conn.query_drop(
        "UPDATE consent_type SET enabled = 1 WHERE shortname IN ('ENROLL','STATSEXPORT')",
    )
    .await?;
    let server = start_server(&config).await?;
    let port = server.port;
    let base = format!("http://127.0.0.1:{port}");

    // 64 accounts for am_set_info.
    let mut keys = Vec::new();
    let mut http = Http::connect(port).await?;
    for i in 0..64 {
        let (_, body) = http
            .get(&format!(
                "/create_account.php?email_addr=seed{i}%40bench.test&passwd_hash=0123456789abcdef0123456789abcdef\
                 &user_name=Seed{i}&consent_flag=1&source=bench"
            ))
            .await?;
        keys.push(tag(&body, "authenticator").with_context(|| format!("seed account: {body}"))?);
    }
    let keys_file = dir.path().join("keys.txt");
    std::fs::write(&keys_file, keys.join("\n") + "\n")?;
    let b = Bench {
        db: &db,
        secs,
        port,
        base,
        keys,
        keys_file,
        scripts: scripts_dir(),
        nonce: format!("{}", std::process::id()),
    };
    wrk::header();
    if want("gpc16") {
        scenario::gpc(&b, 16)?;
    }
    if want("gpc64") {
        scenario::gpc(&b, 64)?;
    }
    if want("gpc_metrics") {
        scenario::gpc_metrics(&b).await?;
    }
    if want("set_info") {
        scenario::set_info(&b)?;
    }
    if want("create") {
        scenario::create(&b)?;
    }
    if want("limits") {
        scenario::limits(&b)?;
    }
    if want("gpc_under_create") {
        scenario::gpc_under_create(&b).await?;
    }
    if want("bcrypt") {
        probe::bcrypt()?;
    }
    if want("login") {
        probe::login(&b).await?;
    }
    if want("flip_vs_slap") {
        scenario::flip_vs_slap(&b, &mut conn).await?;
    }
    if want("ceiling") {
        ceiling::ceiling(&b).await?;
    }
    if want("mixed") {
        mixed::mixed(port, &b.keys, args.mixed_requests, &mut conn).await?;
    }
    drop(server);
    conn.disconnect().await.ok();
    println!("\n(load at end {})", load());
    Ok(())
}
