//! `boinc-ops project install`.

use std::path::Path;

use anyhow::{bail, Context};
use sha2::Digest;

use super::common::{
    owner_of, ConfigFile, InstallArgs, Steps, BACKUP_SUFFIX, LEGACY_DB_DUMP, PROGRAMS, SPEC_FILE,
};
use super::fsafe::{self, Dir, Kind};
use super::install_config::config_changes;
use super::record;
use super::stats_task::{plan_spec, SpecPlan};
use super::web_config::{self, Site};
use crate::terminal::{clean, clean_text};

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
         boinc-ops project check --project-dir .   # exit 0: intact (see docs/deploy.md: a daily <task>)\n",
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
