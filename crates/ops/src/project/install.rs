//! `boinc-ops project install`.

use std::path::Path;

use anyhow::{bail, Context};
use sha2::Digest;

use super::config_edit::{add_config_key, add_item, scan, Edit, Item, Scope};
use super::fsafe::{self, Dir, Kind};
use super::record::{self, apply_recorded, What};
use super::stats_task::{self, STATS_CMD};
use super::web_config::{self, Site};
use super::{
    owner_of, ConfigFile, InstallArgs, Steps, BACKUP_SUFFIX, DB_DUMP_BIN, LEGACY_DB_DUMP, PROGRAMS,
    SPEC_FILE, TRUSTED_PROXIES,
};
use crate::terminal::{clean, clean_text};

/// A db_dump spec is a few KB.
pub const MAX_SPEC: u64 = 1 << 20;

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

pub async fn run(a: &InstallArgs) -> anyhow::Result<()> {
    let dir = &a.common.project_dir;
    let mut steps = Steps::new(a.common.dry_run);
    let project = Dir::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let cfg = ConfigFile::read(&project)?;
    let mut ignored = Vec::new();
    let mut state = match record::load(&project, &mut ignored)? {
        Some(mut s) => {
            s.upgrade_from_v1(&cfg.text)?;
            s
        }
        None => record::State {
            version: record::VERSION,
            ..Default::default()
        },
    };
    for i in &ignored {
        eprintln!("WARNING: {}", clean(i));
    }
    let root = fsafe::is_root();
    let key = |k: &str| cfg.key(k);

    // Everything that can be refused is checked before anything changes.
    let (rpc, ops) = web_config::addresses(
        a.listen.clone(),
        a.ops_listen.clone(),
        Some(&cfg.layout),
        &key,
    )?;
    let site = match (web_config::short_name(a.name.clone(), &key), root) {
        (Ok(name), _) => Some(Site { name, rpc, ops }),
        (Err(e), true) => return Err(e),
        (Err(_), false) => None,
    };
    if root {
        web_config::check_web_conf_dir(&a.web_conf_dir)?;
    }
    let from = match &a.from {
        Some(f) => f.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(Path::to_owned)
            .context("no folder for this program")?,
    };
    let mut sources = Vec::new();
    for (built, installed) in PROGRAMS {
        let src = from.join(built);
        let bytes = std::fs::read(&src).with_context(|| {
            format!(
                "{} missing: build it (cargo build --release) or pass --from",
                src.display()
            )
        })?;
        sources.push((installed, sha256_hex(&bytes), bytes));
    }
    let bin = project.subdir("bin")?;
    for (name, sha, _) in &sources {
        let current = match &bin {
            Some(bin) => current_binary(bin, name)?,
            None => Current::Missing,
        };
        // A file under one of our names that install never wrote (no
        // record of it) is someone's: never replaced. One install wrote and
        // someone changed since is ours to put right.
        let recorded = state.binaries.contains_key(*name);
        match current {
            Current::Missing => {}
            Current::File(c) if c == *sha => {}
            _ if recorded => {}
            _ => bail!(
                "{} is there and is not a file install recorded: move it away, then run \
                 install again",
                dir.join("bin").join(name).display()
            ),
        }
    }
    let spec_plan = plan_spec(&project, &cfg)?;
    println!(
        "project {} in {}",
        site.as_ref()
            .map_or("(name: see below)", |s| s.name.as_str()),
        clean(&dir.display().to_string())
    );
    let project_owner = owner_of(&project)?;

    // 1. Binaries, under names upstream never uses.
    steps.step(&format!(
        "binaries from {} into {}",
        from.display(),
        dir.join("bin").display()
    ));
    let bin = match bin {
        Some(b) => Some(b),
        None => {
            steps.note(&format!("create {}", dir.join("bin").display()));
            if steps.dry_run {
                None
            } else {
                Some(project.create_subdir("bin", 0o755, project_owner)?)
            }
        }
    };
    for (name, sha, bytes) in &sources {
        let current = match &bin {
            Some(bin) => current_binary(bin, name)?,
            None => Current::Missing,
        };
        if matches!(&current, Current::File(c) if c == sha) {
            println!("    {name}: unchanged");
            state
                .binaries
                .entry((*name).to_owned())
                .or_insert(record::Installed {
                    sha256: sha.clone(),
                    backup: None,
                });
            continue;
        }
        steps.note(&format!(
            "{} {name}",
            if matches!(current, Current::Missing) {
                "copy"
            } else {
                "replace"
            }
        ));
        if let (Some(bin), false) = (&bin, steps.dry_run) {
            bin.replace(name, bytes, 0o755, owner_of(bin)?)?;
            state.binaries.insert(
                (*name).to_owned(),
                record::Installed {
                    sha256: sha.clone(),
                    backup: None,
                },
            );
            record::save(&project, &state, project_owner)?;
        }
    }

    // 2. The stats task's own spec.
    steps.step(&format!("stats spec {}", dir.join(SPEC_FILE).display()));
    match &spec_plan {
        SpecPlan::Keep => println!("    {SPEC_FILE}: kept as it is (the stats task reads it)"),
        SpecPlan::Copy {
            from,
            bytes,
            mode,
            owner,
        } => {
            steps.note(&format!(
                "copy {from} to {SPEC_FILE} (the stats task reads it; upstream's upgrade \
                 overwrites {from})"
            ));
            if !steps.dry_run {
                project.create_new(SPEC_FILE, bytes, *mode, Some(*owner))?;
                state.spec = Some(record::SpecRecord {
                    sha256: sha256_hex(bytes),
                });
                record::save(&project, &state, project_owner)?;
            }
        }
    }

    // 3. config.xml.
    steps.step(&format!("entries in {}", dir.join("config.xml").display()));
    let (new, said) = config_changes(a, &cfg, &mut state)?;
    if new == cfg.text {
        println!("    config.xml: unchanged");
    } else {
        for s in &said {
            steps.note(s);
        }
        cfg.rewrite(&project, &new, &steps)?;
    }
    if !steps.dry_run {
        record::save(&project, &state, project_owner)?;
    }

    // 4. What version 1 did to upstream's db_dump, undone now that the
    // task runs ours.
    if let Some(legacy) = state.binaries.get(LEGACY_DB_DUMP).cloned() {
        steps.step(&format!(
            "upstream's {} (an earlier install put our db_dump there)",
            dir.join("bin/db_dump").display()
        ));
        if let Some(bin) = &bin {
            give_back_db_dump(bin, &legacy, &steps)?;
        }
        if !steps.dry_run {
            state.binaries.remove(LEGACY_DB_DUMP);
            record::save(&project, &state, project_owner)?;
        }
    }

    // 5. Web server includes: root's, outside the project.
    steps.step("web server includes");
    for f in &state.files {
        println!(
            "    {}: written by an earlier install into the project folder, which its user \
             can change: if the web server links it, link root's copy instead, then delete it",
            clean(&dir.join(f).display().to_string())
        );
    }
    match (&site, root) {
        (Some(site), true) => {
            web_config::write(site, &a.web_conf_dir, &mut steps)?;
            if !steps.dry_run && state.name.as_deref() != Some(site.name.as_str()) {
                state.name = Some(site.name.clone());
                record::save(&project, &state, project_owner)?;
            }
        }
        _ => println!(
            "    not written: the web server reads them as root, so they belong to root, \
             outside the project folder. Then, as root: {} project web-config --project-dir {}{} \
             (writes {}/NAME.boinc-rpc.httpd.conf and .nginx.conf)",
            std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "boinc-ops".into()),
            clean(&dir.display().to_string()),
            if site.is_none() { " --name NAME" } else { "" },
            a.web_conf_dir.display()
        ),
    }

    // 6. Database.
    if a.db_at_start {
        steps.step("database: left for boinc-rpc --init-db (each time it starts)");
    } else {
        let settings = cfg.project_config(dir).database()?;
        steps.step(&format!("database upgrade ({settings:?})"));
        if steps.dry_run {
            steps.note("run `boinc-ops db upgrade` (adds what is missing, never changes data)");
        } else {
            let mut conn = boinc_db::mysql_async::Conn::new(settings.opts())
                .await
                .with_context(|| format!("connecting to {settings:?}"))?;
            let report = boinc_db::schema::upgrade(&mut conn).await?;
            conn.disconnect().await.ok();
            if report.applied.is_empty() {
                println!("    schema up to date");
            }
            for x in &report.applied {
                println!("    applied: {}", clean(x));
            }
            for w in report.warnings() {
                eprintln!("WARNING: {}", clean(&w));
            }
        }
    }

    let mut next = format!(
        "\nNext (as the project's user, in {}):\n  \
         bin/stop && bin/start        # or wait for `bin/start --cron`\n  \
         bin/status                   # boinc-rpc runs; its log: log_HOST/boinc-rpc.log\n  \
         boinc-ops project check --project-dir .   # exit 0: intact (see README: a daily <task>)\n",
        dir.display()
    );
    if let (Some(site), true) = (&site, root) {
        next.push_str(&web_config::enable_hint(site, &a.web_conf_dir));
    }
    println!("{}", clean_text(&next));
    Ok(())
}

