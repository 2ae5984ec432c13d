//! `boinc-ops project check`: is the install still what install left?
//! Upstream's `tools/upgrade`, boinc-server-docker's copy on start, or an
//! admin can change any part of it; this names each part that drifted,
//! one line each, and exits 1 (0 when intact). Read-only: it opens files
//! the way install does (no links followed) and changes nothing. Every
//! line is safe for a terminal and for `log_HOST/` (file contents are
//! escaped), since it runs as a daily BOINC `<task>`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::common::DEFAULT_WEB_CONF_DIR;
use super::common::{ConfigFile, DB_DUMP_BIN, LEGACY_DB_DUMP, PROGRAMS, SPEC_FILE};
use super::fsafe::{Dir, FsError, Kind};
use super::install::{current_binary, Current};
use super::record::{self, is_legacy_include};
use super::stats_task::MAX_SPEC;
use super::web_config;
use crate::terminal::clean;

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The project folder (as a BOINC task: `--project-dir ..`).
    #[arg(long)]
    pub project_dir: PathBuf,
    /// Root's folder for the web server includes.
    #[arg(long, default_value = DEFAULT_WEB_CONF_DIR)]
    pub web_conf_dir: PathBuf,
    /// Skip the web server includes (the web server runs on another host).
    #[arg(long)]
    pub no_web_include: bool,
}

