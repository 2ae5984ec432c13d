//! Pruning of dated dump archives (`<archive_days>`, issue 13 item 3)
//! against a real dump run: old archives go after a successful publish,
//! the newest stay, the published dump and anything not named like an
//! archive are never touched, `--dry-run` changes nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use boinc_db_dump::publish::stamp;
use common::*;

fn dated(dir: &Path, prefix: &str, days_ago: i64) -> PathBuf {
    let when = chrono::Local::now() - chrono::Duration::days(days_ago);
    let p = dir.join(format!("{prefix}_{}", stamp(when)));
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("tables.xml"), format!("{days_ago} days")).unwrap();
    p
}

const USER: &str = "<enumeration><table>user</table><filename>user</filename>\
    <output><compression>gzip</compression></output></enumeration>";

#[tokio::test]
async fn prune_keeps_newest_archives_and_never_the_published_dump() {
    let f = fixture().await;
    let spec = f.spec("a.xml", USER, true);
    f.dump(&spec, "").await.unwrap();
    let arch = f.dir.path().join("archive");
    let old90 = dated(&arch, "stats", 90);
    let old61 = dated(&arch, "stats", 61);
    let new59 = dated(&arch, "stats", 59);
    let new1 = dated(&arch, "stats", 1);
    // Upstream without archive_dir leaves stats_DATE beside stats.
    let sibling = dated(f.dir.path(), "stats", 100);
    // Not archives: another name, a file with an archive's name, a
    // symlink with one (pointing at the archive folder itself).
    let other = arch.join("stats_old_copy");
    std::fs::create_dir_all(&other).unwrap();
    let file = arch.join("stats_2001_1_1_1_1_1");
    std::fs::write(&file, "x").unwrap();
    let link = arch.join("stats_2001_2_2_2_2_2");
    std::os::unix::fs::symlink(&new59, &link).unwrap();

    // Dry run through the binary: lists, changes nothing, needs no DB.
    let before = walk(f.dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_db_dump"))
        .arg("--config")
        .arg(f.dir.path().join("nonexistent-config.xml"))
        .arg("--dump-spec")
        .arg(&spec)
        .arg("--dry-run")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}{err}");
    assert!(text.contains("3 archive(s) older than 60 days"), "{text}");
    for p in [&old90, &old61, &sibling] {
        assert!(text.contains(&p.display().to_string()), "{text}");
    }
    for p in [&new59, &new1, &other] {
        assert!(!text.contains(&format!("{} ", p.display())), "{text}");
    }
    assert_eq!(walk(f.dir.path()), before, "--dry-run changed something");

    let s = f.dump(&spec, "").await.unwrap();
    let mut pruned = s.pruned.clone();
    pruned.sort();
    let mut want = vec![old90.clone(), old61.clone(), sibling.clone()];
    want.sort();
    assert_eq!(pruned, want);
    for p in [&old90, &old61, &sibling] {
        assert!(!p.exists(), "{} kept", p.display());
    }
    for p in [&new59, &new1, &other, &file] {
        assert!(p.exists(), "{} pruned", p.display());
    }
    assert!(std::fs::symlink_metadata(&link).is_ok(), "symlink removed");
    // The newest archive (the dump just replaced) is there too.
    let archives = std::fs::read_dir(&arch).unwrap().count();
    assert_eq!(
        archives, 6,
        "59, 1, other, file, link and the dump just replaced"
    );
    assert!(
        s.notes
            .iter()
            .any(|n| n.starts_with("pruned 3 archive(s) older than 60 days")),
        "{:?}",
        s.notes
    );
    let user = read_file(&f.stats_dir().join("user.gz"));
    check_xml("user.gz", &user, "users");
}

/// A published dump reached through a symlink named like an old archive
/// is never pruned; `<archive_days>0</archive_days>` keeps everything; a
/// failed dump prunes nothing.
#[tokio::test]
async fn published_target_zero_days_and_failed_runs_are_safe() {
    let f = fixture().await;
    let d = f.dir.path();
    // final_output_dir "stats" -> stats_<200 days ago> (a dated name).
    let target = d.join(format!(
        "stats_{}",
        stamp(chrono::Local::now() - chrono::Duration::days(200))
    ));
    std::fs::create_dir_all(&target).unwrap();
    std::os::unix::fs::symlink(&target, f.stats_dir()).unwrap();
    let old = dated(d, "stats", 300);
    let spec = f.spec("s.xml", USER, false);
    let s = f.dump(&spec, "").await.unwrap();
    assert_eq!(s.pruned, vec![old.clone()]);
    assert!(target.join("user.gz").exists(), "published dump pruned");
    assert!(std::fs::symlink_metadata(f.stats_dir())
        .unwrap()
        .file_type()
        .is_symlink());

    let keep = dated(d, "stats", 400);
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "</boinc_db_dump_spec>",
        "<archive_days>0</archive_days></boinc_db_dump_spec>",
    );
    std::fs::write(&spec, text).unwrap();
    let s = f.dump(&spec, "").await.unwrap();
    assert!(s.pruned.is_empty() && keep.exists());

    // A run that fails before publishing prunes nothing.
    let spec = f.spec("f.xml", USER, false);
    let config = boinc_db::ProjectConfig::load(&f.config("")).unwrap();
    let loaded = boinc_db_dump::DumpSpec::load(&spec).unwrap();
    std::fs::remove_file(&spec).unwrap();
    let r = boinc_db_dump::run(boinc_db_dump::Options {
        config: boinc_db_dump::DumpConfig::new(&config, None).unwrap(),
        spec: loaded,
        level: 1,
        jobs: 2,
        progress: None,
    })
    .await;
    assert!(r.is_err());
    assert!(keep.exists(), "a failed run pruned");
}

/// Every path below `dir` with its file contents (symlinks by target).
fn walk(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let t = e.file_type().unwrap();
            if t.is_symlink() {
                out.push((
                    p.clone(),
                    std::fs::read_link(&p)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                ));
            } else if t.is_dir() {
                out.push((p.clone(), Vec::new()));
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}