pub enum Current {
    Missing,
    /// A regular file, with its sha256.
    File(String),
    /// A link or anything else: never read through.
    Other,
}

pub fn current_binary(bin: &Dir, name: &str) -> anyhow::Result<Current> {
    Ok(match bin.lstat(name)? {
        None => Current::Missing,
        Some(i) if i.kind == Kind::File => match bin.sha256(name)? {
            Some(sha) => Current::File(sha),
            None => Current::Missing,
        },
        Some(_) => Current::Other,
    })
}

/// Version 1 put our db_dump over upstream's, keeping upstream's as
/// `db_dump.before-boinc-consent-server`. Put that back, unless upstream
/// has installed a newer one meanwhile (then that one stays).
fn give_back_db_dump(bin: &Dir, legacy: &record::Installed, steps: &Steps) -> anyhow::Result<()> {
    let backup = legacy
        .backup
        .clone()
        .unwrap_or_else(|| format!("{LEGACY_DB_DUMP}{BACKUP_SUFFIX}"));
    let ours =
        matches!(current_binary(bin, LEGACY_DB_DUMP)?, Current::File(c) if c == legacy.sha256);
    let missing = bin.lstat(LEGACY_DB_DUMP)?.is_none();
    let kept = bin.lstat(&backup)?.is_some_and(|i| i.kind == Kind::File);
    match (ours || missing, kept) {
        (true, true) => {
            steps.note(&format!(
                "put {} back as db_dump",
                bin.join(&backup).display()
            ));
            if !steps.dry_run {
                // One rename: bin/db_dump is never missing meanwhile.
                bin.rename(&backup, LEGACY_DB_DUMP)?;
            }
        }
        (true, false) => {
            if ours {
                steps.note("remove our old db_dump (there was no upstream one before)");
                if !steps.dry_run {
                    bin.remove(LEGACY_DB_DUMP)?;
                }
            }
        }
        (false, kept) => {
            println!("    db_dump: upstream's (installed since), left alone");
            if kept {
                println!(
                    "    {}: the older upstream db_dump, left for you to delete",
                    clean(&bin.join(&backup).display().to_string())
                );
            }
        }
    }
    Ok(())
}

