//! `boinc-rpc`: BOINC's web RPCs for a project's config.xml.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(
    version,
    about = "BOINC web RPC server (create_account, am_set_info, get_project_config, lookup_account, am_get_info)"
)]
struct Args {
    /// The project's config.xml.
    #[arg(long, default_value = "config/config.xml")]
    config: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Create the database and schema if missing (and upgrade it) first.
    #[arg(long)]
    init_db: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let config = boinc_db::ProjectConfig::load(&args.config)?;
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
    let state = boinc_rpc::AppState::new(config)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "boinc-rpc listening");
    boinc_rpc::serve(state, listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
