//! Building the dump in `output_dir` and swapping it into
//! `final_output_dir` in one step.
//!
//! Upstream moves the old folder away and then the new one in, so for a
//! moment there is no stats folder, and an error in between strands it.
//! We exchange the two directories with `renameat2(RENAME_EXCHANGE)`:
//! readers see the old dump or the new one, never neither.

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error("another db_dump holds {0}")]
    Locked(PathBuf),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PublishError + 'a {
    move |source| PublishError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// Marks a directory as a dump under construction (removed at publish).
pub const MARKER: &str = ".db_dump_incomplete";

/// Held for the whole run: one db_dump at a time per output_dir.
pub struct RunLock {
    _file: File,
}

pub fn lock(output_dir: &Path) -> Result<RunLock, PublishError> {
    let mut name = output_dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "db_dump".into());
    name.push(".lock");
    let path = output_dir.with_file_name(name);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err("open lock file", &path))?;
    // SAFETY: flock on a file descriptor we own; no memory is shared.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(PublishError::Locked(path));
    }
    Ok(RunLock { _file: file })
}

/// Check the directories before any work, and create a fresh output_dir.
pub fn prepare(output_dir: &Path, final_dir: &Path) -> Result<(), PublishError> {
    let out_abs = absolute(output_dir);
    let fin_abs = absolute(final_dir);
    if out_abs.starts_with(&fin_abs) || fin_abs.starts_with(&out_abs) {
        return Err(PublishError::Config(format!(
            "output_dir {} and final_output_dir {} must be separate directories",
            output_dir.display(),
            final_dir.display()
        )));
    }
    if output_dir.exists() {
        // Only ever remove what an earlier run left behind.
        let ours = output_dir.join(MARKER).exists()
            || output_dir.join("db_dump.xml").exists()
            // A fallback publish stopped half way (`replace_files`).
            || previous_of(output_dir).exists()
            || fs::read_dir(output_dir)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
        if !ours {
            return Err(PublishError::Config(format!(
                "output_dir {} exists and was not made by db_dump; remove it or choose another",
                output_dir.display()
            )));
        }
        fs::remove_dir_all(output_dir).map_err(io_err("remove old output_dir", output_dir))?;
    }
    // What an interrupted fallback publish kept aside (see `replace_files`).
    let previous = previous_of(output_dir);
    if previous.exists() {
        fs::remove_dir_all(&previous).map_err(io_err("remove leftover", &previous))?;
    }
    fs::create_dir_all(output_dir).map_err(io_err("create output_dir", output_dir))?;
    File::create(output_dir.join(MARKER)).map_err(io_err("write marker in", output_dir))?;
    // A rename cannot cross file systems: find out now, not after the work.
    let final_parent = parent_of(&fin_abs);
    let dev_out = fs::metadata(output_dir)
        .map_err(io_err("stat", output_dir))?
        .dev();
    let dev_fin = fs::metadata(&final_parent)
        .map_err(io_err("stat final_output_dir's parent", &final_parent))?
        .dev();
    if dev_out != dev_fin {
        return Err(PublishError::Config(format!(
            "output_dir {} and final_output_dir {} must be on the same file system",
            output_dir.display(),
            final_dir.display()
        )));
    }
    Ok(())
}

/// Remove a dump that will not be published.
pub fn discard(output_dir: &Path) {
    if output_dir.join(MARKER).exists() {
        let _ = fs::remove_dir_all(output_dir);
    }
}

/// The file operations publishing makes, one seam so a test can make each
/// of them fail ([`RealFs`] is the only implementation outside tests).
pub trait FsOps {
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Swap two directories in one step (`renameat2(RENAME_EXCHANGE)`).
    fn exchange(&self, a: &Path, b: &Path) -> io::Result<()>;
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn copy(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, p: &Path) -> io::Result<()>;
    fn remove_dir_all(&self, p: &Path) -> io::Result<()>;
    fn create_dir(&self, p: &Path) -> io::Result<()>;
}

pub struct RealFs;

impl FsOps for RealFs {
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn exchange(&self, a: &Path, b: &Path) -> io::Result<()> {
        exchange(a, b)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::hard_link(from, to)
    }
    fn copy(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::copy(from, to).map(|_| ())
    }
    fn remove_file(&self, p: &Path) -> io::Result<()> {
        fs::remove_file(p)
    }
    fn remove_dir_all(&self, p: &Path) -> io::Result<()> {
        fs::remove_dir_all(p)
    }
    fn create_dir(&self, p: &Path) -> io::Result<()> {
        fs::create_dir(p)
    }
}

