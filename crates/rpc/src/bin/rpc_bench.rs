//! Load benchmark for boinc-rpc (see crates/rpc/PERFORMANCE.md).
//!
//! `cargo build --release -p boinc-rpc && target/release/rpc_bench`
//!
//! Creates a fresh database on the local MariaDB (boinc_db::testing),
//! starts the release `boinc-rpc` beside this binary on 127.0.0.1, and
//! measures with `wrk` (Debian package) plus a few Rust probes: bcrypt
//! hashes/s per core, password-check latency (lookup_account, am_set_info),
//! the MariaDB ceiling for am_set_info's statements,
//! get_project_config latency while create_account saturates the hashing
//! pool, and a mixed run of 100,000+ requests with consistency checks.
//! Only ever talks to 127.0.0.1; every phase is bounded in time.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use boinc_db::queries::{self, NewConsent};
use boinc_db::testing::{free_port, TestDb};
use clap::Parser;
use mysql_async::prelude::*;
use mysql_async::TxOpts;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

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

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

struct Wrk {
    rps: f64,
    p50: String,
    p99: String,
    non2xx: u64,
    errors: String,
}

fn run_wrk(
    conns: u32,
    secs: u64,
    script: Option<&PathBuf>,
    url: &str,
    env: &[(&str, String)],
) -> anyhow::Result<Wrk> {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t2",
        &format!("-c{conns}"),
        &format!("-d{secs}s"),
        "--latency",
        "--timeout",
        "10s",
    ]);
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    cmd.arg(url);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("?")
            .to_owned()
    };
    let non2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .and_then(|l| l.rsplit(':').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let errors = text
        .lines()
        .find(|l| l.contains("Socket errors"))
        .unwrap_or("")
        .trim()
        .to_owned();
    Ok(Wrk {
        rps: field("Requests/sec:").parse().unwrap_or(0.0),
        p50: field("50%"),
        p99: field("99%"),
        non2xx,
        errors,
    })
}

/// A minimal keep-alive HTTP/1.1 client for the probes.
struct Http {
    r: BufReader<TcpStream>,
}

impl Http {
    async fn connect(port: u16) -> anyhow::Result<Self> {
        let s = TcpStream::connect(("127.0.0.1", port)).await?;
        s.set_nodelay(true)?;
        Ok(Self {
            r: BufReader::new(s),
        })
    }

