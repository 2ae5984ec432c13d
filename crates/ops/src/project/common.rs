//! What install, uninstall and check share: our file names, the command
//! line arguments, the config.xml being edited, the printed steps (a leaf:
//! `project` dispatches to the subcommands, which import this).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use boinc_db::ProjectConfig;

use super::config_edit::{scan, Layout};
use super::fsafe::{Dir, FsError, Info};
use crate::terminal::clean;

/// Where root keeps its copies unless told otherwise.
pub const DEFAULT_WEB_CONF_DIR: &str = "/etc/boinc-consent-server";

/// The programs install copies into `PROJECT/bin`: (name as built, name
/// in bin/). Names upstream never uses (its make_project, tools/upgrade
/// and Makefiles), so upstream's own upgrade never overwrites them.
pub const PROGRAMS: [(&str, &str); 3] = [
    ("boinc-rpc", "boinc-rpc"),
    ("boinc-ops", "boinc-ops"),
    ("db_dump", DB_DUMP_BIN),
];
/// Our db_dump in `PROJECT/bin`.
pub const DB_DUMP_BIN: &str = "boinc_consent_db_dump";
/// The stats task's spec: ours, beside upstream's `db_dump_spec.xml`
/// (which upstream's upgrade overwrites).
pub const SPEC_FILE: &str = "boinc_consent_db_dump_spec.xml";
/// Where version 1 put our db_dump, over upstream's.
pub const LEGACY_DB_DUMP: &str = "db_dump";
/// Suffix of a program version 1 found where it installed one of ours
/// (BOINC's C++ db_dump) and kept aside.
pub const BACKUP_SUFFIX: &str = ".before-boinc-consent-server";
/// What install puts into `<rpc_trusted_proxies>` when it is unset: the web
/// server on this host.
pub const TRUSTED_PROXIES: &str = "127.0.0.1 ::1";
/// config.xml is small; anything bigger is not one.
const MAX_CONFIG: u64 = 16 << 20;

#[derive(clap::Args)]
pub struct CommonArgs {
    /// The project folder (holds config.xml, bin/, html/).
    #[arg(long)]
    pub project_dir: PathBuf,
    /// Print what would be done; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(clap::Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The project's short name in URLs (/NAME/, /NAME_ops/)
    /// [default: the last part of <master_url>'s path].
    #[arg(long)]
    pub name: Option<String>,
    /// Where boinc-rpc listens [default: <rpc_listen>, else 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<String>,
    /// Where the ops page listens [default: <ops_listen>, else 127.0.0.1:8081].
    #[arg(long)]
    pub ops_listen: Option<String>,
    /// Folder holding the binaries to install [default: this program's folder].
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Also enable the db_dump task (make_project writes it disabled).
    #[arg(long)]
    pub enable_db_dump: bool,
    /// Root's folder for the web server includes (run as root: written
    /// there, owned by root; otherwise install says how).
    #[arg(long, default_value = DEFAULT_WEB_CONF_DIR)]
    pub web_conf_dir: PathBuf,
    /// Leave the database alone now (no database reachable, e.g. while a
    /// Docker image is built): the boinc-rpc daemon line gets --init-db,
    /// so boinc-rpc brings the schema up to date each time it starts.
    #[arg(long)]
    pub db_at_start: bool,
}

#[derive(clap::Args)]
pub struct UninstallArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Root's folder for the web server includes (for the instructions).
    #[arg(long, default_value = DEFAULT_WEB_CONF_DIR)]
    pub web_conf_dir: PathBuf,
}

/// A short name fit for URLs and file names.
pub fn valid_project_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Numbered steps, "would:" notes when nothing is changed.
pub struct Steps {
    n: usize,
    pub dry_run: bool,
}

impl Steps {
    pub fn new(dry_run: bool) -> Self {
        if dry_run {
            println!("dry run: nothing is changed");
        }
        Steps { n: 0, dry_run }
    }