/// Where the fallback keeps the previous dump while it replaces files.
fn previous_of(output_dir: &Path) -> PathBuf {
    let mut name = output_dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "db_dump".into());
    name.push(".previous");
    output_dir.with_file_name(name)
}

/// Make the complete dump in `output_dir` the published one. The previous
/// dump goes to `archive_dir/stats_Y_M_D_H_M_S` (upstream's name) or is
/// removed.
pub fn publish(
    output_dir: &Path,
    final_dir: &Path,
    archive_dir: Option<&Path>,
    stamp: &str,
) -> Result<(), PublishError> {
    publish_with(&RealFs, output_dir, final_dir, archive_dir, stamp)
}

/// [`publish`] through `ops`.
pub fn publish_with(
    ops: &dyn FsOps,
    output_dir: &Path,
    final_dir: &Path,
    archive_dir: Option<&Path>,
    stamp: &str,
) -> Result<(), PublishError> {
    ops.remove_file(&output_dir.join(MARKER))
        .map_err(io_err("remove marker in", output_dir))?;
    sync_dir(output_dir)?;
    // A symlinked stats folder stays a symlink: swap its target instead.
    let target = match fs::symlink_metadata(final_dir) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(final_dir).map_err(io_err("resolve", final_dir))?
        }
        _ => final_dir.to_owned(),
    };
    if !target.exists() {
        ops.rename(output_dir, &target)
            .map_err(io_err("publish into", &target))?;
        sync_dir(&parent_of(&absolute(&target)))?;
        return Ok(());
    }
    match ops.exchange(output_dir, &target) {
        Ok(()) => {}
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) => {
            tracing::warn!(
                "{}: atomic exchange unsupported ({e}); replacing its files one by one",
                target.display()
            );
            replace_files(ops, output_dir, &target)?;
        }
        Err(e) => return Err(io_err("exchange with", &target)(e)),
    }
    sync_dir(&parent_of(&absolute(&target)))?;
    // output_dir now holds the previous dump.
    match archive_dir {
        Some(a) => {
            fs::create_dir_all(a).map_err(io_err("create archive_dir", a))?;
            let dest = a.join(format!("stats_{stamp}"));
            if let Err(e) = ops.rename(output_dir, &dest) {
                if e.raw_os_error() == Some(libc::EXDEV) {
                    copy_dir(output_dir, &dest)?;
                    ops.remove_dir_all(output_dir)
                        .map_err(io_err("remove", output_dir))?;
                } else {
                    return Err(io_err("archive into", &dest)(e));
                }
            }
        }
        None => ops
            .remove_dir_all(output_dir)
            .map_err(io_err("remove old dump", output_dir))?,
    }
    Ok(())
}

/// Where the folders cannot be exchanged: the published folder is never
/// moved, so it is never missing. Its files are kept aside first (hard
/// links, or copies), then each new file is renamed over its old one (each
/// file is always whole, old or new), then files the new dump lacks go.
/// Readers may see a mix of old and new files meanwhile, never a missing
/// or partial one; whatever step fails, the published folder stays whole
/// file by file and the previous dump stays aside. On success,
/// `output_dir` holds the previous dump, as after an exchange.
fn replace_files(ops: &dyn FsOps, output_dir: &Path, target: &Path) -> Result<(), PublishError> {
    let keep = previous_of(output_dir);
    if keep.exists() {
        ops.remove_dir_all(&keep)
            .map_err(io_err("remove leftover", &keep))?;
    }
    ops.create_dir(&keep).map_err(io_err("create", &keep))?;
    let old = entries(target)?;
    for (name, is_dir) in &old {
        let (from, to) = (target.join(name), keep.join(name));
        if *is_dir {
            copy_dir(&from, &to)?;
        } else if ops.hard_link(&from, &to).is_err() {
            ops.copy(&from, &to)
                .map_err(io_err("keep a copy as", &to))?;
        }
    }
    let new = entries(output_dir)?;
    for (name, is_dir) in &new {
        let (from, to) = (output_dir.join(name), target.join(name));
        if *is_dir && to.exists() {
            ops.remove_dir_all(&to).map_err(io_err("replace", &to))?;
        }
        ops.rename(&from, &to).map_err(io_err("publish as", &to))?;
    }
    for (name, is_dir) in &old {
        if new.iter().any(|(n, _)| n == name) {
            continue;
        }
        let p = target.join(name);
        if *is_dir {
            ops.remove_dir_all(&p)
        } else {
            ops.remove_file(&p)
        }
        .map_err(io_err("remove stale", &p))?;
    }
    // output_dir is empty now; the previous dump takes its place.
    ops.remove_dir_all(output_dir)
        .map_err(io_err("remove", output_dir))?;
    ops.rename(&keep, output_dir)
        .map_err(io_err("move previous dump to", output_dir))?;
    Ok(())
}