pub fn run(a: &CheckArgs) -> anyhow::Result<ExitCode> {
    let dir = &a.project_dir;
    let project = Dir::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let drift = drifts(&project, a)?;
    if drift.is_empty() {
        println!(
            "install intact: {} (binaries, daemon and task lines, stats spec{})",
            clean(&dir.display().to_string()),
            if a.no_web_include {
                ""
            } else {
                ", web server includes"
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    for d in &drift {
        println!("drift: {}", clean(d));
    }
    println!(
        "{} drift(s) in {}: run `boinc-ops project install` again to repair what install owns",
        drift.len(),
        clean(&dir.display().to_string())
    );
    Ok(ExitCode::from(1))
}

/// Every drift, one message each (not yet escaped).
fn drifts(project: &Dir, a: &CheckArgs) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let cfg = ConfigFile::read(project)?;
    let mut ignored = Vec::new();
    let Some(state) = record::load(project, &mut ignored)? else {
        out.push(format!(
            "no install record ({}): not installed here, or the record was removed",
            project.join(record::STATE_FILE).display()
        ));
        return Ok(out);
    };
    out.extend(ignored);
    if state.version < record::VERSION || state.binaries.contains_key(LEGACY_DB_DUMP) {
        out.push(
            "installed by an earlier version (our db_dump in place of upstream's): run \
             install again to move to the current layout"
                .into(),
        );
    }

    // Binaries: present, regular, the bytes install wrote.
    let bin = match project.subdir("bin") {
        Ok(b) => b,
        Err(e) => {
            out.push(e.to_string());
            None
        }
    };
    for (_, name) in PROGRAMS {
        let Some(recorded) = state.binaries.get(name) else {
            out.push(format!("bin/{name}: not recorded as installed"));
            continue;
        };
        let current = match &bin {
            Some(bin) => match current_binary(bin, name) {
                Ok(c) => c,
                Err(e) => {
                    out.push(format!("bin/{name}: {e}"));
                    continue;
                }
            },
            None => Current::Missing,
        };
        match current {
            Current::Missing => out.push(format!("bin/{name}: missing")),
            Current::Other => out.push(format!(
                "bin/{name}: not a regular file (a link or other; install wrote a file)"
            )),
            Current::File(sha) if sha != recorded.sha256 => out.push(format!(
                "bin/{name}: replaced since install (its sha256 is not the one install recorded)"
            )),
            Current::File(_) => {}
        }
    }

    // Daemon and task lines.
    let layout = &cfg.layout;
    for cmd in &state.daemons {
        match layout.daemons.items.iter().find(|d| &d.cmd == cmd) {
            Some(d) if d.is_disabled() => out.push(format!("daemon `{cmd}`: disabled")),
            Some(_) => {}
            None => {
                let program = super::config_edit::program(cmd);
                match layout.daemons.items.iter().find(|d| d.program() == program) {
                    Some(d) => out.push(format!("daemon `{cmd}`: changed to `{}`", d.cmd)),
                    None => out.push(format!("daemon `{cmd}`: not in config.xml any more")),
                }
            }
        }
    }
    match &state.task {
        None => out.push("stats task: not recorded by install".into()),
        Some(cmd) => {
            if !layout.tasks.items.iter().any(|t| &t.cmd == cmd) {
                let other = layout
                    .tasks
                    .items
                    .iter()
                    .find(|t| t.program() == DB_DUMP_BIN || t.program() == LEGACY_DB_DUMP);
                match other {
                    Some(t) if t.program() == LEGACY_DB_DUMP => out.push(format!(
                        "task `{cmd}`: changed to `{}` (upstream's db_dump, which exports \
                         without asking consent)",
                        t.cmd
                    )),
                    Some(t) => out.push(format!("task `{cmd}`: changed to `{}`", t.cmd)),
                    None => out.push(format!("task `{cmd}`: not in config.xml any more")),
                }
            }
        }
    }

    // The stats spec: ours, readable, something to export.
    match project.read(SPEC_FILE, MAX_SPEC) {
        Ok(None) => out.push(format!("{SPEC_FILE}: missing (the stats task reads it)")),
        Err(FsError::Symlink(_)) => out.push(format!(
            "{SPEC_FILE}: a symbolic link (install wrote a file of its own)"
        )),
        Err(e) => out.push(format!("{SPEC_FILE}: {e}")),
        Ok(Some((bytes, _))) => {
            let text = String::from_utf8_lossy(&bytes);
            match boinc_db_dump::DumpSpec::parse(&text, std::path::Path::new(SPEC_FILE)) {
                Err(
                    boinc_db_dump::spec::SpecError::Invalid { message, .. }
                    | boinc_db_dump::spec::SpecError::Xml { message, .. },
                ) => out.push(format!("{SPEC_FILE}: not a db_dump spec: {message}")),
                Err(e) => out.push(format!("{SPEC_FILE}: {e}")),
                Ok(spec) if spec.enumerations.is_empty() => out.push(format!(
                    "{SPEC_FILE}: has no <enumeration> (the stats task would publish nothing)"
                )),
                Ok(_) => {}
            }
        }
    }

    // Web server includes: root's, as web-config writes them now.
    if !a.no_web_include {
        web_includes(&cfg, &state, a, &mut out);
    }
    for f in state.files.iter().filter(|f| is_legacy_include(f)) {
        if project.lstat(f).ok().flatten().is_some() {
            out.push(format!(
                "{}: include written into the project folder by an earlier install; its user \
                 can change it: link the web server to {} instead, then delete it",
                project.join(f).display(),
                a.web_conf_dir.join(f).display()
            ));
        }
    }
    Ok(out)
}

fn web_includes(cfg: &ConfigFile, state: &record::State, a: &CheckArgs, out: &mut Vec<String>) {
    let key = |k: &str| cfg.key(k);
    let site = web_config::short_name(state.name.clone(), &key).and_then(|name| {
        let (rpc, ops) = web_config::addresses(None, None, Some(&cfg.layout), &key)?;
        Ok(web_config::Site { name, rpc, ops })
    });
    let site = match site {
        Ok(s) => s,
        Err(e) => {
            out.push(format!("web server includes: {e}"));
            return;
        }
    };
    let hint = format!(
        "as root: boinc-ops project web-config --project-dir {}",
        a.project_dir.display()
    );
    let folder = match Dir::open(&a.web_conf_dir) {
        Ok(d) => d,
        Err(_) => {
            for (file, _) in web_config::render(&site, &a.web_conf_dir) {
                out.push(format!(
                    "include {}: missing ({hint})",
                    a.web_conf_dir.join(file).display()
                ));
            }
            return;
        }
    };
    if let Ok(i) = folder.info() {
        if i.uid != 0 || i.mode & 0o022 != 0 {
            out.push(format!(
                "include folder {}: writable by someone other than root (owner uid {}, mode {:04o})",
                a.web_conf_dir.display(),
                i.uid,
                i.mode
            ));
        }
    }
    for (file, content) in web_config::render(&site, &a.web_conf_dir) {
        let path = a.web_conf_dir.join(&file);
        match folder.read(&file, 1 << 20) {
            Ok(None) => out.push(format!("include {}: missing ({hint})", path.display())),
            Err(e) => out.push(format!("include {}: {e}", path.display())),
            Ok(Some((bytes, info))) => {
                if info.kind != Kind::File {
                    out.push(format!("include {}: not a regular file", path.display()));
                } else if info.uid != 0 {
                    out.push(format!(
                        "include {}: not owned by root (uid {}): the web server reads it as root",
                        path.display(),
                        info.uid
                    ));
                } else if info.mode & 0o022 != 0 {
                    out.push(format!(
                        "include {}: writable by others (mode {:04o})",
                        path.display(),
                        info.mode
                    ));
                } else if bytes != content.as_bytes() {
                    out.push(format!(
                        "include {}: changed (not what web-config writes for this project; {hint})",
                        path.display()
                    ));
                }
            }
        }
    }
}
