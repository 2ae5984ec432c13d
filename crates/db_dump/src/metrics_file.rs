//! `--metrics-file F`: what the last run did, for node_exporter's textfile
//! collector, so a missed nightly dump can alert
//! (`time() - boinc_db_dump_last_success_timestamp_seconds > 90000`).
//!
//! The file is replaced in one step (written beside it under a name the
//! collector ignores, synced, renamed over it), so the collector never
//! reads half a file. A failed run keeps the last success's time from the
//! file it replaces and adds the failure's time.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::dump::Summary;

#[derive(Debug, thiserror::Error)]
#[error("metrics file {path}: {source}")]
pub struct MetricsFileError {
    path: PathBuf,
    source: std::io::Error,
}

/// A label value in the text format: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn gauge(out: &mut String, name: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

/// The last success's time in an earlier file, if it has one.
fn last_success(path: &Path) -> Option<f64> {
    let text = fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("boinc_db_dump_last_success_timestamp_seconds "))
        .and_then(|v| v.trim().parse().ok())
}

/// After a published dump.
pub fn success(path: &Path, s: &Summary, now: f64) -> Result<(), MetricsFileError> {
    let mut out = String::new();
    gauge(
        &mut out,
        "boinc_db_dump_last_success_timestamp_seconds",
        "Unix time the last dump was published.",
        &[(String::new(), now)],
    );
    gauge(
        &mut out,
        "boinc_db_dump_duration_seconds",
        "How long the last published dump took.",
        &[(String::new(), s.wall.as_secs_f64())],
    );
    gauge(
        &mut out,
        "boinc_db_dump_consent_filter",
        "1 if the last dump left out users without STATSEXPORT consent.",
        &[(String::new(), if s.consent_filter { 1.0 } else { 0.0 })],
    );
    let per_file = |f: &dyn Fn(&crate::ctx::EnumSummary) -> f64| -> Vec<(String, f64)> {
        s.enumerations
            .iter()
            .map(|e| (format!("{{file=\"{}\"}}", label(&e.filename)), f(e)))
            .collect()
    };
    gauge(
        &mut out,
        "boinc_db_dump_records",
        "Records in each file of the last dump.",
        &per_file(&|e| e.records as f64),
    );
    gauge(
        &mut out,
        "boinc_db_dump_bytes",
        "Bytes on disk of each file of the last dump.",
        &per_file(&|e| e.outputs.iter().map(|o| o.bytes_file).sum::<u64>() as f64),
    );
    replace(path, &out)
}

/// After a failed run: the last success stays as it was.
pub fn failure(path: &Path, now: f64) -> Result<(), MetricsFileError> {
    let mut out = String::new();
    if let Some(t) = last_success(path) {
        gauge(
            &mut out,
            "boinc_db_dump_last_success_timestamp_seconds",
            "Unix time the last dump was published.",
            &[(String::new(), t)],
        );
    }
    gauge(
        &mut out,
        "boinc_db_dump_last_failure_timestamp_seconds",
        "Unix time of the last run that published nothing.",
        &[(String::new(), now)],
    );
    replace(path, &out)
}

fn replace(path: &Path, text: &str) -> Result<(), MetricsFileError> {
    let err = |source| MetricsFileError {
        path: path.to_owned(),
        source,
    };
    // Not ending in .prom: the collector skips it while it is written.
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(name);
    let _ = fs::remove_file(&tmp);
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
