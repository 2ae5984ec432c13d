//! `boinc-ops project install`.

use std::path::Path;

use anyhow::{bail, Context};
use sha2::Digest;

use super::config_edit::{add_config_key, add_item, scan, Edit, Scope};
use super::fsafe::{self, Dir, Kind};
use super::record::{self, apply_recorded, What};
use super::web_config::{self, Site};
use super::{
    owner_of, ConfigFile, InstallArgs, Steps, BACKUP_SUFFIX, BINARIES, DB_DUMP_CMD, TRUSTED_PROXIES,
};
use crate::terminal::{clean, clean_text};

/// Our binaries are tens of MB; anything past this is not one.
const MAX_BINARY: u64 = 1 << 30;

fn sha256_hex(bytes: &[u8]) -> String {
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
    let name = web_config::short_name(a.name.clone(), &key);
    let site = match (name, root) {
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
    for b in BINARIES {
        let src = from.join(b);
        let bytes = std::fs::read(&src).with_context(|| {
            format!(
                "{} missing: build it (cargo build --release) or pass --from",
                src.display()
            )
        })?;
        sources.push((b, sha256_hex(&bytes), bytes));
    }
    println!(
        "project {} in {}",
        site.as_ref().map_or("?", |s| s.name.as_str()),
        clean(&dir.display().to_string())
    );
    let project_owner = owner_of(&project)?;

    // 1. Binaries.
    steps.step(&format!(
        "binaries from {} into {}",
        from.display(),
        dir.join("bin").display()
    ));
    let bin = match project.subdir("bin")? {
        Some(b) => Some(b),
        None => {
            steps.note(&format!("create {}", dir.join("bin").display()));
            if steps.dry_run {
                None
            } else {
                let (uid, gid) = project_owner.unwrap_or((0, 0));
                Some(project.create_subdir("bin", 0o755, Some((uid, gid)))?)
            }
        }
    };
    for (b, sha, bytes) in &sources {
        let current = match &bin {
            Some(bin) => current_binary(bin, b)?,
            None => Current::Missing,
        };
        let recorded = state.binaries.get(*b).cloned();
        let mut backup = recorded.as_ref().and_then(|r| r.backup.clone());
        match &current {
            Current::File(c) if c == sha => {
                println!("    {b}: unchanged");
                state
                    .binaries
                    .entry((*b).to_owned())
                    .or_insert(record::Installed {
                        sha256: sha.clone(),
                        backup: None,
                    });
                continue;
            }
            Current::File(c) if recorded.as_ref().is_some_and(|r| &r.sha256 == c) => {}
            Current::Missing => {}
            _ => {
                // Someone else's program (BOINC's C++ db_dump): keep it.
                let keep = format!("{b}{BACKUP_SUFFIX}");
                steps.note(&format!(
                    "keep the existing {b} as {}",
                    dir.join("bin").join(&keep).display()
                ));
                if let (Some(bin), false) = (&bin, steps.dry_run) {
                    if bin.lstat(&keep)?.is_some() {
                        bail!(
                            "{} exists already; move it away first",
                            bin.join(&keep).display()
                        );
                    }
                    bin.rename(b, &keep)?;
                }
                backup = Some(keep);
            }
        }
        steps.note(&format!(
            "{} {b}",
            if matches!(current, Current::Missing) {
                "copy"
            } else {
                "replace"
            }
        ));
        if let (Some(bin), false) = (&bin, steps.dry_run) {
            bin.replace(b, bytes, 0o755, owner_of(bin)?)?;
            state.binaries.insert(
                (*b).to_owned(),
                record::Installed {
                    sha256: sha.clone(),
                    backup,
                },
            );
            record::save(&project, &state, project_owner)?;
        }
    }
    if !steps.dry_run {
        record::save(&project, &state, project_owner)?;
    }

    // 2. config.xml.
    steps.step(&format!("entries in {}", dir.join("config.xml").display()));
    let (new, said) = config_changes(a, &cfg, &mut state)?;
    if new == cfg.text {
        println!("    config.xml: unchanged");
    } else {
        for s in &said {
            steps.note(s);
        }
        cfg.rewrite(&project, &new, &steps)?;
        if !steps.dry_run {
            record::save(&project, &state, project_owner)?;
        }
    }

    // 3. Web server includes: root's, outside the project.
    steps.step("web server includes");
    for f in &state.files {
        println!(
            "    {}: written by an earlier install into the project folder, which its user \
             can change: if the web server links it, link root's copy instead (below), then \
             delete it",
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

    // 4. Database.
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

    let mut next = format!(
        "\nNext (as the project's user, in {}):\n  \
         bin/stop && bin/start        # or wait for `bin/start --cron`\n  \
         bin/status                   # boinc-rpc runs; its log: log_HOST/boinc-rpc.log\n",
        dir.display()
    );
    if let (Some(site), true) = (&site, root) {
        next.push_str(&web_config::enable_hint(site, &a.web_conf_dir));
    }
    println!("{}", clean_text(&next));
    Ok(())
}

enum Current {
    Missing,
    /// A regular file, with its sha256.
    File(String),
    /// A link or anything else: never read through.
    Other,
}

fn current_binary(bin: &Dir, name: &str) -> anyhow::Result<Current> {
    Ok(match bin.lstat(name)? {
        None => Current::Missing,
        Some(i) if i.kind == Kind::File => match bin.read(name, MAX_BINARY)? {
            Some((bytes, _)) => Current::File(sha256_hex(&bytes)),
            None => Current::Missing,
        },
        Some(_) => Current::Other,
    })
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
    let mut wanted = vec![(
        "boinc-rpc",
        false,
        match &a.listen {
            Some(l) => format!("boinc-rpc --listen {l}"),
            None => "boinc-rpc".to_owned(),
        },
    )];
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
    }

    let layout = scan(&new)?;
    match layout.tasks.items.iter().find(|t| t.program() == "db_dump") {
        Some(t) => {
            let d = t.disabled.clone();
            let set = match &d {
                Some(_) if a.enable_db_dump && t.is_disabled() => Some("0"),
                // BOINC's bin/start runs a task whose <disabled> is empty,
                // though its documentation says <disabled/> turns it off:
                // say what is meant, so both read it the same way.
                Some(d) if d.is_empty() => Some("1"),
                _ => None,
            };
            match (set, d) {
                (Some(v), Some(d)) => {
                    let changed = format!(
                        "{}<disabled>{v}</disabled>{}",
                        &new[t.start..d.start],
                        &new[d.end..t.end]
                    );
                    said.push(if v == "0" {
                        format!("enable task `{}` (it runs our db_dump now)", t.cmd)
                    } else {
                        format!(
                            "task `{}` stays disabled: its empty <disabled/> is written \
                             <disabled>1</disabled> (BOINC's bin/start runs a task whose \
                             <disabled> is empty)",
                            t.cmd
                        )
                    });
                    let edit = Edit {
                        start: t.start,
                        end: t.end,
                        with: changed,
                    };
                    new = apply_recorded(
                        &new,
                        edit,
                        Scope::Tasks,
                        What::Task { cmd: t.cmd.clone() },
                        &mut state.changes,
                    );
                }
                _ => println!(
                    "    task `{}`: kept as it is ({}); it runs our bin/db_dump, which takes \
                     the same arguments",
                    clean(&t.cmd),
                    if t.is_disabled() {
                        "disabled; --enable-db-dump enables it"
                    } else {
                        "enabled"
                    }
                ),
            }
        }
        None => {
            let lines = [
                (0, "<task>".to_owned()),
                (1, format!("<cmd>{DB_DUMP_CMD}</cmd>")),
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
                        cmd: DB_DUMP_CMD.into(),
                    },
                ),
            };
            new = apply_recorded(&new, edit, scope, what, &mut state.changes);
            said.push(format!(
                "add task `{DB_DUMP_CMD}` every 24 hours ({})",
                if a.enable_db_dump {
                    "enabled"
                } else {
                    "disabled; --enable-db-dump enables it"
                }
            ));
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
