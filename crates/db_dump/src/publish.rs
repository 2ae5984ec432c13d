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

/// Make the complete dump in `output_dir` the published one. The previous
/// dump goes to `archive_dir/stats_Y_M_D_H_M_S` (upstream's name) or is
/// removed.
pub fn publish(
    output_dir: &Path,
    final_dir: &Path,
    archive_dir: Option<&Path>,
    stamp: &str,
) -> Result<(), PublishError> {
    fs::remove_file(output_dir.join(MARKER)).map_err(io_err("remove marker in", output_dir))?;
    sync_dir(output_dir)?;
    // A symlinked stats folder stays a symlink: swap its target instead.
    let target = match fs::symlink_metadata(final_dir) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(final_dir).map_err(io_err("resolve", final_dir))?
        }
        _ => final_dir.to_owned(),
    };
    if !target.exists() {
        fs::rename(output_dir, &target).map_err(io_err("publish into", &target))?;
        sync_dir(&parent_of(&absolute(&target)))?;
        return Ok(());
    }
    match exchange(output_dir, &target) {
        Ok(()) => {}
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) => {
            // The file system cannot exchange: two renames, a brief gap.
            tracing::warn!(
                "{}: atomic exchange unsupported ({e}); replacing with two renames",
                target.display()
            );
            let aside = target.with_extension("db_dump_old");
            let _ = fs::remove_dir_all(&aside);
            fs::rename(&target, &aside).map_err(io_err("move aside", &target))?;
            if let Err(e) = fs::rename(output_dir, &target) {
                let _ = fs::rename(&aside, &target);
                return Err(io_err("publish into", &target)(e));
            }
            fs::rename(&aside, output_dir).map_err(io_err("move old dump to", output_dir))?;
        }
        Err(e) => return Err(io_err("exchange with", &target)(e)),
    }
    sync_dir(&parent_of(&absolute(&target)))?;
    // output_dir now holds the previous dump.
    match archive_dir {
        Some(a) => {
            fs::create_dir_all(a).map_err(io_err("create archive_dir", a))?;
            let dest = a.join(format!("stats_{stamp}"));
            if let Err(e) = fs::rename(output_dir, &dest) {
                if e.raw_os_error() == Some(libc::EXDEV) {
                    copy_dir(output_dir, &dest)?;
                    fs::remove_dir_all(output_dir).map_err(io_err("remove", output_dir))?;
                } else {
                    return Err(io_err("archive into", &dest)(e));
                }
            }
        }
        None => fs::remove_dir_all(output_dir).map_err(io_err("remove old dump", output_dir))?,
    }
    Ok(())
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

    #[test]
    fn one_run_at_a_time() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("o");
        let _l = lock(&out).unwrap();
        assert!(matches!(lock(&out), Err(PublishError::Locked(_))));
    }
}
