//! wrk runs and the report's table rows.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

use crate::load;

/// What one wrk run measured.
pub struct Wrk {
    pub rps: f64,
    pub p50: String,
    pub p99: String,
    pub non2xx: u64,
    pub errors: String,
}

/// `wrk -t2 -cCONNS -dSECSs --latency --timeout 10s [-s SCRIPT] URL`.
pub fn run_wrk(
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

/// The report's header row.
pub fn header() {
    println!(
        "| scenario | req/s | p50 | p99 | non-2xx | load (1/5/15 min) |\n|---|---|---|---|---|---|"
    );
}

/// One row of the report for a wrk run.
pub fn report(name: &str, w: &Wrk) {
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
}
