//! `boinc-ops`: schema tool, consent-type administration and the ops page.

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use boinc_db::config::{DATABASE_URL_ENV, STOP_DAEMONS_FILE};
use boinc_db::{schema, ProjectConfig};
use boinc_ops::consent_records::{utc, RecordsError, UserRef};
use boinc_ops::web::Credentials;
use boinc_ops::{ConsentOps, OpsError, ServeOptions, DELETE_EXPLANATION};
use clap::{ArgGroup, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "boinc-ops",
    version,
    about = "BOINC project ops: database schema and consent types"
)]
struct Cli {
    /// The project's config.xml (BOINC_DATABASE_URL overrides its db_* settings)
    /// [default: $BOINC_PROJECT_DIR/config.xml, else ./config.xml, else ../config.xml].
    #[arg(long, global = true)]
    config: Option<PathBuf>,
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
    /// Consent records: who consented to what, one user's history, terms versions.
    #[command(subcommand)]
    Consent(ConsentCmd),
    /// Serve the ops web page (admin only: needs <ops_user> and <ops_password_hash>).
    Serve {
        /// [default: <ops_listen> in config.xml, else 127.0.0.1:8081]
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Show the table and history without any form; refuse every change.
        #[arg(long)]
        read_only: bool,
    },
    /// Print a bcrypt hash of a password read from stdin, for <ops_password_hash>.
    HashPassword,
    /// Install into (or remove from) a BOINC project made by make_project.
    #[command(subcommand)]
    Project(boinc_ops::project::ProjectCmd),
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

#[derive(Subcommand)]
enum ConsentCmd {
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

#[derive(Clone, Copy, ValueEnum)]
enum OnOff {
    On,
    Off,
}

/// Exit status for a refused request (bad input, unknown type, delete).
const EXIT_REFUSED: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.cmd, Cmd::Serve { .. }) {
        // `boinc-ops consent report | head` should end quietly as Unix tools
        // do, not panic on the closed pipe: restore the default SIGPIPE
        // action Rust's runtime turns off. Not for the server, whose socket
        // writes must keep getting EPIPE instead of killing the process.
        // SAFETY: called before any thread exists; only resets a signal action.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    // The server logs its requests and changes; CLI commands print their
    // own result, so they only log problems. RUST_LOG overrides either.
    let default_filter = if matches!(cli.cmd, Cmd::Serve { .. }) {
        "warn,boinc_ops=info,boinc_daemon=info"
    } else {
        "warn"
    };
    boinc_daemon::init_logging(default_filter);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let serve = matches!(cli.cmd, Cmd::Serve { .. });
    // Ctrl-C drops the command's future, which cancels its database work
    // (KILL QUERY, boinc_db::cancel); the server handles signals itself.
    let outcome = rt.block_on(async {
        tokio::select! {
            r = run(cli) => Some(r),
            _ = tokio::signal::ctrl_c(), if !serve => None,
        }
    });
    let Some(outcome) = outcome else {
        rt.block_on(boinc_db::cancel::wait_for_kills(
            std::time::Duration::from_secs(5),
        ));
        eprintln!("interrupted");
        return ExitCode::from(130);
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            let refused = e
                .downcast_ref::<OpsError>()
                .is_some_and(OpsError::is_user_error)
                || e.downcast_ref::<RecordsError>()
                    .is_some_and(RecordsError::is_user_error);
            if refused {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_REFUSED)
            } else {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    }
}

/// config.xml (`--config`, else found as BOINC's programs find it); without
/// one, BOINC_DATABASE_URL alone is enough for the database commands
/// (containers, CI). The flag says whether a file was read.
fn load_config(path: Option<&Path>, need_file: bool) -> anyhow::Result<(ProjectConfig, bool)> {
    let found = boinc_db::config::find_config(path);
    let missing = match &found {
        Ok(p) => !p.exists(),
        Err(_) => true,
    };
    if !need_file && missing && std::env::var_os(DATABASE_URL_ENV).is_some() {
        return Ok((ProjectConfig::from_pairs(PathBuf::from("."), &[]), false));
    }
    let path = found?;
    let cfg = ProjectConfig::load(&path).with_context(|| format!("loading {}", path.display()))?;
    Ok((cfg, true))
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
        Cmd::Project(cmd) => boinc_ops::project::run(cmd).await,
        Cmd::HashPassword => {
            let pass = read_password()?;
            let h = bcrypt::hash_with_result(pass, 12)?;
            println!("{}", h.format_for_version(bcrypt::Version::TwoY));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Db(cmd) => {
            let (cfg, _) = load_config(cli.config.as_deref(), false)?;
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
            let (cfg, _) = load_config(cli.config.as_deref(), false)?;
            let pool = boinc_db::pool(&cfg.database()?);
            let ops = ConsentOps::new(pool.clone());
            let r = consent_type(&ops, cmd).await;
            pool.disconnect().await.ok();
            r
        }
        Cmd::Consent(cmd) => {
            let (cfg, from_file) = load_config(cli.config.as_deref(), false)?;
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
        Cmd::Serve { listen, read_only } => {
            // First, so a SIGHUP from here on stops gracefully (BOINC daemon).
            let stop = boinc_daemon::StopSignal::install(None)?;
            let (cfg, _) = load_config(cli.config.as_deref(), true)?;
            if let Some(r) = boinc_daemon::stop_file_present(cfg.stop_daemons_file().as_deref()) {
                r.log();
                return Ok(ExitCode::SUCCESS);
            }
            let stop = stop.with_stop_file(cfg.project_dir.join(STOP_DAEMONS_FILE));
            let listen: SocketAddr = match listen {
                Some(l) => l,
                None => cfg
                    .str("ops_listen")
                    .filter(|s| !s.is_empty())
                    .unwrap_or("127.0.0.1:8081")
                    .parse()
                    .context("<ops_listen> is not an address like 127.0.0.1:8081")?,
            };
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
            let ops = ConsentOps::new(pool).with_terms_file(cfg.terms_of_use_path());
            let opts = ServeOptions {
                read_only,
                credentials: Some(creds),
            };
            boinc_daemon::run_until_stopped(
                move |shutdown| boinc_ops::serve_until(listener, ops, opts, shutdown),
                stop,
                std::time::Duration::from_secs(30),
            )
            .await??;
            tracing::info!("stopped");
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

/// Text from users or clients, made safe for a terminal: control
/// characters (escape sequences, newlines) are shown escaped.
fn clean(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let esc: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            esc
        })
        .collect()
}

async fn consent_records(ops: &ConsentOps, cmd: ConsentCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ConsentCmd::Report { json } => {
            let r = ops.consent_report().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
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
                        clean(&t.shortname),
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
                println!("{}", serde_json::to_string_pretty(&h)?);
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
                        clean(&c.consent_type),
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
                        clean(&c.consent_type),
                        c.state.to_owned(),
                        c.consent_flag.to_string(),
                        c.consent_not_required.to_string(),
                        clean(&c.source),
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
                println!("{}", serde_json::to_string_pretty(&t)?);
            } else {
                // Exactly the stored text (as served), for diffing or sending.
                print!("{}", t.text);
                if !t.text.ends_with('\n') {
                    println!();
                }
            }
        }
        ConsentCmd::Terms { id: None, json } => {
            let list = ops.terms_list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
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
