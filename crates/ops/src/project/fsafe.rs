//! File operations for install/uninstall, which root runs in a folder the
//! project's (non-root) user can write: anything there may be a link, a
//! FIFO or a file swapped in between two system calls. So everything goes
//! through a directory descriptor and single plain names; nothing follows
//! a symbolic link; new files are created exclusively (`O_EXCL`, which also
//! refuses a dangling link) and get their mode and owner through their own
//! descriptor, never by path; a file is read once, through one descriptor.
//! Replacing a name (`rename`) or removing one (`unlinkat`) only changes
//! an entry of a folder the user can change anyway.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{0} is a symbolic link: install and uninstall never follow links in the project \
         folder (its user could point one at any file root can write); put the file itself there"
    )]
    Symlink(PathBuf),
    #[error("{0} is not a regular file")]
    NotRegular(PathBuf),
    #[error("{0} is not a directory")]
    NotDir(PathBuf),
    #[error(
        "{path} has {links} hard links: refused, since root would act on a file that also \
         lives elsewhere; give it a name of its own (cp, then mv over it)"
    )]
    HardLinked { path: PathBuf, links: u64 },
    #[error("{path} is larger than {max} bytes")]
    TooLarge { path: PathBuf, max: u64 },
    #[error(
        "{0} changed while it was being written (another process renames files in this \
         folder); nothing outside the folder was touched: run it again"
    )]
    Swapped(PathBuf),
    #[error("{0} exists already")]
    Exists(PathBuf),
    #[error("{0:?} is not a plain file name")]
    BadName(String),
}

impl FsError {
    fn io(path: PathBuf, e: impl Into<std::io::Error>) -> Self {
        FsError::Io {
            path,
            source: e.into(),
        }
    }
}

type Result<T> = std::result::Result<T, FsError>;

/// A single path component: not empty, no `/`, not `.`/`..`, no NUL.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// What `fstat`/`lstat` says about an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

impl Info {
    // The stat field types differ between architectures.
    #[allow(clippy::unnecessary_cast)]
    fn from(st: &rfs::Stat) -> Self {
        let kind = match FileType::from_raw_mode(st.st_mode as _) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        };
        Info {
            kind,
            mode: st.st_mode as u32 & 0o7777,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            nlink: st.st_nlink as u64,
            size: st.st_size as u64,
        }
    }

    fn same_file(&self, other: &Info) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

