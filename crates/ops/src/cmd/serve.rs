//! `boinc-ops serve`: the ops web page as a BOINC daemon.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use boinc_db::config::STOP_DAEMONS_FILE;
use boinc_ops::web::Credentials;
use boinc_ops::{ConsentOps, ServeOptions};

use super::load_config;
use super::print::clean;

pub async fn run(
    config: Option<&Path>,
    listen: Option<SocketAddr>,
    read_only: bool,
) -> anyhow::Result<ExitCode> {
    // First, so a SIGHUP from here on stops gracefully (BOINC daemon).
    let stop = boinc_daemon::StopSignal::install(None)?;
    let (cfg, _) = load_config(config, true)?;
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
        clean(creds.user())
    );
    let ops = ConsentOps::new(pool).with_terms_file(cfg.terms_of_use_path());
    let opts = ServeOptions {
        read_only,
        credentials: Some(creds),
        trusted_proxies: boinc_db::forwarded::trusted_proxies(&cfg),
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
