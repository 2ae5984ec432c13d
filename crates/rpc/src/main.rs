//! `boinc-rpc`: BOINC's web RPCs for a project's config.xml. Runs as a BOINC
//! `<daemon>`: finds config.xml as BOINC's programs do, stops gracefully on
//! SIGHUP (what `bin/stop` sends), SIGTERM or the `stop_daemons` file, and
//! leaves inherited file descriptors alone (`bin/start` holds its
//! one-copy lock through one).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use boinc_daemon::StopSignal;
use boinc_db::config::STOP_DAEMONS_FILE;
use clap::Parser;

/// Where to listen without `--listen` or `<rpc_listen>`.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// How long in-flight requests may take after a stop request (each RPC
/// has its own, shorter, deadline; this only bounds a stuck connection).
const STOP_GRACE: Duration = Duration::from_secs(30);

#[derive(Parser)]
#[command(
    version,
    about = "BOINC web RPC server (create_account, am_set_info, get_project_config, lookup_account, am_get_info)"
)]
struct Args {
    /// The project's config.xml [default: $BOINC_PROJECT_DIR/config.xml,
    /// else ./config.xml, else ../config.xml].
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on [default: <rpc_listen> in config.xml, else 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<String>,
    /// Create the database and schema if missing (and upgrade it) first.
    #[arg(long)]
    init_db: bool,
    /// Log verbosity as BOINC daemons take it: 1 errors, 2 normal (default),
    /// 3 debug, 4 everything. RUST_LOG overrides it.
    #[arg(short = 'd', long = "debug_level", value_name = "N")]
    debug_level: Option<u8>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    boinc_daemon::init_logging(match args.debug_level {
        Some(0 | 1) => "warn",
        Some(2) | None => "info",
        Some(3) => "debug",
        Some(_) => "trace",
    });
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    // First, so a SIGHUP from here on stops gracefully instead of killing.
    let stop = StopSignal::install(None).context("installing signal handlers")?;
    let config = boinc_db::ProjectConfig::discover(args.config.as_deref())?;
    if let Some(reason) = boinc_daemon::stop_file_present(config.stop_daemons_file().as_deref()) {
        reason.log();
        return Ok(());
    }
    let stop = stop.with_stop_file(config.project_dir.join(STOP_DAEMONS_FILE));
    let listen = args
        .listen
        .clone()
        .or_else(|| {
            config
                .str("rpc_listen")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    if args.init_db {
        let settings = config.database()?;
        let report = boinc_db::schema::init(&settings)
            .await
            .with_context(|| format!("initialising database {settings:?}"))?;
        tracing::info!(
            created = report.created_database,
            applied = report.applied.len(),
            "database ready"
        );
    }
    let project_dir = config.project_dir.clone();
    let state = boinc_rpc::AppState::new(config)?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(
        addr = %listener.local_addr()?,
        project = %project_dir.display(),
        "boinc-rpc listening"
    );
    boinc_daemon::run_until_stopped(
        move |shutdown| boinc_rpc::serve(state, listener, shutdown),
        stop,
        STOP_GRACE,
    )
    .await??;
    tracing::info!("stopped");
    Ok(())
}