    async fn get(&mut self, target: &str) -> anyhow::Result<(u16, String)> {
        let req = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        self.r.get_mut().write_all(req.as_bytes()).await?;
        let mut line = String::new();
        self.r.read_line(&mut line).await?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut len = 0usize;
        loop {
            line.clear();
            if self.r.read_line(&mut line).await? == 0 {
                bail!("connection closed");
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        self.r.read_exact(&mut body).await?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_server(config: &std::path::Path) -> anyhow::Result<Server> {
    let exe = std::env::current_exe()?
        .parent()
        .context("exe dir")?
        .join("boinc-rpc");
    if !exe.exists() {
        bail!(
            "{} missing: cargo build --release -p boinc-rpc",
            exe.display()
        );
    }
    let port = free_port();
    let child = Command::new(&exe)
        .arg("--config")
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting boinc-rpc")?;
    let server = Server { child, port };
    let t = Instant::now();
    loop {
        if let Ok(mut c) = Http::connect(port).await {
            if let Ok((200, _)) = c.get("/get_project_config.php").await {
                return Ok(server);
            }
        }
        if t.elapsed() > Duration::from_secs(20) {
            bail!("boinc-rpc did not come up");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn tag(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{name}>"))? + start;
    Some(body[start..end].to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let want = |p: &str| args.only.is_empty() || args.only.iter().any(|o| o == p);
    let secs = args.duration;
    let bench_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench");
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
    let report = |name: &str, w: &Wrk| {
        let line = format!(
            "| {name} | {:.0} | {} | {} | {} | {} {} |",
            w.rps,
            w.p50,
            w.p99,
            w.non2xx,
            load(),
            w.errors
        );
        println!("{line}");
        let _ = std::io::stdout().flush();
    };
    println!(
        "| scenario | req/s | p50 | p99 | non-2xx | load (1/5/15 min) |\n|---|---|---|---|---|---|"
    );
    let gpc = format!("{base}/get_project_config.php");
    if want("gpc16") {
        report(
            "get_project_config, 16 conns",
            &run_wrk(16, secs, None, &gpc, &[])?,
        );
    }
    if want("gpc64") {
        report(
            "get_project_config, 64 conns",
            &run_wrk(64, secs, None, &gpc, &[])?,
        );
    }
    if want("gpc_metrics") {
        // get_project_config with counting on (the server under test) and
        // off (a second server with rpc_metrics 0 on the same database),
        // alternating three times so drift in the machine's load falls on
        // both alike; the median of each.
        let off_dir = tempfile::tempdir()?;
        let off_config = db.write_project(
            off_dir.path(),
            "<rpc_rate_limit_exempt>127.0.0.1</rpc_rate_limit_exempt>\
             <rpc_metrics>0</rpc_metrics>",
            Some("Bench terms of use."),
        );
        let off = start_server(&off_config).await?;
        let off_url = format!("http://127.0.0.1:{}/get_project_config.php", off.port);
        let (mut on_runs, mut off_runs) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            on_runs.push(run_wrk(16, secs, None, &gpc, &[])?);
            off_runs.push(run_wrk(16, secs, None, &off_url, &[])?);
        }
        drop(off);
        let median = |runs: &mut Vec<Wrk>| {
            runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
            runs.swap_remove(1)
        };
        let (on, off) = (median(&mut on_runs), median(&mut off_runs));
        report(
            "get_project_config, 16 conns, metrics on (median of 3)",
            &on,
        );
        report(
            "get_project_config, 16 conns, metrics off (median of 3)",
            &off,
        );
        println!(
            "| metrics on / off | {:.1}% | | | | |",
            100.0 * on.rps / off.rps
        );
    }
    if want("set_info") {
        let w = run_wrk(
            16,
            secs,
            Some(&bench_dir.join("am_set_info.lua")),
            &base,
            &[("RPC_BENCH_KEYS", keys_file.display().to_string())],
        )?;
        report("am_set_info STATSEXPORT flip, 16 conns", &w);
    }
    let nonce = format!("{}", std::process::id());
    if want("create") {
        let w = run_wrk(
            16,
            secs,
            Some(&bench_dir.join("create_account.lua")),
            &base,
            &[("RPC_BENCH_NONCE", format!("a{nonce}"))],
        )?;
        report("create_account unique emails, 16 conns", &w);
    }
    if want("limits") {
        // The shared per-IP limits' cost: the same RPC with the limits
        // applied (4096 client addresses) and without (exempt peer).
        for (rpc, label) in [
            (
                "lookup_exists",
                "lookup_account, existing email, no password",
            ),
            (
                "lookup_unknown",
                "lookup_account, unknown email (counted failure)",
            ),
            ("am_get_info", "am_get_info"),
            ("lookup_pw", "lookup_account with password (bcrypt)"),
            ("create", "create_account (bcrypt)"),
        ] {
            for xff in [false, true] {
                let w = run_wrk(
                    16,
                    secs,
                    Some(&bench_dir.join("limits.lua")),
                    &base,
                    &[
                        ("RPC_BENCH_RPC", rpc.to_owned()),
                        ("RPC_BENCH_XFF", if xff { "1" } else { "0" }.to_owned()),
                        ("RPC_BENCH_KEYS", keys_file.display().to_string()),
                        ("RPC_BENCH_NONCE", format!("l{nonce}{xff}")),
                    ],
                )?;
                let mode = if xff {
                    "shared limits, 4096 clients"
                } else {
                    "exempt, no limit work"
                };
                report(&format!("{label}, 16 conns, {mode}"), &w);
            }
        }
    }
    if want("gpc_under_create") {
        // wrk saturates create_account; one probe connection sends
        // get_project_config every 2 ms and records each latency.
        let script = bench_dir.join("create_account.lua");
        let wrk_secs = secs;
        let nonce2 = format!("b{nonce}");
        let base2 = base.clone();
        let creator = std::thread::spawn(move || {
            run_wrk(
                16,
                wrk_secs,
                Some(&script),
                &base2,
                &[("RPC_BENCH_NONCE", nonce2)],
            )
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut probe = Http::connect(port).await?;
        let mut lat = Vec::new();
        let until = Instant::now() + Duration::from_secs(secs.saturating_sub(2).max(1));
        let mut tick = tokio::time::interval(Duration::from_millis(2));
        while Instant::now() < until {
            tick.tick().await;
            let t = Instant::now();
            let (st, _) = probe.get("/get_project_config.php").await?;
            lat.push(t.elapsed());
            if st != 200 {
                bail!("get_project_config HTTP {st}");
            }
        }
        let w = creator
            .join()
            .map_err(|_| anyhow::anyhow!("wrk thread"))??;
        lat.sort();
        let line = format!(
            "| get_project_config probe (500/s) while create_account runs flat out | {} samples | {:.2}ms | {:.2}ms (max {:.2}ms) | 0 | {} |",
            lat.len(),
            pct(&lat, 0.50).as_secs_f64() * 1e3,
            pct(&lat, 0.99).as_secs_f64() * 1e3,
            lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
            load()
        );
        println!("{line}");
        report("  (create_account meanwhile, 16 conns)", &w);
    }
    if want("bcrypt") {
        let t = Instant::now();
        let mut n = 0u32;
        while t.elapsed() < Duration::from_secs(3) {
            boinc_db::password::hash_for_storage("0123456789abcdef0123456789abcdef")?;
            n += 1;
        }
        let line = format!(
            "| bcrypt cost 10, one thread | {:.1} hashes/s per core | | | | {} |",
            f64::from(n) / t.elapsed().as_secs_f64(),
            load()
        );
        println!("{line}");
    }
    if want("login") {
        // One connection, one request at a time: the latency a volunteer
        // sees for a password check (bcrypt verify on the hashing pool).
        let mut c = Http::connect(port).await?;
        let probes = [
            (
                "lookup_account with passwd_hash, 1 conn, sequential",
                "<authenticator>",
            ),
            (
                "am_set_info with password_hash (unchanged), 1 conn, sequential",
                "<success/>",
            ),
        ];
        for (i, (name, expect)) in probes.into_iter().enumerate() {
            let mut lat = Vec::new();
            let until = Instant::now() + Duration::from_secs((secs / 2).max(1));
            let mut n = 0usize;
            while Instant::now() < until {
                let target = if i == 0 {
                    format!(
                        "/lookup_account.php?email_addr=seed{}%40bench.test\
                         &passwd_hash=0123456789abcdef0123456789abcdef",
                        n % keys.len()
                    )
                } else {
                    format!(
                        "/am_set_info.php?account_key={}\
                         &password_hash=0123456789abcdef0123456789abcdef",
                        keys[n % keys.len()]
                    )
                };
                n += 1;
                let t = Instant::now();
                let (st, body) = c.get(&target).await?;
                lat.push(t.elapsed());
                if st != 200 || !body.contains(expect) {
                    bail!("{name}: HTTP {st}: {body}");
                }
            }
            lat.sort();
            println!(
                "| {name} | {:.1} | {:.1}ms | {:.1}ms | 0 | {} |",
                lat.len() as f64 / (secs / 2).max(1) as f64,
                pct(&lat, 0.50).as_secs_f64() * 1e3,
                pct(&lat, 0.99).as_secs_f64() * 1e3,
                load()
            );
        }
    }
    if want("flip_vs_slap") {
        // am_set_info consent flips over 64 accounts at 16 connections,
        // grouped (the default) and each in its own transaction (a second
        // server with rpc_consent_group_workers 0 on the same database),
        // beside what MariaDB commits at 16 connections in the same run.
        let alone_dir = tempfile::tempdir()?;
        let alone_config = db.write_project(
            alone_dir.path(),
            "<rpc_rate_limit_exempt>127.0.0.1</rpc_rate_limit_exempt>\
             <rpc_consent_group_workers>0</rpc_consent_group_workers>",
            Some("Bench terms of use."),
        );
        let alone = start_server(&alone_config).await?;
        let lua = bench_dir.join("am_set_info.lua");
        let env = [("RPC_BENCH_KEYS", keys_file.display().to_string())];
        let one = run_wrk(
            16,
            secs,
            Some(&lua),
            &format!("http://127.0.0.1:{}", alone.port),
            &env,
        )?;
        drop(alone);
        report(
            "am_set_info STATSEXPORT flip, 64 accounts, 16 conns, each alone",
            &one,
        );
        let w = run_wrk(16, secs, Some(&lua), &base, &env)?;
        report(
            "am_set_info STATSEXPORT flip, 64 accounts, 16 conns, grouped",
            &w,
        );
        let slap = slap_inserts(&db, &mut conn).await?;
        println!(
            "| mariadb-slap: insert into t (v) values (1), 16 conns, 16000 queries | {slap:.0} | | | 0 | {} |",
            load()
        );
        println!(
            "| am_set_info flips / slap commit ceiling | {:.0}% grouped, {:.0}% each alone | | | | |",
            100.0 * w.rps / slap,
            100.0 * one.rps / slap
        );
    }
    if want("ceiling") {
        // am_set_info's statements for a consent flip, 16 connections, no
        // HTTP: today's sequence and, in the same run, the one it replaced.
        for before in [false, true] {
            let tx_per_s = statement_ceiling(&db, &keys, secs, before).await?;
            let what = if before {
                "before: lookup, begin, lock, re-read, type, latest, insert, LAST_INSERT_ID, commit = 9 round trips"
            } else {
                "lookup, begin, lock+read, type+latest, insert, commit = 6 round trips"
            };
            println!(
                "| MariaDB ceiling: am_set_info's statements ({what}), 16 conns, no HTTP | {tx_per_s:.0} tx/s | | | | {} |",
                load()
            );
        }
    }
    if want("mixed") {
        mixed(port, &keys, args.mixed_requests, &mut conn).await?;
    }
    drop(server);
    conn.disconnect().await.ok();
    println!("\n(load at end {})", load());
    Ok(())
}

/// Consent flips as am_set_info's statements alone, 16 connections, for
/// `secs`; `before`: the statement sequence before issue 11.
async fn statement_ceiling(
    db: &TestDb,
    keys: &[String],
    secs: u64,
    before: bool,
) -> anyhow::Result<f64> {
    let pool = db.pool();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let mut conn = pool.get_conn().await?;
    let type_id = queries::consent_type_by_name(&mut conn, "STATSEXPORT")
        .await?
        .context("STATSEXPORT")?
        .id;
    drop(conn);
    let mut tasks = Vec::new();
    for w in 0..16usize {
        let (pool, stop, done, keys) = (pool.clone(), stop.clone(), done.clone(), keys.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut c = pool.get_conn().await?;
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                let key = &keys[i % keys.len()];
                i += 16;
                let user = queries::user_by_authenticator(&mut c, key)
                    .await?
                    .context("user")?;
                let mut tx = c.start_transaction(TxOpts::default()).await?;
                let latest = if before {
                    boinc_db::account::lock_user(&mut tx, user.id).await?;
                    queries::user_by_id(&mut tx, user.id).await?;
                    queries::consent_type_by_name(&mut tx, "STATSEXPORT").await?;
                    queries::latest_consent(&mut tx, user.id, type_id)
                        .await?
                        .map(|l| l.consent_flag)
                } else {
                    boinc_db::account::lock_and_read_user(
                        &mut tx,
                        user.id,
                        &boinc_db::locking::LockSyntax::PLAIN,
                    )
                    .await?;
                    boinc_db::account::consent_type_and_latest(&mut tx, "STATSEXPORT", user.id)
                        .await?
                        .context("STATSEXPORT")?
                        .1
                };
                queries::insert_consent(
                    &mut tx,
                    &NewConsent {
                        userid: user.id,
                        consent_type_id: type_id,
                        consent_time: boinc_db::now(),
                        consent_flag: latest != Some(1),
                        consent_not_required: false,
                        source: "ceiling",
                    },
                )
                .await?;
                if before {
                    // The separate id read insert_consent used to make.
                    let _: Option<i64> = tx.query_first("SELECT LAST_INSERT_ID()").await?;
                }
                tx.commit().await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await??;
    }
    let rate = done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
    pool.disconnect().await.ok();
    Ok(rate)
}

/// `mariadb-slap --concurrency=16 --number-of-queries=16000` single-row
/// autocommit inserts into a table `t` of a scratch schema beside the
/// bench database: the durable commits/s MariaDB manages here.
async fn slap_inserts(db: &TestDb, conn: &mut mysql_async::Conn) -> anyhow::Result<f64> {
    let schema = format!("{}_slap", db.settings.name);
    conn.query_drop(format!("CREATE DATABASE `{schema}`"))
        .await?;
    conn.query_drop(format!(
        "CREATE TABLE `{schema}`.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB"
    ))
    .await?;
    let s = &db.settings;
    let out = Command::new("mariadb-slap")
        .args([
            &format!("--host={}", s.host),
            &format!("--port={}", s.port),
            &format!("--user={}", s.user),
            "--concurrency=16",
            "--number-of-queries=16000",
            &format!("--create-schema={schema}"),
            "--no-drop",
            "--query=insert into t (v) values (1)",
        ])
        .env("MYSQL_PWD", &s.passwd)
        .output()
        .context("running mariadb-slap (apt-get install mariadb-client)");
    conn.query_drop(format!("DROP DATABASE IF EXISTS `{schema}`"))
        .await?;
    let out = out?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "mariadb-slap failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let secs: f64 = text
        .lines()
        .find(|l| l.contains("Average number of seconds to run all queries"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("mariadb-slap output: {text}"))?;
    Ok(16000.0 / secs.max(1e-6))
}

/// 32 keep-alive connections; per 1000 requests: 3 create_account with
/// consent, 97 am_set_info flips, 150 am_get_info, 150 lookup_account,
/// 600 get_project_config. Then the consistency checks.
async fn mixed(
    port: u16,
    keys: &[String],
    total: usize,
    conn: &mut mysql_async::Conn,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(AtomicUsize::new(0));
    let bad = Arc::new(AtomicUsize::new(0));
    let keys = Arc::new(keys.to_vec());
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (next, created, bad, keys) = (next.clone(), created.clone(), bad.clone(), keys.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = Http::connect(port).await?;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let key = &keys[n % keys.len()];
                let slot = n % 1000;
                let target = if slot < 3 {
                    format!(
                        "/create_account.php?email_addr=mix{n}%40bench.test&passwd_hash=0123456789abcdef0123456789abcdef\
                         &user_name=Mix{n}&consent_flag={}&source=mixed",
                        n % 2
                    )
                } else if slot < 100 {
                    format!(
                        "/am_set_info.php?account_key={key}&consent_name=STATSEXPORT&consent_flag={}\
                         &consent_not_required=0&consent_source=mixed",
                        (n / 1000) % 2
                    )
                } else if slot < 250 {
                    format!("/am_get_info.php?account_key={key}")
                } else if slot < 400 {
                    format!("/lookup_account.php?email_addr=seed{}%40bench.test", n % 70)
                } else {
                    "/get_project_config.php".to_owned()
                };
                let (status, body) = c.get(&target).await?;
                if status != 200 || !body.starts_with("<?xml") {
                    bad.fetch_add(1, Ordering::Relaxed);
                }
                if slot < 3 {
                    if body.contains("<authenticator>") {
                        created.fetch_add(1, Ordering::Relaxed);
                    } else {
                        bad.fetch_add(1, Ordering::Relaxed);
                        eprintln!("create_account failed: {body}");
                    }
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let took = t.elapsed();
    let accounts: i64 = conn
        .query_first("SELECT COUNT(*) FROM user WHERE email_addr LIKE 'mix%'")
        .await?
        .unwrap_or(0);
    let orphans: i64 = conn
        .query_first(
            "SELECT COUNT(*) FROM user u WHERE NOT EXISTS (SELECT 1 FROM consent c \
             JOIN consent_type t ON t.id = c.consent_type_id WHERE c.userid = u.id AND t.shortname = 'ENROLL')",
        )
        .await?
        .unwrap_or(0);
    let line = format!(
        "| mixed run, 32 conns: {total} requests | {:.0} | | | {} bad | {} | accounts {} == successful creates {}; users without consent row {} |",
        total as f64 / took.as_secs_f64(),
        bad.load(Ordering::Relaxed),
        load(),
        accounts,
        created.load(Ordering::Relaxed),
        orphans
    );
    println!("{line}");
    if bad.load(Ordering::Relaxed) != 0
        || accounts as usize != created.load(Ordering::Relaxed)
        || orphans != 0
    {
        bail!("mixed run failed its checks");
    }
    Ok(())
}
