//! The wrk scenarios: get_project_config, am_set_info flips (grouped and
//! alone), create_account, the per-IP limits' cost, get_project_config
//! while create_account saturates the hashing pool.

use std::time::{Duration, Instant};

use anyhow::bail;
use mysql_async::Conn;

use super::ceiling::slap_inserts;
use super::probe::{pct, Http};
use super::server::start_server;
use super::wrk::{report, run_wrk, Wrk};
use super::Bench;
use crate::load;

/// get_project_config at `conns` connections.
pub fn gpc(b: &Bench<'_>, conns: u32) -> anyhow::Result<()> {
    report(
        &format!("get_project_config, {conns} conns"),
        &run_wrk(conns, b.secs, None, &b.gpc_url(), &[])?,
    );
    Ok(())
}

/// get_project_config with counting on and off.
pub async fn gpc_metrics(b: &Bench<'_>) -> anyhow::Result<()> {
    let (db, secs) = (b.db, b.secs);
    let gpc = b.gpc_url();
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
    Ok(())
}

/// am_set_info STATSEXPORT flips over the seeded accounts.
pub fn set_info(b: &Bench<'_>) -> anyhow::Result<()> {
    let (secs, bench_dir, base, keys_file) = (b.secs, &b.scripts, &b.base, &b.keys_file);
    let w = run_wrk(
        16,
        secs,
        Some(&bench_dir.join("am_set_info.lua")),
        base,
        &[("RPC_BENCH_KEYS", keys_file.display().to_string())],
    )?;
    report("am_set_info STATSEXPORT flip, 16 conns", &w);
    Ok(())
}

/// create_account with unique emails.
pub fn create(b: &Bench<'_>) -> anyhow::Result<()> {
    let (secs, bench_dir, base, nonce) = (b.secs, &b.scripts, &b.base, &b.nonce);
    let w = run_wrk(
        16,
        secs,
        Some(&bench_dir.join("create_account.lua")),
        base,
        &[("RPC_BENCH_NONCE", format!("a{nonce}"))],
    )?;
    report("create_account unique emails, 16 conns", &w);
    Ok(())
}

/// The shared per-IP limits' cost.
pub fn limits(b: &Bench<'_>) -> anyhow::Result<()> {
    let (secs, bench_dir, base, keys_file, nonce) =
        (b.secs, &b.scripts, &b.base, &b.keys_file, &b.nonce);
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
                base,
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
    Ok(())
}

/// get_project_config's latency while create_account runs flat out.
pub async fn gpc_under_create(b: &Bench<'_>) -> anyhow::Result<()> {
    let (secs, bench_dir, base, nonce, port) = (b.secs, &b.scripts, &b.base, &b.nonce, b.port);
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
    Ok(())
}

/// am_set_info flips grouped and each alone, beside MariaDB's commit
/// ceiling.
pub async fn flip_vs_slap(b: &Bench<'_>, conn: &mut Conn) -> anyhow::Result<()> {
    let (db, secs, bench_dir, base, keys_file) = (b.db, b.secs, &b.scripts, &b.base, &b.keys_file);
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
    let w = run_wrk(16, secs, Some(&lua), base, &env)?;
    report(
        "am_set_info STATSEXPORT flip, 64 accounts, 16 conns, grouped",
        &w,
    );
    let slap = slap_inserts(db, conn).await?;
    println!(
        "| mariadb-slap: insert into t (v) values (1), 16 conns, 16000 queries | {slap:.0} | | | 0 | {} |",
        load()
    );
    println!(
        "| am_set_info flips / slap commit ceiling | {:.0}% grouped, {:.0}% each alone | | | | |",
        100.0 * w.rps / slap,
        100.0 * one.rps / slap
    );
    Ok(())
}
