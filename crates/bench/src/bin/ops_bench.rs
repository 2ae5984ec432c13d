//! Admin paths at scale (see crates/ops/bench.sh, which generates the
//! database): the consent report (with the ops page's monthly series and
//! charts) beside its limit — one streaming pass over
//! the consent rows in (user, type, time, id) order folded on the client —
//! measured in the same run, one user's history, and the ops page's first
//! load and time until it shows the report.
//!
//! `cargo build --release -p boinc-bench --bin ops_bench && target/release/ops_bench --database-url mysql://root@127.0.0.1:3306/scale_bench_1m`

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine as _;
use boinc_bench::load;
use boinc_db::mysql_async::prelude::*;
use boinc_db::DbSettings;
use boinc_ops::{ConsentOps, Credentials, ServeOptions, UserRef};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Admin-path benchmark on a generated database")]
struct Args {
    /// mysql://user:pass@host:port/db of a generated project.
    #[arg(long, default_value = "mysql://root@127.0.0.1:3306/scale_bench_1m")]
    database_url: String,
    /// Report/limit pairs to run (alternating, limit first).
    #[arg(long, default_value_t = 2)]
    rounds: u32,
    /// Also time the previous report query (NOT EXISTS per row; minutes at
    /// a million users).
    #[arg(long)]
    old: bool,
    /// Skip the ops page phase.
    #[arg(long)]
    no_page: bool,
}

/// The limit: every consent row, in report order, folded to latest-state
/// counts per type on the client (nothing else read).
async fn streaming_limit(pool: &boinc_db::mysql_async::Pool) -> anyhow::Result<(u64, usize)> {
    let mut c = pool.get_conn().await?;
    let mut rows = 0u64;
    let mut counts: HashMap<(i64, i64, i64), u64> = HashMap::new();
    let mut cur: Option<(i64, i64, i64, i64)> = None;
    c.query_iter(
        "SELECT userid, consent_type_id, consent_flag, consent_not_required FROM consent \
         ORDER BY userid, consent_type_id, consent_time, id",
    )
    .await?
    .for_each(|row| {
        rows += 1;
        let r: (i64, i64, i64, i64) = boinc_db::mysql_async::from_row(row);
        if let Some(p) = cur {
            if (p.0, p.1) != (r.0, r.1) {
                *counts.entry((p.1, p.2, p.3)).or_default() += 1;
            }
        }
        cur = Some(r);
    })
    .await?;
    if let Some(p) = cur {
        *counts.entry((p.1, p.2, p.3)).or_default() += 1;
    }
    Ok((rows, counts.len()))
}

/// The report as it was before (per-row NOT EXISTS probe), for "before".
async fn old_report(pool: &boinc_db::mysql_async::Pool) -> anyhow::Result<usize> {
    let mut c = pool.get_conn().await?;
    let rows: Vec<(i64, i64, i64, i64)> = c
        .query(format!(
            "SELECT c.consent_type_id, c.consent_flag, c.consent_not_required, COUNT(*) \
             FROM consent c JOIN user u ON u.id = c.userid \
             WHERE {} AND \
             NOT EXISTS (SELECT 1 FROM consent f WHERE f.userid = c.userid \
             AND f.consent_type_id = c.consent_type_id AND (f.consent_time > c.consent_time \
             OR (f.consent_time = c.consent_time AND f.id > c.id))) \
             GROUP BY c.consent_type_id, c.consent_flag, c.consent_not_required",
            boinc_db::models::live_sql("u.authenticator")
        ))
        .await?;
    Ok(rows.len())
}

