//! `boinc-ops`: schema tool, consent-type administration and the ops page.

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use boinc_db::config::DATABASE_URL_ENV;
use boinc_db::{schema, ProjectConfig};
use boinc_ops::web::Credentials;
use boinc_ops::{ConsentOps, OpsError, ServeOptions, DELETE_EXPLANATION};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "boinc-ops",
    version,
    about = "BOINC project ops: database schema and consent types"
)]
struct Cli {
    /// The project's config.xml (BOINC_DATABASE_URL overrides its db_* settings).
    #[arg(long, global = true, default_value = "config/config.xml")]
    config: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create or upgrade the database schema.
    #[command(subcommand)]
    Db(DbCmd),
    /// List, add, enable/disable consent types; show their change history.
    #[command(subcommand, name = "consent-type")]
    ConsentType(CtCmd),
    /// Serve the ops web page (admin only: needs <ops_user> and <ops_password_hash>).
    Serve {
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
        /// Show the table and history without any form; refuse every change.
        #[arg(long)]
        read_only: bool,
    },
    /// Print a bcrypt hash of a password read from stdin, for <ops_password_hash>.
    HashPassword,
}

#[derive(Subcommand)]
enum DbCmd {
    /// Create the database and schema if missing.
    Init,
    /// Add missing tables, indexes, guards and predefined types (idempotent).
    Upgrade,
}

#[derive(Subcommand)]
enum CtCmd {
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
enum OnOff {
    On,
    Off,
}

/// Exit status for a refused request (bad input, unknown type, delete).
const EXIT_REFUSED: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs its requests and changes; CLI commands print their
    // own result, so they only log problems. RUST_LOG overrides either.
    let default_filter = if matches!(cli.cmd, Cmd::Serve { .. }) {
        "warn,boinc_ops=info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<OpsError>() {
            Some(o) if o.is_user_error() => {
                eprintln!("error: {o}");
                ExitCode::from(EXIT_REFUSED)
            }
            _ => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// config.xml; without one, BOINC_DATABASE_URL alone is enough for the
/// database commands (containers, CI).
fn load_config(path: &Path, need_file: bool) -> anyhow::Result<ProjectConfig> {
    if !need_file && !path.exists() && std::env::var_os(DATABASE_URL_ENV).is_some() {
        return Ok(ProjectConfig::from_pairs(PathBuf::from("."), &[]));
    }
    ProjectConfig::load(path).with_context(|| format!("loading {}", path.display()))
}

fn actor() -> String {
    ["SUDO_USER", "USER"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "cli".to_owned())
}

fn yes_no(v: i64) -> &'static str {
    if v != 0 {
        "yes"
    } else {
        "no"
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.cmd {
        Cmd::HashPassword => {
            let pass = read_password()?;
            let h = bcrypt::hash_with_result(pass, 12)?;
            println!("{}", h.format_for_version(bcrypt::Version::TwoY));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Db(cmd) => {
            let cfg = load_config(&cli.config, false)?;
            let settings = cfg.database()?;
            let report = match cmd {
                DbCmd::Init => schema::init(&settings).await?,
                DbCmd::Upgrade => {
                    let mut conn = boinc_db::mysql_async::Conn::new(settings.opts())
                        .await
                        .with_context(|| format!("connecting to {settings:?}"))?;
                    let r = schema::upgrade(&mut conn).await?;
                    conn.disconnect().await.ok();
                    r
                }
            };
            if report.created_database {
                println!("created database {}", settings.name);
            }
            if report.applied.is_empty() {
                println!(
                    "schema up to date ({} constraints already present)",
                    report.already_present
                );
            } else {
                for a in &report.applied {
                    println!("applied: {a}");
                }
                println!(
                    "{} applied, {} already present",
                    report.applied.len(),
                    report.already_present
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::ConsentType(CtCmd::Delete { args }) => {
            // Answer without touching the database: nothing to connect for.
            let what = if args.is_empty() {
                "consent types".to_owned()
            } else {
                args.join(" ")
            };
            eprintln!("refused: cannot delete {what}.\n\n{DELETE_EXPLANATION}");
            Ok(ExitCode::from(EXIT_REFUSED))
        }
        Cmd::ConsentType(cmd) => {
            let cfg = load_config(&cli.config, false)?;
            let pool = boinc_db::pool(&cfg.database()?);
            let ops = ConsentOps::new(pool.clone());
            let r = consent_type(&ops, cmd).await;
            pool.disconnect().await.ok();
            r
        }
        Cmd::Serve { listen, read_only } => {
            let cfg = load_config(&cli.config, true)?;
            let creds = Credentials::from_config(&cfg)?;
            let pool = boinc_db::pool(&cfg.database()?);
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            println!(
                "ops page on http://{} ({}), user {}",
                listener.local_addr()?,
                if read_only { "read-only" } else { "read-write" },
                creds.user()
            );
            boinc_ops::serve(
                listener,
                ConsentOps::new(pool),
                ServeOptions {
                    read_only,
                    credentials: Some(creds),
                },
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn consent_type(ops: &ConsentOps, cmd: CtCmd) -> anyhow::Result<ExitCode> {
    let who = actor();
    match cmd {
        CtCmd::List { json } => {
            let types = ops.list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&types)?);
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
                t.shortname, t.id, t.shortname
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
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if rows.is_empty() {
                println!("no changes recorded");
            } else {
                let rows: Vec<Vec<String>> = rows
                    .iter()
                    .map(|h| {
                        vec![
                            chrono::DateTime::from_timestamp(h.change_time, 0)
                                .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                                .unwrap_or_else(|| h.change_time.to_string()),
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
        println!("{}: {what}", c.consent_type.shortname);
    } else {
        println!(
            "{}: already {what}; nothing changed",
            c.consent_type.shortname
        );
    }
}

fn print_table(head: &[&str], rows: &[Vec<String>]) {
    let mut width: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let n = cells.len();
        let mut s = String::new();
        for (i, (c, w)) in cells.into_iter().zip(&width).enumerate() {
            if i + 1 == n {
                s.push_str(c); // last column unpadded: no trailing spaces
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s
    };
    println!("{}", line(head.to_vec()));
    for r in rows {
        println!("{}", line(r.iter().map(String::as_str).collect()));
    }
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        eprint!("password (echoed; or pipe it in): ");
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let pass = line.trim_end_matches(['\r', '\n']).to_owned();
    if pass.len() < 8 {
        bail!("use a password of at least 8 characters");
    }
    if pass.len() > 72 {
        bail!("bcrypt uses at most 72 bytes of a password; use a shorter one");
    }
    Ok(pass)
}
