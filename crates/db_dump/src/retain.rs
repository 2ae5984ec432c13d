//! Retention of dated dump archives: after a successful publish, archives
//! older than the spec's `<archive_days>` (default 60, as long as BOINC
//! keeps deletion records; 0 keeps them forever) are removed, so people
//! who withdrew or were deleted do not stay in old copies indefinitely.
//!
//! Archives are recognised by name only: `archive_dir/stats_Y_M_D_h_m_s`
//! (ours and upstream's), and, as upstream leaves them when there is no
//! archive_dir, `<final_output_dir>_Y_M_D_h_m_s` beside the published
//! directory. The date in the name (local time, when the dump was
//! replaced) decides the age. Anything else, the published dump (or what
//! a symlinked final_output_dir points to) and output_dir are never
//! touched.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Local, NaiveDate, TimeZone};

use crate::spec::DumpSpec;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub path: PathBuf,
    /// When it was archived (from its name).
    pub archived: DateTime<Local>,
}

/// `prefix_Y_M_D_h_m_s` -> the local time it names.
fn stamp_of(name: &str, prefix: &str) -> Option<DateTime<Local>> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('_')?;
    let parts: Vec<&str> = rest.split('_').collect();
    if parts.len() != 6
        || parts
            .iter()
            .any(|p| p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let n: Vec<u32> = parts
        .iter()
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let naive = NaiveDate::from_ymd_opt(n[0] as i32, n[1], n[2])?.and_hms_opt(n[3], n[4], n[5])?;
    Local.from_local_datetime(&naive).earliest()
}

/// Every dated archive of this spec's dumps, oldest first.
pub fn archives(spec: &DumpSpec) -> io::Result<Vec<Archive>> {
    let mut out = Vec::new();
    let published = fs::canonicalize(&spec.final_output_dir).ok();
    let output = fs::canonicalize(&spec.output_dir).ok();
    let mut scan = |dir: &Path, prefix: &str| -> io::Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(archived) = name.to_str().and_then(|n| stamp_of(n, prefix)) else {
                continue;
            };
            // Real directories only: never follow or remove a symlink.
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let path = entry.path();
            let real = fs::canonicalize(&path).ok();
            if real.is_some() && (real == published || real == output) {
                continue;
            }
            out.push(Archive { path, archived });
        }
        Ok(())
    };
    if let Some(a) = &spec.archive_dir {
        scan(a, "stats")?;
    }
    let fin = &spec.final_output_dir;
    if let Some(name) = fin.file_name().and_then(|n| n.to_str()) {
        let parent = match fin.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        scan(&parent, name)?;
    }
    out.sort_by(|a, b| a.archived.cmp(&b.archived).then(a.path.cmp(&b.path)));
    out.dedup_by(|a, b| a.path == b.path);
    Ok(out)
}

/// Archives older than `days` at `now` (none when `days` is 0).
pub fn expired(spec: &DumpSpec, days: u32, now: DateTime<Local>) -> io::Result<Vec<Archive>> {
    if days == 0 {
        return Ok(Vec::new());
    }
    let cutoff = now - chrono::Duration::days(days.into());
    Ok(archives(spec)?
        .into_iter()
        .filter(|a| a.archived < cutoff)
        .collect())
}

/// What pruning did.
#[derive(Debug, Default, Clone)]
pub struct Pruned {
    pub removed: Vec<PathBuf>,
    pub failed: Vec<(PathBuf, String)>,
}

pub fn prune(list: &[Archive]) -> Pruned {
    let mut p = Pruned::default();
    for a in list {
        match fs::remove_dir_all(&a.path) {
            Ok(()) => p.removed.push(a.path.clone()),
            Err(e) => p.failed.push((a.path.clone(), e.to_string())),
        }
    }
    p
}

/// `--dry-run`: the archives a publish now would prune, one per line.
pub fn dry_run_report(spec: &DumpSpec) -> io::Result<String> {
    let days = spec.archive_days;
    let list = expired(spec, days, Local::now())?;
    let mut out = if days == 0 {
        "db_dump --dry-run: <archive_days> is 0: archives are kept forever\n".to_owned()
    } else {
        format!(
            "db_dump --dry-run: {} archive(s) older than {days} days would be pruned after the next successful dump\n",
            list.len()
        )
    };
    for a in &list {
        out.push_str(&format!(
            "would prune {} (archived {})\n",
            a.path.display(),
            a.archived.format("%Y-%m-%d %H:%M:%S")
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names() {
        let t = stamp_of("stats_2026_1_2_3_4_5", "stats").unwrap();
        assert_eq!(
            t.format("%Y-%m-%d %H:%M:%S").to_string(),
            "2026-01-02 03:04:05"
        );
        for bad in [
            "stats_2026_1_2_3_4",
            "stats_2026_13_2_3_4_5",
            "stats_2026_1_2_3_4_5_6",
            "stats_2026_1_2_3_4_x",
            "stats2026_1_2_3_4_5",
            "stats_tmp",
            "stats",
            "statsx_2026_1_2_3_4_5",
            "stats_2026_1_2_3_4_+5",
        ] {
            assert!(stamp_of(bad, "stats").is_none(), "{bad}");
        }
    }
}
