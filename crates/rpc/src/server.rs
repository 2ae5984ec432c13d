//! Running the server: the accept loop with its background loops
//! (cached project facts, purges, health), and a background handle for
//! tests and other crates' e2e tests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::router::router;
use crate::state::AppState;
use crate::{commit, connections, hashing, limits, rpc};

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
