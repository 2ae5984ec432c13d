//! `boinc-ops`: schema tool, consent-type administration and the ops page.
//! This file only parses the command line and dispatches; each subcommand
//! group lives in its own module under `cmd/`.

mod cmd;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use boinc_ops::consent_records::RecordsError;
use boinc_ops::terminal::clean_text;
use boinc_ops::OpsError;
use clap::{Parser, Subcommand};

use cmd::consent::ConsentCmd;
use cmd::consent_type::CtCmd;
use cmd::db::DbCmd;

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
    /// Data-subject requests: find, export (access) or delete (erasure) an account.
    #[command(subcommand)]
    Account(cmd::account::AccountCmd),
    /// Purge deletion records and expired tokens (a daily BOINC <task>).
    #[command(subcommand)]
    Retention(cmd::retention::RetentionCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serve = matches!(cli.cmd, Cmd::Serve { .. });
    if !serve {
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
    let default_filter = if serve {
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
                eprintln!("error: {}", clean_text(&e.to_string()));
                ExitCode::from(cmd::EXIT_REFUSED)
            } else {
                eprintln!("error: {}", clean_text(&format!("{e:#}")));
                ExitCode::FAILURE
            }
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.config.as_deref();
    match cli.cmd {
        Cmd::Project(c) => boinc_ops::project::run(c).await,
        Cmd::HashPassword => cmd::password::hash_password(),
        Cmd::Db(c) => cmd::db::run(config, c).await,
        Cmd::ConsentType(c) => cmd::consent_type::run(config, c).await,
        Cmd::Consent(c) => cmd::consent::run(config, c).await,
        Cmd::Account(c) => cmd::account::run(config, c).await,
        Cmd::Retention(c) => cmd::retention::run(config, c).await,
        Cmd::Serve { listen, read_only } => cmd::serve::run(config, listen, read_only).await,
    }
}
