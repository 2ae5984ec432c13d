//! The routes, the layers every request passes (security headers, then
//! the admin login), and serving them until shutdown.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use axum::http::{Method, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use super::auth::{self, Credentials, Gate};
use super::error::ServeError;
use super::pages::{account, consent_types};
use super::report::ReportCache;
use super::security::security_headers;
use super::state::AppState;
use crate::ops::{ConsentOps, DELETE_EXPLANATION};

const CSS: &str = include_str!("../../../../html_ops/static/ops.css");

#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Show the table and history only; refuse every POST.
    pub read_only: bool,
    /// Required: `serve` refuses to start with `None`.
    pub credentials: Option<Credentials>,
    /// Peers whose `X-Forwarded-For` names the client (config.xml's
    /// `<rpc_trusted_proxies>`, as boinc-rpc reads it): the login
    /// throttle counts that client, not the proxy.
    pub trusted_proxies: HashSet<IpAddr>,
}

/// The router; fails when no usable credentials are configured.
pub fn router(ops: ConsentOps, opts: ServeOptions) -> Result<Router, ServeError> {
    Ok(router_with_report(ops, opts)?.0)
}

/// The router and its background report (to stop it with the server).
fn router_with_report(
    ops: ConsentOps,
    opts: ServeOptions,
) -> Result<(Router, Arc<ReportCache>), ServeError> {
    let creds = opts.credentials.ok_or(ServeError::NoCredentials)?;
    let report = ReportCache::new(ops.clone());
    let mut csrf_key = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut csrf_key);
    let gate = Arc::new(Gate::new(creds, opts.trusted_proxies));
    let state = Arc::new(AppState {
        ops,
        read_only: opts.read_only,
        csrf_key,
        report: report.clone(),
    });
    let router = Router::new()
        .route("/", get(consent_types::page))
        .route("/add", post(consent_types::add))
        .route("/set", post(consent_types::set_flag))
        .route("/accounts", get(account::accounts))
        .route("/account", get(account::account))
        .route("/account-export", post(account::export))
        .route("/account-delete", post(account::delete))
        .route("/static/ops.css", get(css))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(gate, auth::basic_auth))
        .layer(middleware::from_fn(security_headers))
        .with_state(state);
    Ok((router, report))
}

/// Serve the ops page on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    ops: ConsentOps,
    opts: ServeOptions,
) -> Result<(), ServeError> {
    serve_until(listener, ops, opts, std::future::pending()).await
}

/// [`serve`] until `shutdown` resolves, then finish in-flight requests.
pub async fn serve_until(
    listener: TcpListener,
    ops: ConsentOps,
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let read_only = opts.read_only;
    let (app, report) = router_with_report(ops, opts)?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, read_only, "ops page listening");
    }
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    // No orphan work: a report in flight is aborted and its query killed
    // before the process may exit.
    report.stop().await;
    if !boinc_db::cancel::wait_for_kills(Duration::from_secs(5)).await {
        tracing::warn!("a cancelled report query may still be running in the database");
    }
    Ok(())
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

async fn not_found(method: Method) -> Response {
    if method == Method::POST {
        // e.g. someone trying /delete: there is no such operation.
        (
            StatusCode::NOT_FOUND,
            format!("no such operation. {DELETE_EXPLANATION}\n"),
        )
            .into_response()
    } else {
        (StatusCode::NOT_FOUND, "not found\n").into_response()
    }
}
