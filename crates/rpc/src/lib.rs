//! BOINC's web RPCs (create_account, am_set_info, am_get_info,
//! lookup_account, get_project_config) and public XML lookups (show_user,
//! team_email_list, team_lookup) on a BOINC database.
//!
//! `serve` runs the server on a listener until a shutdown future resolves;
//! `spawn` starts one in the background (tests, other crates' e2e tests).
//! Each RPC lives in its own file under `rpc/` (parse -> apply -> render);
//! every reply body is built in `reply`.

pub mod commit;
pub mod connections;
pub mod error;
pub mod flip_group;
pub mod hashing;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod params;
pub mod reply;
mod rpc;
pub mod settings;
pub mod state;
pub mod validate;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::net::TcpListener;

pub use error::RpcError;
pub use params::Params;
pub use settings::Options;
pub use state::AppState;

/// The five RPCs and the three public lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    CreateAccount,
    AmSetInfo,
    AmGetInfo,
    LookupAccount,
    GetProjectConfig,
    ShowUser,
    TeamEmailList,
    TeamLookup,
}

impl Rpc {
    fn from_name(name: &str) -> Option<Self> {
        let name = name.strip_suffix(".php").unwrap_or(name);
        Some(match name {
            "create_account" => Rpc::CreateAccount,
            "am_set_info" => Rpc::AmSetInfo,
            "am_get_info" => Rpc::AmGetInfo,
            "lookup_account" => Rpc::LookupAccount,
            "get_project_config" => Rpc::GetProjectConfig,
            "show_user" => Rpc::ShowUser,
            "team_email_list" => Rpc::TeamEmailList,
            "team_lookup" => Rpc::TeamLookup,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Rpc::CreateAccount => "create_account",
            Rpc::AmSetInfo => "am_set_info",
            Rpc::AmGetInfo => "am_get_info",
            Rpc::LookupAccount => "lookup_account",
            Rpc::GetProjectConfig => "get_project_config",
            Rpc::ShowUser => "show_user",
            Rpc::TeamEmailList => "team_email_list",
            Rpc::TeamLookup => "team_lookup",
        }
    }

    /// `/NAME[.php]` at the root or below master_url's path.
    fn from_path(path: &str, prefix: &str) -> Option<Self> {
        [prefix, "/"]
            .iter()
            .filter_map(|p| path.strip_prefix(p))
            .find(|rest| !rest.contains('/'))
            .and_then(Self::from_name)
    }
}

/// One decoded request. Most RPCs read `params()` (query and form body
/// together); am_set_info picks one of the two.
#[derive(Debug, Default)]
pub struct RpcRequest {
    pub query: Params,
    pub body: Params,
    pub ip: Option<IpAddr>,
    /// The request's deadline against its COMMIT (`commit`).
    pub guard: Arc<commit::CommitGuard>,
}

impl RpcRequest {
    pub fn params(&self) -> Params {
        Params::merged(self.query.clone(), self.body.clone())
    }
}

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

/// Serve on `listener` until `shutdown` resolves (see `connections` for
/// the connection rules). Keeps the cached project facts fresh and purges
/// expired limit counters in the background meanwhile.
pub async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    hashing::init_hash_pool(state.options.hash_threads);
    rpc::get_project_config::refresh(&state).await;
    // Two loops, so a hanging database never delays file updates.
    let terms = tokio::spawn(refresh_loop(state.clone(), false));
    let db = tokio::spawn(refresh_loop(state.clone(), true));
    let purge = tokio::spawn(purge_loop(state.clone()));
    let health = tokio::spawn({
        let state = state.clone();
        async move { state.health.watch(state.db_opts().clone()).await }
    });
    let rules = connections::Rules {
        header_read_timeout: state.options.header_read_timeout,
        idle_timeout: state.options.idle_timeout,
        max_connections: state
            .options
            .max_connections
            .unwrap_or_else(connections::default_max_connections),
    };
    tracing::debug!(?rules, "connection rules");
    let result = connections::serve(listener, router(state), rules, shutdown).await;
    terms.abort();
    db.abort();
    purge.abort();
    health.abort();
    result
}

/// Expired per-client counters and old COMMIT tokens go from the shared
/// tables once a minute.
async fn purge_loop(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        limits::purge_expired(&state).await;
        commit::purge_markers(&state.pool).await;
    }
}

async fn refresh_loop(state: Arc<AppState>, db: bool) {
    let mut tick = tokio::time::interval(state.options.refresh_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if db {
            rpc::get_project_config::refresh_db(&state).await;
        } else {
            rpc::get_project_config::refresh_files(&state);
        }
    }
}

/// A server running in the background (see `spawn`). Dropping it stops it.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl RunningServer {
    /// `http://ADDR/`: the base the RPC paths go under.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Bind `addr` (e.g. "127.0.0.1:0") and serve in a background task.
pub async fn spawn(state: Arc<AppState>, addr: &str) -> std::io::Result<RunningServer> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(state.clone(), listener, async move {
        let _ = rx.await;
    }));
    Ok(RunningServer {
        addr: local,
        state,
        stop: Some(tx),
        task: Some(task),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            Rpc::from_path("/create_account.php", "/"),
            Some(Rpc::CreateAccount)
        );
        assert_eq!(Rpc::from_path("/am_get_info", "/"), Some(Rpc::AmGetInfo));
        assert_eq!(
            Rpc::from_path("/proj/lookup_account.php", "/proj/"),
            Some(Rpc::LookupAccount)
        );
        assert_eq!(
            Rpc::from_path("/get_project_config.php", "/proj/"),
            Some(Rpc::GetProjectConfig)
        );
        assert_eq!(Rpc::from_path("/x/create_account.php", "/"), None);
        assert_eq!(Rpc::from_path("/nope.php", "/"), None);
        assert_eq!(Rpc::from_path("/", "/"), None);
    }
}
