//! `--metrics-file`: after each run the real binary leaves a textfile for
//! node_exporter's collector: the last success's time, duration, records
//! and bytes per file; a failed run keeps the last success's time and
//! adds its own. Replaced in one step (no leftovers beside it).

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_db_dump");

fn samples(path: &std::path::Path) -> HashMap<String, f64> {
    let text = std::fs::read_to_string(path).unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("parses as the text format");
    scrape
        .samples
        .into_iter()
        .map(|s| {
            let key = match s.labels.get("file") {
                Some(f) => format!("{}{{{f}}}", s.metric),
                None => s.metric.clone(),
            };
            let v = match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                other => panic!("{key}: not a gauge: {other:?}"),
            };
            (key, v)
        })
        .collect()
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test]
async fn a_run_leaves_metrics_and_a_failed_run_keeps_the_last_success() {
    let f = fixture().await;
    let spec = f.standard_spec();
    let config = f.config("");
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("boinc_db_dump.prom");
    let before = now();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("--dump-spec")
        .arg(&spec)
        .arg("--metrics-file")
        .arg(&metrics)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = samples(&metrics);
    let ok_at = s["boinc_db_dump_last_success_timestamp_seconds"];
    assert!(ok_at >= before.floor() && ok_at <= now(), "{ok_at}");
    assert!(s["boinc_db_dump_duration_seconds"] > 0.0);
    assert_eq!(s["boinc_db_dump_consent_filter"], 1.0);
    // The user file holds the fixture's exportable, consenting users.
    let users = read_file(&f.stats_dir().join("user.gz"));
    assert_eq!(s["boinc_db_dump_records{user}"], ids(&users).len() as f64);
    assert!(s["boinc_db_dump_bytes{user}"] > 0.0);
    assert!(!s.contains_key("boinc_db_dump_last_failure_timestamp_seconds"));

    // The database goes: the run fails, the file says so and keeps the
    // last success's time.
    let broken = dir.path().join("broken");
    let config = f.db.write_project(&broken, "", None);
    let xml = std::fs::read_to_string(&config).unwrap();
    let s_ = &f.db.settings;
    let xml = xml.replace(
        &format!("<db_host>{}:{}</db_host>", s_.host, s_.port),
        &format!(
            "<db_host>127.0.0.1:{}</db_host>",
            boinc_db::testing::free_port()
        ),
    );
    std::fs::write(&config, xml).unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("--dump-spec")
        .arg(&spec)
        .arg("--metrics-file")
        .arg(&metrics)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let s = samples(&metrics);
    assert_eq!(s["boinc_db_dump_last_success_timestamp_seconds"], ok_at);
    assert!(s["boinc_db_dump_last_failure_timestamp_seconds"] >= ok_at);
    assert!(!s.contains_key("boinc_db_dump_duration_seconds"));
    // Nothing but the file itself is left in the collector's folder.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "broken")
        .collect();
    assert_eq!(names, ["boinc_db_dump.prom"]);
}