/// Whether this process runs as root (only root can give files away).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// An open directory; every operation is relative to it.
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// Open a directory named by the admin on the command line (links in
    /// that path are the admin's choice and are followed).
    pub fn open(path: &Path) -> Result<Dir> {
        let fd = rfs::openat(
            rfs::CWD,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::NOTDIR => FsError::NotDir(path.to_owned()),
            e => FsError::io(path.to_owned(), e),
        })?;
        Ok(Dir {
            fd,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `name` inside this directory, for messages.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn check(&self, name: &str) -> Result<()> {
        if is_plain_name(name) {
            Ok(())
        } else {
            Err(FsError::BadName(name.to_owned()))
        }
    }

    pub fn info(&self) -> Result<Info> {
        let st = rfs::fstat(&self.fd).map_err(|e| FsError::io(self.path.clone(), e))?;
        Ok(Info::from(&st))
    }

    /// The entry itself (a link is reported as a link), None when absent.
    pub fn lstat(&self, name: &str) -> Result<Option<Info>> {
        self.check(name)?;
        match rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(Info::from(&st))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(FsError::io(self.join(name), e)),
        }
    }

    /// A subdirectory, never through a link; None when absent.
    pub fn subdir(&self, name: &str) -> Result<Option<Dir>> {
        self.check(name)?;
        let path = self.join(name);
        match rfs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(Some(Dir { fd, path })),
            Err(Errno::NOENT) => Ok(None),
            Err(Errno::LOOP) => Err(FsError::Symlink(path)),
            Err(Errno::NOTDIR) => match self.lstat(name)? {
                Some(i) if i.kind == Kind::Symlink => Err(FsError::Symlink(path)),
                _ => Err(FsError::NotDir(path)),
            },
            Err(e) => Err(FsError::io(path, e)),
        }
    }

    /// Create subdirectory `name` (which must not exist) and open it.
    pub fn create_subdir(&self, name: &str, mode: u32, owner: Option<(u32, u32)>) -> Result<Dir> {
        self.check(name)?;
        let path = self.join(name);
        rfs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o700)).map_err(|e| match e {
            Errno::EXIST => FsError::Exists(path.clone()),
            e => FsError::io(path.clone(), e),
        })?;
        let dir = self
            .subdir(name)?
            .ok_or_else(|| FsError::Swapped(path.clone()))?;
        set_owner_mode(&dir.fd, &path, owner, mode)?;
        Ok(dir)
    }

    /// Open regular file `name` for reading, through one descriptor: None
    /// when absent; a link, FIFO, device or folder is an error
    /// (O_NONBLOCK: a FIFO can't make root wait).
    pub fn open_file(&self, name: &str) -> Result<Option<(std::fs::File, Info)>> {
        self.check(name)?;
        let path = self.join(name);
        let fd = match rfs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => return Err(FsError::Symlink(path)),
            Err(Errno::NXIO) => return Err(FsError::NotRegular(path)),
            Err(e) => return Err(FsError::io(path, e)),
        };
        let info = Info::from(&rfs::fstat(&fd).map_err(|e| FsError::io(path.clone(), e))?);
        if info.kind != Kind::File {
            return Err(FsError::NotRegular(path));
        }
        Ok(Some((std::fs::File::from(fd), info)))
    }

    /// Read regular file `name` (see [`Dir::open_file`]), at most `max`
    /// bytes.
    pub fn read(&self, name: &str, max: u64) -> Result<Option<(Vec<u8>, Info)>> {
        let Some((file, info)) = self.open_file(name)? else {
            return Ok(None);
        };
        let path = self.join(name);
        if info.size > max {
            return Err(FsError::TooLarge { path, max });
        }
        let mut bytes = Vec::with_capacity(info.size as usize);
        file.take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| FsError::io(path.clone(), e))?;
        if bytes.len() as u64 > max {
            return Err(FsError::TooLarge { path, max });
        }
        Ok(Some((bytes, info)))
    }

    /// sha256 (hex) of regular file `name`, streamed; None when absent.
    pub fn sha256(&self, name: &str) -> Result<Option<String>> {
        use sha2::Digest;
        let Some((mut file, _)) = self.open_file(name)? else {
            return Ok(None);
        };
        let mut h = sha2::Sha256::new();
        std::io::copy(&mut file, &mut h).map_err(|e| FsError::io(self.join(name), e))?;
        Ok(Some(hex::encode(h.finalize())))
    }

    /// Create `name` exclusively (an existing entry, a dangling link
    /// included, is [`FsError::Exists`]), write `bytes`, then set owner and
    /// mode on the descriptor.
    pub fn create_new(
        &self,
        name: &str,
        bytes: &[u8],
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<Info> {
        self.check(name)?;
        let path = self.join(name);
        let fd = rfs::openat(
            &self.fd,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| match e {
            Errno::EXIST => FsError::Exists(path.clone()),
            e => FsError::io(path.clone(), e),
        })?;
        let written = (|| {
            let mut f = std::fs::File::from(fd.try_clone()?);
            f.write_all(bytes)?;
            f.sync_all()
        })();
        if let Err(e) = written
            .map_err(|e| FsError::io(path.clone(), e))
            .and_then(|_| set_owner_mode(&fd, &path, owner, mode))
        {
            self.remove_if_same(name, &fd);
            return Err(e);
        }
        Ok(Info::from(
            &rfs::fstat(&fd).map_err(|e| FsError::io(path.clone(), e))?,
        ))
    }

    /// Replace `name` atomically with a new file holding `bytes`: written
    /// under a fresh temporary name, owner and mode set on its descriptor,
    /// renamed over `name`, then checked to be what now carries the name.
    pub fn replace(
        &self,
        name: &str,
        bytes: &[u8],
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<()> {
        self.check(name)?;
        let path = self.join(name);
        let (tmp, fd) = self.temp_file(name)?;
        let done = (|| {
            let mut f =
                std::fs::File::from(fd.try_clone().map_err(|e| FsError::io(path.clone(), e))?);
            f.write_all(bytes)
                .and_then(|_| f.sync_all())
                .map_err(|e| FsError::io(path.clone(), e))?;
            set_owner_mode(&fd, &path, owner, mode)?;
            rfs::renameat(&self.fd, &tmp, &self.fd, name).map_err(|e| match e {
                // Our temporary name was taken away before the rename.
                Errno::NOENT => FsError::Swapped(path.clone()),
                e => FsError::io(path.clone(), e),
            })?;
            let ours = Info::from(&rfs::fstat(&fd).map_err(|e| FsError::io(path.clone(), e))?);
            match self.lstat(name)? {
                Some(now) if now.same_file(&ours) => Ok(()),
                _ => Err(FsError::Swapped(path.clone())),
            }
        })();
        if done.is_err() {
            self.remove_if_same(&tmp, &fd);
        }
        done
    }

    fn temp_file(&self, name: &str) -> Result<(String, OwnedFd)> {
        for _ in 0..16 {
            let tmp = format!(".{name}.tmp-{:016x}", rand::random::<u64>());
            match rfs::openat(
                &self.fd,
                tmp.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => return Ok((tmp, fd)),
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(FsError::io(self.join(&tmp), e)),
            }
        }
        Err(FsError::Exists(self.join(&format!(".{name}.tmp-*"))))
    }

    /// Remove `name` only while it is still the file `fd` has open.
    fn remove_if_same(&self, name: &str, fd: &OwnedFd) {
        let (Ok(ours), Ok(Some(now))) = (rfs::fstat(fd), self.lstat(name)) else {
            return;
        };
        if now.same_file(&Info::from(&ours)) {
            let _ = rfs::unlinkat(&self.fd, name, AtFlags::empty());
        }
    }

    /// Remove the entry `name` (a link is removed, never followed);
    /// false when it was already gone.
    pub fn remove(&self, name: &str) -> Result<bool> {
        self.check(name)?;
        match rfs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(FsError::io(self.join(name), e)),
        }
    }

    /// Rename entry `from` to `to` within this directory.
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.check(from)?;
        self.check(to)?;
        rfs::renameat(&self.fd, from, &self.fd, to).map_err(|e| FsError::io(self.join(from), e))
    }
}