/// GET / with basic auth over a fresh connection; (status, body).
fn get_page(addr: std::net::SocketAddr, user: &str, pass: &str) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok((status, text))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = DbSettings::from_url(&args.database_url)?;
    let pool = boinc_db::pool(&settings);
    let mut c = pool.get_conn().await?;
    let users: i64 = c
        .query_first("SELECT COUNT(*) FROM user")
        .await?
        .unwrap_or(0);
    let consents: i64 = c
        .query_first("SELECT COUNT(*) FROM consent")
        .await?
        .unwrap_or(0);
    if users == 0 {
        bail!(
            "no users in {}: generate it first (crates/ops/bench.sh)",
            settings.name
        );
    }
    // A user in the middle, with a typical history.
    let (uid, email): (i64, String) = c
        .exec_first(
            "SELECT u.id, u.email_addr FROM user u WHERE u.id >= ? \
             AND EXISTS (SELECT 1 FROM consent WHERE userid = u.id) ORDER BY u.id LIMIT 1",
            (users / 2,),
        )
        .await?
        .context("a user with consent rows")?;
    drop(c);
    println!(
        "# ops_bench on {} ({} users, {} consent rows; {} cores, load at start {})",
        settings.name,
        users,
        consents,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        load()
    );
    println!("| what | seconds | load (1/5/15 min) |\n|---|---|---|");
    let ops = ConsentOps::new(pool.clone());
    for round in 1..=args.rounds {
        let t = Instant::now();
        let (rows, _) = streaming_limit(&pool).await?;
        let limit = t.elapsed().as_secs_f64();
        println!(
            "| round {round}: streaming limit ({rows} rows folded client-side) | {limit:.2} | {} |",
            load()
        );
        let t = Instant::now();
        let r = ops.consent_report().await?;
        let report = t.elapsed().as_secs_f64();
        println!(
            "| round {round}: `consent report` with its monthly series ({} accounts) | {report:.2} ({:.2}x the limit) | {} |",
            r.users,
            report / limit,
            load()
        );
        // What the ops page's background task does with it: every type's
        // chart, drawn once per report (issue 24: report + charts <= 2x).
        let t = Instant::now();
        let charts = boinc_ops::web::chart::render_report(&r);
        let drawn = t.elapsed().as_secs_f64();
        let bytes: usize = charts
            .iter()
            .filter_map(|c| c.svg.as_ref())
            .map(String::len)
            .sum();
        println!(
            "| round {round}: charts ({} types, {} KB of SVG) | {:.2} ms | {} |",
            charts.len(),
            bytes / 1024,
            drawn * 1000.0,
            load()
        );
        println!(
            "| round {round}: report + charts | {:.2} ({:.2}x the limit) | {} |",
            report + drawn,
            (report + drawn) / limit,
            load()
        );
    }
    if args.old {
        let t = Instant::now();
        old_report(&pool).await?;
        println!(
            "| previous report query (NOT EXISTS per row) | {:.2} | {} |",
            t.elapsed().as_secs_f64(),
            load()
        );
    }
    for (label, who) in [
        ("`consent history --user`", UserRef::Id(uid)),
        ("`consent history --email`", UserRef::Email(email.clone())),
    ] {
        let t = Instant::now();
        let h = ops.user_history(&who).await?;
        println!(
            "| {label} (user {uid}, {} rows) | {:.3} | {} |",
            h.consents.len(),
            t.elapsed().as_secs_f64(),
            load()
        );
    }
    if !args.no_page {
        // A fresh server: nothing cached, the first view starts the report.
        let pass = "bench-password";
        let hash = bcrypt::hash(pass, 4)?;
        let opts = ServeOptions {
            read_only: true,
            credentials: Some(Credentials::new("admin", &hash)?),
            ..Default::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(boinc_ops::serve_until(
            listener,
            ConsentOps::new(boinc_db::pool(&settings)),
            opts,
            async {
                let _ = stop_rx.await;
            },
        ));
        let t = Instant::now();
        let (status, body) =
            tokio::task::spawn_blocking(move || get_page(addr, "admin", pass)).await??;
        let first = t.elapsed().as_secs_f64();
        if status != 200 {
            bail!("ops page: HTTP {status}: {body}");
        }
        println!(
            "| ops page, first load (cold; answers {}) | {first:.2} | {} |",
            if body.contains("id=\"consent-report\"") {
                "with the report"
            } else {
                "\"computing\""
            },
            load()
        );
        loop {
            let (_, body) =
                tokio::task::spawn_blocking(move || get_page(addr, "admin", pass)).await??;
            if body.contains("id=\"consent-report\"") {
                break;
            }
            if t.elapsed() > Duration::from_secs(600) {
                bail!("no report on the ops page after 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "| ops page, first load until it shows the report | {:.2} | {} |",
            t.elapsed().as_secs_f64(),
            load()
        );
        let t = Instant::now();
        tokio::task::spawn_blocking(move || get_page(addr, "admin", pass)).await??;
        println!(
            "| ops page, next load (report cached) | {:.3} | {} |",
            t.elapsed().as_secs_f64(),
            load()
        );
        let _ = stop_tx.send(());
        server.await??;
    }
    pool.disconnect().await.ok();
    println!("\n(load at end {})", load());
    Ok(())
}
