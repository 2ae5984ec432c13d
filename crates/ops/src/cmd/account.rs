//! `boinc-ops account find|export|delete`: data-subject requests.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use boinc_db::account::erase::Mode;
use boinc_ops::account::{self, AccountError, Query};
use boinc_ops::consent_records::UserRef;
use boinc_ops::time::utc;
use clap::{ArgGroup, Subcommand, ValueEnum};

use super::actor;
use super::print::{print_json, print_table};
use super::{load_config, EXIT_REFUSED};

#[derive(Subcommand)]
pub enum AccountCmd {
    /// Find accounts by exact id, email (only ASCII letter case ignored) or name.
    #[command(group(ArgGroup::new("who").required(true).args(["email", "id", "name"])))]
    Find {
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        id: Option<i64>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Everything the database holds about the account's owner, as one
    /// self-describing JSON document (access request). Recorded in the audit.
    #[command(group(ArgGroup::new("who").required(true).args(["email", "id"])))]
    Export {
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        id: Option<i64>,
        /// Write here (created readable by the owner only) instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Erase the account (erasure request): obfuscate keeps an anonymous
    /// row (credit, consent evidence), wipe removes everything. Asks to type
    /// the account id unless --yes.
    #[command(group(ArgGroup::new("who").required(true).args(["email", "id"])))]
    Delete {
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        id: Option<i64>,
        #[arg(long)]
        mode: EraseMode,
        /// Do not ask for confirmation (scripts).
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum EraseMode {
    Obfuscate,
    Wipe,
}

fn who(email: Option<String>, id: Option<i64>) -> anyhow::Result<UserRef> {
    match (id, email) {
        (Some(id), _) => Ok(UserRef::Id(id)),
        (None, Some(e)) => Ok(UserRef::Email(e)),
        (None, None) => anyhow::bail!("give --email or --id"),
    }
}

pub async fn run(config: Option<&Path>, cmd: AccountCmd) -> anyhow::Result<ExitCode> {
    let (cfg, _) = load_config(config, false)?;
    let pool = boinc_db::pool(&cfg.database()?);
    let r = dispatch(&pool, cmd).await;
    pool.disconnect().await.ok();
    match r {
        Err(e) => match e.downcast_ref::<AccountError>() {
            Some(a) if a.is_user_error() => {
                eprintln!("error: {a}");
                Ok(ExitCode::from(EXIT_REFUSED))
            }
            _ => Err(e),
        },
        ok => ok,
    }
}

async fn dispatch(pool: &boinc_db::mysql_async::Pool, cmd: AccountCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AccountCmd::Find {
            email,
            id,
            name,
            json,
        } => {
            let q = match (id, email, name) {
                (Some(id), _, _) => Query::Id(id),
                (None, Some(e), _) => Query::Email(e),
                (None, None, Some(n)) => Query::Name(n),
                _ => anyhow::bail!("give --email, --id or --name"),
            };
            let found = account::find(pool, &q).await?;
            if json {
                print_json(&found)?;
            } else if found.is_empty() {
                println!("no account matches exactly");
            } else {
                let rows: Vec<Vec<String>> = found
                    .iter()
                    .map(|f| {
                        vec![
                            f.id.to_string(),
                            f.name.clone().unwrap_or_default(),
                            f.email_addr.clone(),
                            utc(f.create_time),
                            if f.deleted { "deleted" } else { "active" }.to_owned(),
                        ]
                    })
                    .collect();
                print_table(&["ID", "NAME", "EMAIL", "CREATED", "STATE"], &rows);
            }
            Ok(ExitCode::SUCCESS)
        }
        AccountCmd::Export { email, id, out } => {
            let who = who(email, id)?;
            let now = boinc_db::now();
            // The document is staged (rendered, or written to a private
            // temporary file next to --out) before the export is recorded;
            // only the last step of delivery follows the audit row.
            match out {
                None => {
                    let (_, text) = account::export_staged(pool, &who, &actor(), now, |doc| {
                        // On a terminal-safe form (same data, more escapes).
                        Ok(boinc_ops::terminal::clean_json(&render(doc)?))
                    })
                    .await?;
                    let mut stdout = std::io::stdout().lock();
                    stdout
                        .write_all(text.as_bytes())
                        .and_then(|()| stdout.flush())
                        .context("writing the export to standard output")?;
                }
                Some(path) => {
                    let (doc, staged) = account::export_staged(pool, &who, &actor(), now, |doc| {
                        stage_private(&path, render(doc)?.as_bytes()).map_err(|e| {
                            std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
                        })
                    })
                    .await?;
                    staged
                        .persist(&path)
                        .map_err(|e| e.error)
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!(
                        "exported account {} to {} (recorded in the account's audit trail)",
                        doc.userid,
                        path.display()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AccountCmd::Delete {
            email,
            id,
            mode,
            yes,
        } => {
            let userid = account::resolve(pool, &who(email, id)?).await?;
            let mode = match mode {
                EraseMode::Obfuscate => Mode::Obfuscate,
                EraseMode::Wipe => Mode::Wipe,
            };
            if !yes {
                confirm(userid, mode)?;
            }
            let o = account::delete(pool, userid, mode, &actor()).await?;
            println!(
                "account {} deleted ({}): {} host(s) recorded in host_deleted; consent rows \
                 kept {}, removed {}; founder of {} team(s) cleared; {} other row(s) removed, \
                 {} kept without the person's identity",
                o.userid,
                o.mode,
                o.hosts,
                o.consent_rows_kept,
                o.consent_rows_removed,
                o.teams_founder_cleared,
                o.other_rows_removed,
                o.other_rows_anonymised
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Ask for the account id on a terminal; refuse without one (use --yes).
fn confirm(userid: i64, mode: Mode) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "refusing to delete account {userid} without confirmation: run it on a terminal \
             or add --yes"
        );
    }
    eprint!(
        "Delete account {userid} ({}; cannot be undone). Type the account id to confirm: ",
        mode.as_str()
    );
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() != userid.to_string() {
        return Err(AccountError::NotConfirmed(userid).into());
    }
    Ok(())
}

/// The export as pretty JSON.
fn render(doc: &account::Export) -> std::io::Result<String> {
    serde_json::to_string_pretty(doc)
        .map(|j| j + "\n")
        .map_err(std::io::Error::other)
}

/// Personal data in a new temporary file next to `path` that only its owner
/// can read, written and synced; `persist` puts it in place atomically.
fn stage_private(path: &Path, data: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    Ok(tmp)
}