/// What happens to our spec copy.
enum SpecPlan {
    Keep,
    Copy {
        from: String,
        bytes: Vec<u8>,
        mode: u32,
        owner: (u32, u32),
    },
}

/// Our spec stays as it is once there (the admin edits it); otherwise it
/// is copied from the spec the stats task reads now, which must be a
/// valid db_dump spec in the project folder.
fn plan_spec(project: &Dir, cfg: &ConfigFile) -> anyhow::Result<SpecPlan> {
    if let Some(i) = project.lstat(SPEC_FILE)? {
        if i.kind != Kind::File {
            bail!(
                "{} is not a regular file; move it away first",
                project.join(SPEC_FILE).display()
            );
        }
        return Ok(SpecPlan::Keep);
    }
    let from = match stats_tasks(&cfg.layout).0 {
        Some(t) if t.program() == LEGACY_DB_DUMP => {
            stats_task::spec_source(&t.cmd).map_err(|e| anyhow::anyhow!(clean(&e)))?
        }
        _ => stats_task::UPSTREAM_SPEC.to_owned(),
    };
    let (bytes, info) = project.read(&from, MAX_SPEC)?.with_context(|| {
        format!(
            "{} missing: the stats task needs a db_dump spec (BOINC's sched/db_dump_spec.xml)",
            project.join(&from).display()
        )
    })?;
    let text = String::from_utf8_lossy(&bytes);
    boinc_db_dump::DumpSpec::parse(&text, &project.join(&from))
        .map_err(|e| anyhow::anyhow!(clean(&e.to_string())))?;
    Ok(SpecPlan::Copy {
        from,
        bytes,
        mode: info.mode & 0o666,
        owner: (info.uid, info.gid),
    })
}