    pub fn step(&mut self, what: &str) {
        self.n += 1;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "[{}] {}", self.n, clean(what));
    }

    pub fn note(&self, what: &str) {
        let prefix = if self.dry_run { "would: " } else { "" };
        println!("    {prefix}{}", clean(what));
    }
}

/// config.xml, read once through the project folder's descriptor.
pub struct ConfigFile {
    pub text: String,
    pub info: Info,
    pub layout: Layout,
    /// `<config>` keys and values in file order.
    pub keys: Vec<(String, String)>,
}

impl ConfigFile {
    pub fn read(project: &Dir) -> anyhow::Result<ConfigFile> {
        let (bytes, info) = match project.read("config.xml", MAX_CONFIG) {
            Ok(Some(x)) => x,
            Ok(None) => anyhow::bail!(
                "{} is not a BOINC project folder: it has no config.xml",
                project.path().display()
            ),
            Err(e) => return Err(e.into()),
        };
        if info.nlink > 1 {
            return Err(FsError::HardLinked {
                path: project.join("config.xml"),
                links: info.nlink,
            }
            .into());
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("{}: not UTF-8", project.join("config.xml").display()))?;
        let layout = scan(&text)?;
        let keys = layout
            .config_keys
            .iter()
            .map(|(k, _, _, v)| (k.clone(), v.clone()))
            .collect();
        Ok(ConfigFile {
            text,
            info,
            layout,
            keys,
        })
    }

    /// The last value of `<config>` key `k` (as BOINC reads it).
    pub fn key(&self, k: &str) -> Option<String> {
        self.keys
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    }

    pub fn project_config(&self, dir: &Path) -> ProjectConfig {
        let pairs: Vec<(&str, &str)> = self
            .keys
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        ProjectConfig::from_pairs(dir.to_owned(), &pairs)
    }

    /// Write `new` in place of this file: the previous bytes kept as
    /// `config.xml.bak-STAMP` (created exclusively, never through a link),
    /// both with config.xml's mode and owner, set on their descriptors.
    pub fn rewrite(&self, project: &Dir, new: &str, steps: &Steps) -> anyhow::Result<()> {
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
        let owner = Some((self.info.uid, self.info.gid));
        let mode = self.info.mode & 0o777;
        for i in 0..100 {
            let name = if i == 0 {
                format!("config.xml.bak-{stamp}")
            } else {
                format!("config.xml.bak-{stamp}.{i}")
            };
            if steps.dry_run {
                if project.lstat(&name)?.is_none() {
                    steps.note(&format!(
                        "keep the previous config.xml as {}",
                        project.join(&name).display()
                    ));
                    return Ok(());
                }
                continue;
            }
            match project.create_new(&name, self.text.as_bytes(), mode, owner) {
                Ok(_) => {
                    steps.note(&format!(
                        "kept the previous config.xml as {}",
                        project.join(&name).display()
                    ));
                    // Someone else's edit since we read it would be lost.
                    match project.lstat("config.xml")? {
                        Some(now)
                            if now.dev == self.info.dev
                                && now.ino == self.info.ino
                                && now.size == self.info.size => {}
                        _ => anyhow::bail!(
                            "{} changed while this ran; nothing written: run it again",
                            project.join("config.xml").display()
                        ),
                    }
                    project
                        .replace("config.xml", new.as_bytes(), mode, owner)
                        .context("writing config.xml")?;
                    return Ok(());
                }
                Err(FsError::Exists(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        anyhow::bail!(
            "no free name for a config.xml backup in {}",
            project.path().display()
        )
    }
}

/// Owner (uid, gid) for files install creates in `dir`: the folder's own,
/// so the project folder stays its user's.
pub fn owner_of(dir: &Dir) -> anyhow::Result<Option<(u32, u32)>> {
    let i = dir.info()?;
    Ok(Some((i.uid, i.gid)))
}
