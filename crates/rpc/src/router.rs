//! The HTTP side of every RPC: path to [`Rpc`], the operations endpoints,
//! parameters and limits, the deadline and its `CommitGuard`, the handler
//! in a task of its own, metrics and the log line.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::error::RpcError;
use crate::params::Params;
use crate::request::{Rpc, RpcRequest};
use crate::state::AppState;
use crate::{commit, limits, metrics, reply, rpc};

pub fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

/// `/health` and `/metrics`, at the root only: the shipped web server
/// includes forward only the RPC paths, so these stay on the daemon's own
/// address.
fn operations(state: &AppState, path: &str, method: &Method) -> Option<Response> {
    let body = match path {
        "/health" => match state.health.status() {
            Ok(()) => (StatusCode::OK, "ok\n".to_owned()),
            Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
        },
        "/metrics" => match state.metrics.render() {
            Some(text) => (StatusCode::OK, text),
            None => (
                StatusCode::NOT_FOUND,
                "metrics are off (rpc_metrics 0 in config.xml)\n".to_owned(),
            ),
        },
        _ => return None,
    };
    if method != Method::GET && method != Method::HEAD {
        return Some((StatusCode::METHOD_NOT_ALLOWED, "GET only\n").into_response());
    }
    let mut r = body.into_response();
    let kind = if path == "/metrics" && state.metrics.enabled() {
        metrics::CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    r.headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(kind));
    Some(r)
}

async fn dispatch(State(state): State<Arc<AppState>>, req: axum::extract::Request) -> Response {
    if let Some(r) = operations(&state, req.uri().path(), req.method()) {
        return r;
    }
    let Some(rpc) = Rpc::from_path(req.uri().path(), &state.url_prefix) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let method = req.method().clone();
    if method != Method::GET && method != Method::POST && method != Method::HEAD {
        return RpcError::BadMethod.into_response();
    }
    if rpc == Rpc::GetProjectConfig {
        // The hot path: a pre-rendered reply, no parsing, no database.
        let started = state.metrics.enabled().then(Instant::now);
        tracing::debug!(rpc = rpc.name(), "ok");
        let mut r = (StatusCode::OK, rpc::get_project_config::bytes(&state)).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(reply::CONTENT_TYPE),
        );
        if let Some(started) = started {
            state
                .metrics
                .project_config(started.elapsed().as_secs_f64());
        }
        return r;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let forwarded: Vec<&[u8]> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    let ip = limits::client_ip(&state.limits, peer, &forwarded);
    let query = Params::parse(req.uri().query().unwrap_or("").as_bytes());
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/x-www-form-urlencoded"));
    let started = Instant::now();
    let body = if method == Method::POST && is_form {
        // A slow sender gets the same deadline as the RPC itself.
        let read = axum::body::to_bytes(req.into_body(), state.options.max_body_bytes);
        match tokio::time::timeout(state.options.request_timeout, read).await {
            Ok(Ok(b)) => Params::parse(&b),
            Ok(Err(_)) => {
                return RpcError::generic(format!(
                    "request body too large (at most {} bytes) or unreadable",
                    state.options.max_body_bytes
                ))
                .into_response()
            }
            Err(_) => {
                return RpcError::generic("request body not received in time").into_response()
            }
        }
    } else {
        Params::default()
    };
    if let Err(e) = state
        .limits
        .check_params(&query)
        .and_then(|_| state.limits.check_params(&body))
    {
        return e.into_response();
    }
    let guard = commit::CommitGuard::new();
    let request = RpcRequest {
        query,
        body,
        ip,
        guard: guard.clone(),
    };
    let remaining = state
        .options
        .request_timeout
        .saturating_sub(started.elapsed());
    // The handler runs to its end in a task of its own, even after the
    // deadline has answered for it: it is never cut off between two
    // statements (which could leave a pooled connection mid-protocol), and
    // at its COMMIT it learns whether it may still commit (`commit`).
    let mut handler = tokio::spawn({
        let state = state.clone();
        async move { run(rpc, &state, &request).await }
    });
    let joined = |r: Result<Result<reply::Reply, RpcError>, tokio::task::JoinError>| {
        r.unwrap_or_else(|e| {
            tracing::error!(rpc = rpc.name(), error = %e, "request handler failed");
            Err(RpcError::DbFailed)
        })
    };
    let result = tokio::select! {
        r = &mut handler => joined(r),
        _ = tokio::time::sleep(remaining) => loop {
            let released = guard.released();
            tokio::pin!(released);
            released.as_mut().enable();
            if guard.expire() {
                tracing::warn!(rpc = rpc.name(), "request timed out (database too slow?)");
                break Err(RpcError::DbUnavailable);
            }
            // Committing: its outcome is the reply, however long it takes
            // (`commit::lost_commit` bounds that).
            tokio::select! {
                r = &mut handler => break joined(r),
                _ = released => {}
            }
        },
    };
    let ms = started.elapsed().as_millis() as u64;
    state.metrics.request(
        rpc.name(),
        match &result {
            Ok(_) => "success".to_owned(),
            Err(RpcError::OutcomeUnknown) => "unknown".to_owned(),
            Err(e) => e.error_num().to_string(),
        },
        started.elapsed().as_secs_f64(),
    );
    if let Err(e) = &result {
        let limit = match e {
            RpcError::RateLimited(_) => Some("failed_logins"),
            RpcError::TooManyAccounts(_) => Some("account_creations"),
            RpcError::TooManyLookups(_) => Some("lookups"),
            _ => None,
        };
        if let Some(kind) = limit {
            state
                .metrics
                .limit_refusals
                .get_or_create(&metrics::KindLabel { kind })
                .inc();
        }
    }
    match result {
        Ok(xml) => {
            tracing::info!(rpc = rpc.name(), ms, "ok");
            xml.into_response()
        }
        Err(e) => {
            tracing::info!(rpc = rpc.name(), ms, error_num = e.error_num(), error = %e, "error reply");
            e.into_response()
        }
    }
}

async fn run(rpc: Rpc, state: &AppState, request: &RpcRequest) -> Result<reply::Reply, RpcError> {
    let xml = match rpc {
        Rpc::CreateAccount => rpc::create_account::handle(state, request).await,
        Rpc::AmSetInfo => rpc::am_set_info::handle(state, request).await,
        Rpc::AmGetInfo => rpc::am_get_info::handle(state, request).await,
        Rpc::LookupAccount => rpc::lookup_account::handle(state, request).await,
        Rpc::GetProjectConfig => rpc::get_project_config::handle(state, request).await,
        Rpc::ShowUser => rpc::show_user::handle(state, request).await,
        // Streamed: a team may have 100,000 members.
        Rpc::TeamEmailList => return rpc::team_email_list::handle(state, request).await,
        Rpc::TeamLookup => rpc::team_lookup::handle(state, request).await,
    };
    xml.map(Into::into)
}
