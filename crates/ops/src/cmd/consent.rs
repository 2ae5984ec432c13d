//! `boinc-ops consent ...`: the consent report, one user's history (data
//! requests) and the stored terms versions.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use boinc_ops::consent_records::UserRef;
use boinc_ops::time::utc;
use boinc_ops::ConsentOps;
use clap::{ArgGroup, Subcommand};

use super::load_config;
use super::print::{clean, clean_text, print_json, print_table};

#[derive(Subcommand)]
pub enum ConsentCmd {
    /// Per consent type, users whose latest state is consented / withdrawn /
    /// not required / never asked; for ENROLL, users per terms version.
    Report {
        #[arg(long)]
        json: bool,
    },
    /// One user's full consent history; --json is a self-contained export
    /// (with the full text of every terms version accepted) for a data request.
    #[command(group(ArgGroup::new("who").required(true).args(["email", "user"])))]
    History {
        /// The account's current email address (exact; only ASCII letter case is ignored).
        #[arg(long)]
        email: Option<String>,
        /// The account's user id.
        #[arg(long)]
        user: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// List the stored terms-of-use versions, or print one version's full text.
    Terms {
        /// Version id (as shown by `consent report` and `consent history`).
        id: Option<i64>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(config: Option<&Path>, cmd: ConsentCmd) -> anyhow::Result<ExitCode> {
    let (cfg, from_file) = load_config(config, false)?;
    let pool = boinc_db::pool(&cfg.database()?);
    let mut ops = ConsentOps::new(pool.clone());
    // Without a config file there is no project directory to find
    // the terms in (BOINC_DATABASE_URL alone).
    if from_file {
        ops = ops.with_terms_file(cfg.terms_of_use_path());
    }
    let r = consent_records(&ops, cmd).await;
    pool.disconnect().await.ok();
    r
}

async fn consent_records(ops: &ConsentOps, cmd: ConsentCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ConsentCmd::Report { json } => {
            let r = ops.consent_report().await?;
            if json {
                print_json(&r)?;
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "Consent report, {} ({} accounts; deleted accounts are not counted)",
                r.generated_at_utc, r.users
            );
            println!("Each account is counted once per type, by its latest consent row.\n");
            let rows: Vec<Vec<String>> = r
                .consent_types
                .iter()
                .map(|t| {
                    vec![
                        t.shortname.clone(),
                        if t.enabled { "yes" } else { "no" }.into(),
                        t.consented.to_string(),
                        t.withdrawn.to_string(),
                        t.not_required.to_string(),
                        t.never_asked.to_string(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "TYPE",
                    "ENABLED",
                    "CONSENTED",
                    "WITHDRAWN",
                    "NOT-REQUIRED",
                    "NEVER-ASKED",
                ],
                &rows,
            );
            if let Some(e) = r.enroll() {
                println!(
                    "\nENROLL: accounts whose latest ENROLL consent accepted each terms version"
                );
                let rows: Vec<Vec<String>> = e
                    .by_terms_version
                    .iter()
                    .map(|v| {
                        vec![
                            v.label_marked(),
                            v.short_sha().to_owned(),
                            v.first_seen_text().to_owned(),
                            v.users.to_string(),
                        ]
                    })
                    .collect();
                print_table(&["VERSION", "SHA-256", "FIRST-SEEN", "ACCOUNTS"], &rows);
                if let Some(c) = &r.current_terms {
                    if c.terms_version_id.is_none() {
                        println!(
                            "The current terms file ({}) has not been accepted by anyone yet.",
                            boinc_ops::consent_records::short_sha(&c.sha256)
                        );
                    }
                }
            }
            println!(
                "\nnot-required: the account was created without its owner being asked (e.g. by an \
                 account manager).\nnever-asked: the account has no consent row of this type.\n\
                 unversioned: consented before terms versioning, or outside this server's \
                 create_account.\nShow a version's text with `boinc-ops consent terms ID`."
            );
        }
        ConsentCmd::History { email, user, json } => {
            let who = match (user, email) {
                (Some(id), _) => UserRef::Id(id),
                (None, Some(e)) => UserRef::Email(e),
                (None, None) => bail!("give --email or --user"),
            };
            let h = ops.user_history(&who).await?;
            if json {
                print_json(&h)?;
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "Account {}: name \"{}\", email {}, created {}",
                h.user.id,
                clean(&h.user.name),
                clean(&h.user.email_addr),
                h.user.create_time_utc
            );
            if h.consents.is_empty() {
                println!("\nNo consent recorded for this account.");
                return Ok(ExitCode::SUCCESS);
            }
            let terms = |id: Option<i64>, sha: Option<&str>| match (id, sha) {
                (Some(id), Some(sha)) => {
                    format!("{id} ({})", boinc_ops::consent_records::short_sha(sha))
                }
                (Some(id), None) => id.to_string(),
                _ => "-".to_owned(),
            };
            println!("\nCurrent state (latest row per type):");
            let rows: Vec<Vec<String>> = h
                .current
                .iter()
                .map(|c| {
                    let sha = h
                        .terms_versions
                        .iter()
                        .find(|t| Some(t.id) == c.terms_version_id)
                        .map(|t| t.sha256.as_str());
                    vec![
                        c.consent_type.clone(),
                        c.state.to_owned(),
                        c.since_utc.clone(),
                        terms(c.terms_version_id, sha),
                    ]
                })
                .collect();
            print_table(&["TYPE", "STATE", "SINCE", "TERMS-VERSION"], &rows);
            println!("\nHistory (oldest first; rows of the same second in the order written):");
            let rows: Vec<Vec<String>> = h
                .consents
                .iter()
                .map(|c| {
                    vec![
                        c.consent_time_utc.clone(),
                        c.consent_time.to_string(),
                        c.consent_type.clone(),
                        c.state.to_owned(),
                        c.consent_flag.to_string(),
                        c.consent_not_required.to_string(),
                        c.source.clone(),
                        terms(c.terms_version_id, c.terms_sha256.as_deref()),
                    ]
                })
                .collect();
            print_table(
                &[
                    "TIME",
                    "UNIX",
                    "TYPE",
                    "STATE",
                    "FLAG",
                    "NOT-REQUIRED",
                    "SOURCE",
                    "TERMS-VERSION",
                ],
                &rows,
            );
            if !h.terms_versions.is_empty() {
                let ids: Vec<String> = h.terms_versions.iter().map(|t| t.id.to_string()).collect();
                println!(
                    "\nTerms texts: `boinc-ops consent terms ID` (ID: {}); --json includes them.",
                    ids.join(", ")
                );
            }
        }
        ConsentCmd::Terms { id: Some(id), json } => {
            let t = ops.terms_document(id).await?;
            if json {
                print_json(&t)?;
            } else {
                // The stored text as served, lines and tabs kept; anything
                // a terminal would act on is escaped (--json is exact).
                let text = clean_text(&t.text);
                print!("{text}");
                if !text.ends_with('\n') {
                    println!();
                }
            }
        }
        ConsentCmd::Terms { id: None, json } => {
            let list = ops.terms_list().await?;
            if json {
                print_json(&list)?;
            } else if list.is_empty() {
                println!(
                    "no terms versions recorded yet (one is stored when create_account \
                     records the first ENROLL consent)"
                );
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|t| {
                        vec![
                            if t.current {
                                format!("{} (current)", t.id)
                            } else {
                                t.id.to_string()
                            },
                            utc(t.first_seen),
                            t.consent_rows.to_string(),
                            t.sha256.clone(),
                        ]
                    })
                    .collect();
                print_table(&["ID", "FIRST-SEEN", "CONSENT-ROWS", "SHA-256"], &rows);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
