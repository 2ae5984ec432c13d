//! install's config.xml changes: the daemon lines, the stats task made
//! ours, `<rpc_trusted_proxies>`; each recorded as text so uninstall can
//! undo exactly it.

use super::common::{ConfigFile, InstallArgs, DB_DUMP_BIN, SPEC_FILE, TRUSTED_PROXIES};
use super::config_edit::{add_config_key, add_item, scan, Edit, Scope};
use super::record::{self, apply_recorded, What};
use super::stats_task::{self, stats_tasks, STATS_CMD};
use crate::terminal::clean;

/// config.xml with install's entries, every change recorded in `state`.
/// Returns the new text and what changed, one line each.
pub fn config_changes(
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
            (
                1,
                format!("<cmd>{}</cmd>", boinc_db::text::xml::escape(&cmd)),
            ),
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
                    with: boinc_db::text::xml::escape(&cmd),
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