/// (the task running our db_dump, else the first running upstream's;
/// every other upstream db_dump task).
fn stats_tasks(layout: &super::config_edit::Layout) -> (Option<&Item>, Vec<&Item>) {
    let ours = layout
        .tasks
        .items
        .iter()
        .find(|t| t.program() == DB_DUMP_BIN);
    let upstream: Vec<&Item> = layout
        .tasks
        .items
        .iter()
        .filter(|t| t.program() == LEGACY_DB_DUMP)
        .collect();
    match ours {
        Some(t) => (Some(t), upstream),
        None => {
            let mut up = upstream.into_iter();
            (up.next(), up.collect())
        }
    }
}

/// config.xml with install's entries, every change recorded in `state`.
/// Returns the new text and what changed, one line each.
fn config_changes(
    a: &InstallArgs,
    cfg: &ConfigFile,
    state: &mut record::State,
) -> anyhow::Result<(String, Vec<String>)> {
    let mut new = cfg.text.clone();
    let mut said = Vec::new();
    let ops_configured = ["ops_user", "ops_password_hash"]
        .iter()
        .all(|k| cfg.key(k).is_some_and(|v| !v.is_empty()));
    let mut rpc_cmd = match &a.listen {
        Some(l) => format!("boinc-rpc --listen {l}"),
        None => "boinc-rpc".to_owned(),
    };
    if a.db_at_start {
        rpc_cmd.push_str(" --init-db");
    }
    let mut wanted = vec![("boinc-rpc", false, rpc_cmd)];
    if ops_configured {
        wanted.push((
            "boinc-ops",
            true,
            match &a.ops_listen {
                Some(l) => format!("boinc-ops serve --listen {l}"),
                None => "boinc-ops serve".to_owned(),
            },
        ));
    } else {
        println!(
            "    ops page daemon: not added (set <ops_user> and <ops_password_hash>, see \
             `boinc-ops hash-password`, then run install again)"
        );
    }
    state.daemons.clear();
    for (program, serve, cmd) in wanted {
        let layout = scan(&new)?;
        let existing = layout.daemons.items.iter().find(|d| {
            d.program() == program && (!serve || d.cmd.split_whitespace().any(|w| w == "serve"))
        });
        if let Some(d) = existing {
            println!(
                "    daemon `{}`: kept as it is{}",
                clean(&d.cmd),
                if d.is_disabled() {
                    " (disabled: bin/start won't run it)"
                } else {
                    ""
                }
            );
            state.daemons.push(d.cmd.clone());
            continue;
        }
        let lines = [
            (0, "<daemon>".to_owned()),
            (1, format!("<cmd>{}</cmd>", boinc_db::xml::escape(&cmd))),
            (0, "</daemon>".to_owned()),
        ];
        let (edit, created) = add_item(&new, &layout, "daemons", &lines);
        let (scope, what) = match created {
            Some(_) => (
                Scope::Root,
                What::Section {
                    name: "daemons".into(),
                },
            ),
            None => (Scope::Daemons, What::Daemon { cmd: cmd.clone() }),
        };
        new = apply_recorded(&new, edit, scope, what, &mut state.changes);
        said.push(format!("add daemon `{cmd}`"));
        state.daemons.push(cmd);
    }

    let layout = scan(&new)?;
    let (task, others) = stats_tasks(&layout);
    for t in others {
        println!(
            "    task `{}`: another upstream db_dump task, kept as it is (it runs upstream's \
             bin/db_dump, which exports without asking consent)",
            clean(&t.cmd)
        );
    }
    match task {
        Some(t) => {
            let cmd = if t.program() == DB_DUMP_BIN {
                t.cmd.clone()
            } else {
                stats_task::ours(&t.cmd)
            };
            // What bin/start should do with it now.
            let disabled = match &t.disabled {
                Some(_) if a.enable_db_dump && t.is_disabled() => Some("0"),
                // BOINC's bin/start runs a task whose <disabled> is empty,
                // though its documentation says <disabled/> turns it off:
                // say what is meant, so both read it the same way.
                Some(d) if d.is_empty() => Some("1"),
                _ => None,
            };
            let mut parts: Vec<Edit> = Vec::new();
            if cmd != t.cmd {
                let (s, e) = t.cmd_span.expect("a task with a command has its span");
                parts.push(Edit {
                    start: s - t.start,
                    end: e - t.start,
                    with: boinc_db::xml::escape(&cmd),
                });
                said.push(format!(
                    "task `{}` runs ours: `{cmd}` (bin/{DB_DUMP_BIN} with ../{SPEC_FILE}; \
                     upstream's bin/db_dump and db_dump_spec.xml are left to upstream)",
                    t.cmd
                ));
            }
            match (disabled, &t.disabled) {
                (Some(v), Some(d)) => {
                    parts.push(Edit {
                        start: d.start - t.start,
                        end: d.end - t.start,
                        with: format!("<disabled>{v}</disabled>"),
                    });
                    said.push(if v == "0" {
                        format!("enable task `{cmd}`")
                    } else {
                        format!(
                            "task `{cmd}` stays disabled: its empty <disabled/> is written \
                             <disabled>1</disabled> (BOINC's bin/start runs a task whose \
                             <disabled> is empty)"
                        )
                    });
                }
                _ => {
                    let how = if t.is_disabled() {
                        "disabled; --enable-db-dump enables it"
                    } else {
                        "enabled"
                    };
                    if parts.is_empty() {
                        println!("    task `{}`: kept ({how})", clean(&cmd));
                    } else if let Some(s) = said.last_mut() {
                        s.push_str(&format!("; {how}"));
                    }
                }
            }
            if !parts.is_empty() {
                let element = &new[t.start..t.end];
                let changed = super::config_edit::apply(element, parts);
                let edit = Edit {
                    start: t.start,
                    end: t.end,
                    with: changed,
                };
                new = apply_recorded(
                    &new,
                    edit,
                    Scope::Tasks,
                    What::Task { cmd: cmd.clone() },
                    &mut state.changes,
                );
            }
            state.task = Some(cmd);
        }
        None => {
            let lines = [
                (0, "<task>".to_owned()),
                (1, format!("<cmd>{STATS_CMD}</cmd>")),
                (1, "<period>24 hours</period>".to_owned()),
                (1, "<output>db_dump.out</output>".to_owned()),
                (
                    1,
                    format!(
                        "<disabled>{}</disabled>",
                        if a.enable_db_dump { 0 } else { 1 }
                    ),
                ),
                (0, "</task>".to_owned()),
            ];
            let (edit, created) = add_item(&new, &layout, "tasks", &lines);
            let (scope, what) = match created {
                Some(_) => (
                    Scope::Root,
                    What::Section {
                        name: "tasks".into(),
                    },
                ),
                None => (
                    Scope::Tasks,
                    What::Task {
                        cmd: STATS_CMD.into(),
                    },
                ),
            };
            new = apply_recorded(&new, edit, scope, what, &mut state.changes);
            said.push(format!(
                "add task `{STATS_CMD}` every 24 hours ({})",
                if a.enable_db_dump {
                    "enabled"
                } else {
                    "disabled; --enable-db-dump enables it"
                }
            ));
            state.task = Some(STATS_CMD.to_owned());
        }
    }

    let layout = scan(&new)?;
    if !layout
        .config_keys
        .iter()
        .any(|(k, ..)| k == "rpc_trusted_proxies")
    {
        if let Some(edit) = add_config_key(&new, &layout, "rpc_trusted_proxies", TRUSTED_PROXIES) {
            new = apply_recorded(
                &new,
                edit,
                Scope::Config,
                What::ConfigKey {
                    key: "rpc_trusted_proxies".into(),
                    value: TRUSTED_PROXIES.into(),
                },
                &mut state.changes,
            );
            said.push(format!(
                "add <rpc_trusted_proxies>{TRUSTED_PROXIES}</rpc_trusted_proxies> (the web server in front)"
            ));
        }
    }
    // What install wrote must read back as a config file.
    scan(&new)?;
    Ok((new, said))
}
