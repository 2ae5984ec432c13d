//! Shared by the `boinc-ops project` tests: the real binary run on a
//! make_project-shaped folder, stand-in binaries, and file snapshots.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_boinc-ops");

/// A uid/gid no account on the machine has: the project's (non-root) user.
pub const PROJECT_UID: u32 = 4242;

/// What install adds to a project's folder (and uninstall takes away).
pub const INSTALLED: [&str; 5] = [
    "bin/boinc-rpc",
    "bin/boinc-ops",
    "bin/boinc_consent_db_dump",
    "boinc_consent_db_dump_spec.xml",
    "boinc-consent-server.install.json",
];

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Stand-ins for the three binaries install copies from `--from`, each
/// `pad` bytes long (big ones keep install's write window open for racers).
pub fn fake_binaries(dir: &Path, version: &str, pad: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for b in ["boinc-rpc", "boinc-ops", "db_dump"] {
        let mut body = format!("#!/bin/sh\necho {b} {version}\nexit 0\n").into_bytes();
        body.resize(body.len() + pad, b'#');
        body.push(b'\n');
        std::fs::write(dir.join(b), body).unwrap();
    }
}

fn command(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("BOINC_DATABASE_URL")
        .env_remove("BOINC_PROJECT_DIR")
        .env_remove("RUST_LOG");
    c
}

fn checked(o: Output) -> Output {
    // Plain output: not a terminal, so no escape bytes; never a panic.
    assert!(
        !o.stdout.contains(&0x1b) && !o.stderr.contains(&0x1b),
        "escape byte in output:\n{}",
        text(&o)
    );
    assert_ne!(o.status.code(), Some(101), "panicked:\n{}", text(&o));
    o
}

/// `boinc-ops ARGS` as root (the tests run as root).
pub fn ops(args: &[&str]) -> Output {
    checked(command(args).output().unwrap())
}

/// `boinc-ops ARGS` as the project's user.
pub fn ops_as(uid: u32, args: &[&str]) -> Output {
    checked(command(args).uid(uid).gid(uid).output().unwrap())
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[track_caller]
pub fn ok(o: Output) -> String {
    assert!(o.status.success(), "failed:\n{}", text(&o));
    text(&o)
}

/// Every file (and symlink) under `dir` with its bytes (a link's target).
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let key = p.strip_prefix(dir).unwrap().to_owned();
            if m.file_type().is_symlink() {
                let mut v = b"-> ".to_vec();
                v.extend(
                    std::fs::read_link(&p)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                );
                out.insert(key, v);
            } else if m.is_dir() {
                stack.push(p);
            } else {
                out.insert(key, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The snapshot without install's config.xml backups.
pub fn without_backups(mut s: BTreeMap<PathBuf, Vec<u8>>) -> BTreeMap<PathBuf, Vec<u8>> {
    s.retain(|p, _| !p.to_string_lossy().starts_with("config.xml.bak-"));
    s
}

/// Mode, owner and bytes of a file, to prove nothing touched it.
pub fn fingerprint(p: &Path) -> (u32, u32, u32, Vec<u8>) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (
        m.permissions().mode() & 0o7777,
        m.uid(),
        m.gid(),
        std::fs::read(p).unwrap(),
    )
}

/// A folder the project's user can reach: temp dirs are 0700 root.
pub fn open_to_all(p: &Path) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// chown -R uid:uid
pub fn chown_tree(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(uid)).unwrap();
    if std::fs::symlink_metadata(p).unwrap().is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            chown_tree(&e.unwrap().path(), uid);
        }
    }
}

/// The `<task>` element (text) whose command runs the stats export,
/// whatever the install layout calls the program.
pub fn stats_task(config: &str) -> Option<String> {
    let mut rest = config;
    let mut base = 0;
    while let Some(i) = rest.find("<task>") {
        let start = base + i;
        let end = config[start..]
            .find("</task>")
            .map(|e| start + e + "</task>".len())?;
        let el = &config[start..end];
        let cmd = el
            .split("<cmd>")
            .nth(1)
            .and_then(|s| s.split("</cmd>").next())
            .unwrap_or("")
            .trim();
        let prog = cmd.split_whitespace().next().unwrap_or("");
        let prog = prog.rsplit('/').next().unwrap_or(prog);
        if prog == "db_dump" || prog == "boinc_consent_db_dump" {
            return Some(el.to_owned());
        }
        base = end;
        rest = &config[end..];
    }
    None
}

/// Whether BOINC's `bin/start` skips a task element: its `<disabled>`
/// present with content other than exactly "0" (an empty `<disabled/>`
/// counts as disabled, as start's documentation says).
pub fn task_disabled(task: &str) -> bool {
    if task.contains("<disabled/>") || task.contains("<disabled />") {
        return true;
    }
    match task.split_once("<disabled>") {
        None => false,
        Some((_, after)) => after.split("</disabled>").next().unwrap_or("") != "0",
    }
}

/// The stamps `config.xml.bak-STAMP` may take in the next `secs` seconds
/// (and the last two), as install names them.
pub fn backup_stamps(secs: i64) -> Vec<String> {
    let now = chrono::Utc::now();
    (-2..secs)
        .map(|s| {
            (now + chrono::Duration::seconds(s))
                .format("%Y%m%d-%H%M%S")
                .to_string()
        })
        .collect()
}