/// A folder's entries: (name, is a directory).
fn entries(dir: &Path) -> Result<Vec<(std::ffi::OsString, bool)>, PublishError> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(io_err("read", dir))? {
        let e = e.map_err(io_err("read", dir))?;
        let is_dir = e.file_type().map_err(io_err("stat", &e.path()))?.is_dir();
        out.push((e.file_name(), is_dir));
    }
    Ok(out)
}

fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    let ca = CString::new(a.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let cb = CString::new(b.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: both paths are valid NUL-terminated strings for the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), PublishError> {
    fs::create_dir_all(to).map_err(io_err("create", to))?;
    for entry in fs::read_dir(from).map_err(io_err("read", from))? {
        let entry = entry.map_err(io_err("read", from))?;
        let p = entry.path();
        let d = to.join(entry.file_name());
        if p.is_dir() {
            copy_dir(&p, &d)?;
        } else {
            fs::copy(&p, &d).map_err(io_err("copy to", &d))?;
        }
    }
    Ok(())
}

pub fn sync_dir(dir: &Path) -> Result<(), PublishError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err("sync", dir))
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(x) if !x.as_os_str().is_empty() => x.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Upstream's archive name: local time, unpadded fields.
pub fn stamp(now: chrono::DateTime<chrono::Local>) -> String {
    use chrono::{Datelike, Timelike};
    format!(
        "{}_{}_{}_{}_{}_{}",
        now.year(),
        now.month(),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_swaps_and_keeps_old() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("stats_tmp");
        let fin = t.path().join("stats");
        fs::create_dir(&fin).unwrap();
        fs::write(fin.join("a"), "old").unwrap();
        prepare(&out, &fin).unwrap();
        fs::write(out.join("a"), "new").unwrap();
        let arch = t.path().join("archive");
        publish(&out, &fin, Some(&arch), "2026_1_2_3_4_5").unwrap();
        assert_eq!(fs::read_to_string(fin.join("a")).unwrap(), "new");
        assert!(!fin.join(MARKER).exists());
        assert!(!out.exists());
        assert_eq!(
            fs::read_to_string(arch.join("stats_2026_1_2_3_4_5/a")).unwrap(),
            "old"
        );
    }

    #[test]
    fn refuses_foreign_output_dir_and_nesting() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("o");
        fs::create_dir(&out).unwrap();
        fs::write(out.join("precious"), "x").unwrap();
        assert!(prepare(&out, &t.path().join("f")).is_err());
        assert!(out.join("precious").exists());
        assert!(prepare(&t.path().join("f/o"), &t.path().join("f")).is_err());
    }

    use std::cell::Cell;
    use std::collections::BTreeMap;

    /// The real file system, except that it cannot exchange folders and
    /// the `fail_at`-th operation (counting from 0) fails.
    struct Faulty {
        calls: Cell<usize>,
        fail_at: Option<usize>,
        /// Whether exchanging folders works (else EINVAL, as on a file
        /// system without RENAME_EXCHANGE).
        exchange: bool,
    }

    impl Faulty {
        fn step(&self) -> io::Result<()> {
            let n = self.calls.get();
            self.calls.set(n + 1);
            if Some(n) == self.fail_at {
                Err(io::Error::other(format!("injected failure at step {n}")))
            } else {
                Ok(())
            }
        }
    }

    impl FsOps for Faulty {
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            self.step()?;
            RealFs.rename(from, to)
        }
        fn exchange(&self, a: &Path, b: &Path) -> io::Result<()> {
            self.step()?;
            if self.exchange {
                RealFs.exchange(a, b)
            } else {
                Err(io::Error::from_raw_os_error(libc::EINVAL))
            }
        }
        fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
            self.step()?;
            RealFs.hard_link(from, to)
        }
        fn copy(&self, from: &Path, to: &Path) -> io::Result<()> {
            self.step()?;
            RealFs.copy(from, to)
        }
        fn remove_file(&self, p: &Path) -> io::Result<()> {
            self.step()?;
            RealFs.remove_file(p)
        }
        fn remove_dir_all(&self, p: &Path) -> io::Result<()> {
            self.step()?;
            RealFs.remove_dir_all(p)
        }
        fn create_dir(&self, p: &Path) -> io::Result<()> {
            self.step()?;
            RealFs.create_dir(p)
        }
    }

    fn files(dir: &Path) -> BTreeMap<String, String> {
        fs::read_dir(dir)
            .map(|d| {
                d.map(|e| e.unwrap())
                    .map(|e| {
                        (
                            e.file_name().to_string_lossy().into_owned(),
                            fs::read_to_string(e.path()).unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The published folder exists and each file in it is whole (the old
    /// dump's or the new one's), the files both dumps have are all there,
    /// and the previous dump is kept somewhere (published, aside, or
    /// archived); the next run starts clean. Without failures the new dump
    /// is published and the old one archived.
    /// Whichever step of publishing fails (every one is made to, in turn),
    /// with the folder exchange and without it.
    #[test]
    fn no_failing_step_leaves_the_published_dump_missing() {
        for exchange in [true, false] {
            every_failing_step(exchange);
        }
    }

    fn every_failing_step(exchange: bool) {
        let old: BTreeMap<String, String> = [
            ("db_dump.xml", "old spec"),
            ("a", "old a"),
            ("b", "old b"),
            ("gone", "old gone"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let new: BTreeMap<String, String> = [
            ("db_dump.xml", "new spec"),
            ("a", "new a"),
            ("b", "new b"),
            ("fresh", "new fresh"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let setup = || {
            let t = tempfile::tempdir().unwrap();
            let (out, fin) = (t.path().join("stats_tmp"), t.path().join("stats"));
            fs::create_dir(&fin).unwrap();
            for (k, v) in &old {
                fs::write(fin.join(k), v).unwrap();
            }
            prepare(&out, &fin).unwrap();
            for (k, v) in &new {
                fs::write(out.join(k), v).unwrap();
            }
            (t, out, fin)
        };
        // How many operations a run without failures makes.
        let (t, out, fin) = setup();
        let arch = t.path().join("archive");
        let counting = Faulty {
            calls: Cell::new(0),
            fail_at: None,
            exchange,
        };
        publish_with(&counting, &out, &fin, Some(&arch), "s").unwrap();
        assert_eq!(files(&fin), new);
        assert_eq!(files(&arch.join("stats_s")), old);
        let steps = counting.calls.get();
        assert!(steps >= if exchange { 3 } else { 8 }, "{steps}");

        for fail_at in 0..steps {
            let (t, out, fin) = setup();
            let arch = t.path().join("archive");
            let ops = Faulty {
                calls: Cell::new(0),
                fail_at: Some(fail_at),
                exchange,
            };
            let r = publish_with(&ops, &out, &fin, Some(&arch), "s");
            let published = files(&fin);
            assert!(fin.is_dir(), "step {fail_at}: published folder gone");
            for (name, content) in &published {
                assert!(
                    old.get(name) == Some(content) || new.get(name) == Some(content),
                    "step {fail_at}: {name} is {content:?}, neither dump's"
                );
            }
            for name in ["a", "b"] {
                assert!(
                    published.contains_key(name),
                    "step {fail_at}: {name} missing"
                );
            }
            // The previous dump is kept whole somewhere.
            let kept = [
                fin.clone(),
                previous_of(&out),
                out.clone(),
                arch.join("stats_s"),
            ];
            for (name, content) in &old {
                assert!(
                    kept.iter().any(|d| files(d).get(name) == Some(content)),
                    "step {fail_at}: old {name} lost"
                );
            }
            match r {
                Ok(()) => assert_eq!(published, new, "step {fail_at}"),
                Err(e) => assert!(e.to_string().contains("injected"), "{e}"),
            }
            // The next run starts clean whatever was left.
            prepare(&out, &fin).unwrap();
            assert!(!previous_of(&out).exists());
        }
    }

    #[test]
    fn one_run_at_a_time() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("o");
        let _l = lock(&out).unwrap();
        assert!(matches!(lock(&out), Err(PublishError::Locked(_))));
    }
}
