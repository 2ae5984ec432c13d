//! `boinc-ops project uninstall`: reverse what the install record says
//! install did, and nothing else.

use anyhow::Context;

use super::common::{ConfigFile, Steps, UninstallArgs, SPEC_FILE};
use super::config_edit::{restore_section, scan};
use super::fsafe::{Dir, Kind};
use super::record;
use super::web_config::{apache_file, nginx_file};
use crate::terminal::clean;

pub fn run(a: &UninstallArgs) -> anyhow::Result<()> {
    let dir = &a.common.project_dir;
    let steps = &mut Steps::new(a.common.dry_run);
    let project = Dir::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let cfg = ConfigFile::read(&project)?;
    let mut ignored = Vec::new();
    let loaded = record::load(&project, &mut ignored)?;
    for i in &ignored {
        eprintln!("WARNING: {}", clean(i));
    }
    let Some(mut state) = loaded else {
        println!(
            "no install record ({}): nothing to undo",
            clean(&project.join(record::STATE_FILE).display().to_string())
        );
        return Ok(());
    };
    state.upgrade_from_v1(&cfg.text)?;

    // 1. config.xml.
    steps.step(&format!("entries in {}", dir.join("config.xml").display()));
    let (mut new, said) = record::undo(&cfg.text, &state.changes)?;
    let mut said = said;
    for (name, original) in &state.sections {
        let layout = scan(&new)?;
        let section = if name == "daemons" {
            &layout.daemons
        } else {
            &layout.tasks
        };
        if let Some(edit) = restore_section(&new, section, original) {
            said.push(format!("put <{name}> back as it was"));
            new = super::config_edit::apply(&new, vec![edit]);
        }
    }
    scan(&new)?;
    if new == cfg.text {
        for s in &said {
            println!("    {}", clean(s));
        }
        println!("    config.xml: nothing of ours");
    } else {
        for s in &said {
            steps.note(s);
        }
        cfg.rewrite(&project, &new, steps)?;
    }

    // 2. Binaries.
    steps.step(&format!("binaries in {}", dir.join("bin").display()));
    let bin = project.subdir("bin")?;
    if state.binaries.is_empty() {
        println!("    none recorded as installed");
    }
    if let Some(bin) = &bin {
        for (b, inst) in &state.binaries {
            let gone = match bin.lstat(b)? {
                None => {
                    println!("    {}: already gone", clean(b));
                    true
                }
                Some(i) if i.kind == Kind::File => {
                    let same = bin.sha256(b)?.is_some_and(|sha| sha == inst.sha256);
                    if same {
                        steps.note(&format!("remove {b}"));
                        if !steps.dry_run {
                            bin.remove(b)?;
                        }
                        true
                    } else {
                        println!("    {}: changed since install; left in place", clean(b));
                        false
                    }
                }
                Some(_) => {
                    println!(
                        "    {}: not the file install wrote; left in place",
                        clean(b)
                    );
                    false
                }
            };
            if let Some(backup) = &inst.backup {
                match bin.lstat(backup)? {
                    Some(i) if i.kind == Kind::File && gone => {
                        steps.note(&format!("put {} back as {b}", bin.join(backup).display()));
                        if !steps.dry_run {
                            bin.rename(backup, b)?;
                        }
                    }
                    Some(_) => println!(
                        "    {}: kept (what install found there before); {b} is not ours to replace",
                        clean(&bin.join(backup).display().to_string())
                    ),
                    None => {}
                }
            }
        }
    }

    // 3. Our spec copy.
    steps.step(&format!("stats spec {}", dir.join(SPEC_FILE).display()));
    match (&state.spec, project.lstat(SPEC_FILE)?) {
        (_, None) => println!("    {SPEC_FILE}: not there"),
        (Some(rec), Some(i)) if i.kind == Kind::File => {
            let same = project
                .sha256(SPEC_FILE)?
                .is_some_and(|sha| sha == rec.sha256);
            if same {
                steps.note(&format!("remove {SPEC_FILE}"));
                if !steps.dry_run {
                    project.remove(SPEC_FILE)?;
                }
            } else {
                println!(
                    "    {SPEC_FILE}: edited since install (your stats settings); left in place"
                );
            }
        }
        _ => println!("    {SPEC_FILE}: not the file install made; left in place"),
    }

    // 4. Web server includes.
    steps.step("web server includes");
    for f in &state.files {
        if let Some(i) = project.lstat(f)? {
            if i.kind == Kind::File {
                steps.note(&format!(
                    "remove {} (written by an earlier install; remove its link in \
                     /etc/apache2 or nginx too)",
                    dir.join(f).display()
                ));
                if !steps.dry_run {
                    project.remove(f)?;
                }
            }
        }
    }
    if let Some(name) = &state.name {
        let web = a.web_conf_dir.display();
        println!(
            "    root's copies stay until the web server no longer reads them (a missing \
             include stops it from starting). As root:\n      \
             rm /etc/apache2/sites-enabled/{apache} && apache2ctl graceful && rm {web}/{apache} {web}/{nginx}\n      \
             (nginx: drop the include line, nginx -s reload, then remove the files)",
            apache = apache_file(name),
            nginx = nginx_file(name),
        );
    }

    // 5. State and database.
    steps.step(
        "database: left as it is (consent records are evidence; BOINC's PHP ignores our tables)",
    );
    if !steps.dry_run {
        project.remove(record::STATE_FILE)?;
    }
    println!("\nNext: bin/stop && bin/start (stops the removed daemons).");
    Ok(())
}