/// chown (root only, and only when it changes anything) then chmod, both
/// on the descriptor.
fn set_owner_mode(fd: &impl AsFd, path: &Path, owner: Option<(u32, u32)>, mode: u32) -> Result<()> {
    if let Some((uid, gid)) = owner {
        let now = rfs::fstat(fd).map_err(|e| FsError::io(path.to_owned(), e))?;
        if (now.st_uid as u32, now.st_gid as u32) != (uid, gid) && is_root() {
            rfs::fchown(
                fd,
                Some(rfs::Uid::from_raw(uid)),
                Some(rfs::Gid::from_raw(gid)),
            )
            .map_err(|e| FsError::io(path.to_owned(), e))?;
        }
    }
    rfs::fchmod(fd, Mode::from_raw_mode(mode as _)).map_err(|e| FsError::io(path.to_owned(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names() {
        for bad in ["", ".", "..", "a/b", "/abs", "../x", "x\0y"] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
        for good in ["config.xml", ".hidden", "db_dump", "a..b"] {
            assert!(is_plain_name(good), "{good:?}");
        }
    }

    #[test]
    fn never_through_links() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, "keep").unwrap();
        let inner = tmp.path().join("inner");
        std::fs::create_dir(&inner).unwrap();
        std::os::unix::fs::symlink(&outside, inner.join("link")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("none"), inner.join("dangling")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), inner.join("dirlink")).unwrap();
        let d = Dir::open(&inner).unwrap();
        assert!(matches!(d.read("link", 100), Err(FsError::Symlink(_))));
        assert!(matches!(
            d.create_new("dangling", b"x", 0o644, None),
            Err(FsError::Exists(_))
        ));
        assert!(matches!(
            d.create_new("link", b"x", 0o644, None),
            Err(FsError::Exists(_))
        ));
        assert!(matches!(d.subdir("dirlink"), Err(FsError::Symlink(_))));
        assert!(matches!(
            d.read("../outside", 100),
            Err(FsError::BadName(_))
        ));
        // Replacing a link replaces the entry, never its target.
        d.replace("link", b"new", 0o640, None).unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        let (bytes, info) = d.read("link", 100).unwrap().unwrap();
        assert_eq!((bytes.as_slice(), info.mode), (&b"new"[..], 0o640));
        assert!(!tmp.path().join("none").exists());
        assert!(d.remove("dangling").unwrap());
        assert!(!d.remove("dangling").unwrap());
        // A FIFO is refused at once instead of blocking the reader.
        let fifo = std::ffi::CString::new(inner.join("fifo").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        assert!(matches!(d.read("fifo", 100), Err(FsError::NotRegular(_))));
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(&inner)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
