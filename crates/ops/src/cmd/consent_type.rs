//! `boinc-ops consent-type ...`: list, add, enable/disable, privacypref,
//! change history; delete is refused with an explanation.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use boinc_ops::{ConsentOps, DELETE_EXPLANATION};
use clap::{Subcommand, ValueEnum};

use super::actor;
use super::print::{clean, print_json, print_table, yes_no};
use super::{load_config, EXIT_REFUSED};

#[derive(Subcommand)]
pub enum CtCmd {
    /// Show all consent types.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a project-specific type (starts disabled, privacypref off).
    Add {
        shortname: String,
        description: String,
    },
    Enable {
        shortname: String,
    },
    Disable {
        shortname: String,
    },
    /// Turn the privacy-preference flag on or off.
    Privacypref {
        shortname: String,
        state: OnOff,
    },
    /// Who changed what and when (newest first).
    History {
        shortname: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u64,
        #[arg(long)]
        json: bool,
    },
    /// Consent types cannot be deleted: explains why and how to disable one.
    #[command(alias = "remove", alias = "rm")]
    Delete {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

pub async fn run(config: Option<&Path>, cmd: CtCmd) -> anyhow::Result<ExitCode> {
    if let CtCmd::Delete { args } = cmd {
        // Answer without touching the database: nothing to connect for.
        let what = if args.is_empty() {
            "consent types".to_owned()
        } else {
            args.join(" ")
        };
        eprintln!(
            "refused: cannot delete {}.\n\n{DELETE_EXPLANATION}",
            clean(&what)
        );
        return Ok(ExitCode::from(EXIT_REFUSED));
    }
    let (cfg, _) = load_config(config, false)?;
    let pool = boinc_db::pool(&cfg.database()?);
    let ops = ConsentOps::new(pool.clone());
    let r = consent_type(&ops, cmd).await;
    pool.disconnect().await.ok();
    r
}

async fn consent_type(ops: &ConsentOps, cmd: CtCmd) -> anyhow::Result<ExitCode> {
    let who = actor();
    match cmd {
        CtCmd::List { json } => {
            let types = ops.list().await?;
            if json {
                print_json(&types)?;
            } else {
                let rows: Vec<Vec<String>> = types
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.to_string(),
                            t.shortname.clone(),
                            yes_no(t.enabled).into(),
                            yes_no(t.project_specific).into(),
                            yes_no(t.privacypref).into(),
                            t.description.clone(),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "ID",
                        "NAME",
                        "ENABLED",
                        "PROJECT-SPECIFIC",
                        "PRIVACYPREF",
                        "DESCRIPTION",
                    ],
                    &rows,
                );
            }
        }
        CtCmd::Add {
            shortname,
            description,
        } => {
            let t = ops.add(&who, &shortname, &description).await?;
            println!(
                "added {} (id {}): disabled, project-specific, privacypref off; \
                 enable it with `boinc-ops consent-type enable {}`",
                clean(&t.shortname),
                t.id,
                clean(&t.shortname)
            );
        }
        CtCmd::Enable { shortname } => {
            report(ops.set_enabled(&who, &shortname, true).await?, "enabled")
        }
        CtCmd::Disable { shortname } => {
            report(ops.set_enabled(&who, &shortname, false).await?, "disabled")
        }
        CtCmd::Privacypref { shortname, state } => {
            let on = matches!(state, OnOff::On);
            report(
                ops.set_privacypref(&who, &shortname, on).await?,
                if on {
                    "privacypref on"
                } else {
                    "privacypref off"
                },
            )
        }
        CtCmd::History {
            shortname,
            limit,
            json,
        } => {
            let rows = ops.history(shortname.as_deref(), limit).await?;
            if json {
                print_json(&rows)?;
            } else if rows.is_empty() {
                println!("no changes recorded");
            } else {
                let rows: Vec<Vec<String>> = rows
                    .iter()
                    .map(|h| {
                        vec![
                            boinc_ops::time::utc(h.change_time),
                            h.actor.clone(),
                            h.shortname.clone(),
                            h.action.clone(),
                            h.old_value.clone(),
                            h.new_value.clone(),
                        ]
                    })
                    .collect();
                print_table(&["WHEN", "WHO", "TYPE", "CHANGE", "OLD", "NEW"], &rows);
            }
        }
        CtCmd::Delete { .. } => bail!("handled before connecting"),
    }
    Ok(ExitCode::SUCCESS)
}

fn report(c: boinc_ops::Change, what: &str) {
    if c.changed {
        println!("{}: {what}", clean(&c.consent_type.shortname));
    } else {
        println!(
            "{}: already {what}; nothing changed",
            clean(&c.consent_type.shortname)
        );
    }
}
