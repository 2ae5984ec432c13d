//! The accept loop and the rules every client connection lives by, so
//! slow, idle or numerous clients cannot take the server's descriptors:
//!
//! * header-read timeout: from accepting a connection, or from the first
//!   byte of a request on a kept-alive one, to the end of its header;
//! * idle timeout: between the end of a reply and the next request's
//!   first byte;
//! * a cap on open connections: when a client arrives at the cap (and
//!   whenever accept fails for want of descriptors) the connection idle the
//!   longest is closed to make room; when none is idle, that client waits
//!   for one to finish (holding the one descriptor above the cap; later
//!   clients queue in the kernel's backlog). Accept errors never spin.
//!
//! A connection is *busy* while the server works on a request (reading its
//! body included, bounded by `rpc_request_timeout`); busy connections are
//! never timed out or shed. HTTP/1.1 only.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

/// The connection rules (from `Options`).
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// Descriptors left for everything else when the cap comes from the
/// process's descriptor limit: the database pool (32), files, logs.
const RESERVED_FDS: u64 = 100;

/// The default cap: what the descriptor limit (`ulimit -n`) leaves after
/// `RESERVED_FDS`, between 16 and 16,384.
pub fn default_max_connections() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass; nothing else.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur
    } else {
        1024
    };
    usize::try_from(soft.saturating_sub(RESERVED_FDS).clamp(16, 16_384)).unwrap_or(16_384)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    /// Accepted, nothing received yet.
    Fresh = 0,
    /// Between requests on a kept-alive connection.
    Idle = 1,
    /// Part of a request header received.
    Head = 2,
    /// A request is being served.
    Busy = 3,
}

/// One connection as the accept loop and its own task see it.
struct Conn {
    phase: AtomicU8,
    /// Milliseconds since `Registry::epoch` when `phase` began.
    since: AtomicU64,
    /// Asked to close to make room.
    shed: AtomicBool,
    /// Wakes the connection's task (phase changed, shed requested).
    wake: Notify,
    epoch: Instant,
}

impl Conn {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Fresh,
            1 => Phase::Idle,
            2 => Phase::Head,
            _ => Phase::Busy,
        }
    }

    fn set(&self, p: Phase) {
        self.since.store(self.now(), Ordering::Release);
        self.phase.store(p as u8, Ordering::Release);
        self.wake.notify_one();
    }

    /// When the current phase's timeout runs out (None while busy).
    fn deadline(&self, rules: &Rules) -> Option<Instant> {
        let limit = match self.phase() {
            Phase::Fresh | Phase::Head => rules.header_read_timeout,
            Phase::Idle => rules.idle_timeout,
            Phase::Busy => return None,
        };
        let since = Duration::from_millis(self.since.load(Ordering::Acquire));
        Some(self.epoch + since + limit)
    }
}

/// Every open connection, for the cap and for shedding.
struct Registry {
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    /// A connection closed.
    closed: Notify,
    epoch: Instant,
}

impl Registry {
    fn len(&self) -> usize {
        self.conns.lock().map(|m| m.len()).unwrap_or(0)
    }

    fn add(&self) -> (u64, Arc<Conn>) {
        let conn = Arc::new(Conn {
            phase: AtomicU8::new(Phase::Fresh as u8),
            since: AtomicU64::new(0),
            shed: AtomicBool::new(false),
            wake: Notify::new(),
            epoch: self.epoch,
        });
        conn.since.store(conn.now(), Ordering::Release);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.conns.lock() {
            m.insert(id, conn.clone());
        }
        (id, conn)
    }

    fn remove(&self, id: u64) {
        if let Ok(mut m) = self.conns.lock() {
            m.remove(&id);
        }
        self.closed.notify_waiters();
    }

    /// Ask the connection idle the longest (not busy, not already asked)
    /// to close. False when every connection is busy.
    fn shed_oldest_idle(&self) -> bool {
        let Ok(m) = self.conns.lock() else {
            return false;
        };
        let oldest = m
            .values()
            .filter(|c| c.phase() != Phase::Busy && !c.shed.load(Ordering::Acquire))
            .min_by_key(|c| c.since.load(Ordering::Acquire));
        match oldest {
            Some(c) => {
                c.shed.store(true, Ordering::Release);
                c.wake.notify_one();
                true
            }
            None => false,
        }
    }

    /// Wait until a connection closes, at most `max`.
    async fn wait_closed(&self, max: Duration) {
        let _ = tokio::time::timeout(max, self.closed.notified()).await;
    }
}

/// Accept errors that concern one connection only (the client gave up).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Serve `app` on `listener` under `rules` until `shutdown` resolves; then
/// stop accepting, close idle connections, let requests in progress
/// finish, and return once every connection is closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    rules: Rules,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let registry = Arc::new(Registry {
        conns: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(0),
        closed: Notify::new(),
        epoch: Instant::now(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_warning: Option<Instant> = None;
    let mut suppressed = 0u64;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                // At the cap, make room only now that a client is actually
                // waiting: shedding ahead of time would close connections
                // whose first bytes are still on their way.
                while registry.len() >= rules.max_connections {
                    let closed = registry.closed.notified();
                    let shed = registry.shed_oldest_idle();
                    // Shed: wait for that connection to go. All busy: wait
                    // for any to finish (bounded, so shutdown is seen).
                    let max = if shed {
                        Duration::from_millis(200)
                    } else {
                        Duration::from_millis(100)
                    };
                    tokio::select! {
                        _ = closed => {}
                        _ = tokio::time::sleep(max) => {}
                        _ = &mut shutdown => {
                            drop(stream);
                            drop(listener);
                            return drain(registry, stop_tx).await;
                        }
                    }
                }
                let (id, conn) = registry.add();
                let registry = registry.clone();
                let app = app.clone();
                let stop = stop_rx.clone();
                tokio::spawn(async move {
                    connection(stream, peer, app, conn, rules, stop).await;
                    registry.remove(id);
                });
            }
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or memory: close the
                // connection idle the longest and retry once it is gone;
                // with nothing to shed, wait a little. Never spin.
                let closed = registry.closed.notified();
                let shed = registry.shed_oldest_idle();
                if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(error = %e, open = registry.len(), shed, suppressed,
                        "cannot accept a connection; closing the longest-idle one");
                    last_warning = Some(Instant::now());
                    suppressed = 0;
                } else {
                    suppressed += 1;
                }
                let max = if shed {
                    Duration::from_millis(200)
                } else {
                    Duration::from_millis(50)
                };
                tokio::select! {
                    _ = closed => {}
                    _ = tokio::time::sleep(max) => {}
                    _ = &mut shutdown => break,
                }
            }
        }
    }
    drop(listener);
    drain(registry, stop_tx).await
}

/// After shutdown: tell every connection, wait until all are closed.
async fn drain(registry: Arc<Registry>, stop: watch::Sender<bool>) -> io::Result<()> {
    let _ = stop.send(true);
    while registry.len() > 0 {
        registry.wait_closed(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// One connection's life: serve requests, and close it when a timeout
/// runs out, when it is asked to make room, or at shutdown, unless it is
/// busy (then it closes after the request in progress).
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    conn: Arc<Conn>,
    rules: Rules,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(Watched {
        inner: stream,
        conn: conn.clone(),
    });
    let service = Service {
        inner: TowerToHyperService::new(app),
        conn: conn.clone(),
        peer,
    };
    let http = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    let mut http = std::pin::pin!(http);
    let mut closing = false;
    loop {
        let deadline = conn.deadline(&rules);
        let wake = conn.wake.notified();
        tokio::select! {
            r = http.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            _ = wake => {}
            _ = sleep_until(deadline) => {}
            _ = stop.changed(), if !closing => {
                closing = true;
            }
        }
        let phase = conn.phase();
        if closing || conn.shed.load(Ordering::Acquire) {
            match phase {
                // Nothing in progress (or only a partial header): close now.
                Phase::Fresh | Phase::Idle => return,
                Phase::Head if !closing => return,
                // Finish the request in progress, then close.
                _ => http.as_mut().graceful_shutdown(),
            }
        }
        if conn.deadline(&rules).is_some_and(|d| d <= Instant::now()) {
            tracing::debug!(%peer, ?phase, "connection timed out");
            return;
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// The router as a hyper service that marks its connection busy while a
/// request is served and tells the handlers the peer's address.
#[derive(Clone)]
struct Service {
    inner: TowerToHyperService<Router>,
    conn: Arc<Conn>,
    peer: SocketAddr,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<axum::response::Response, Infallible>> + Send>>;

impl hyper::service::Service<hyper::Request<Incoming>> for Service {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        self.conn.set(Phase::Busy);
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let fut = self.inner.call(req);
        let conn = self.conn.clone();
        Box::pin(async move {
            let r = fut.await;
            conn.set(Phase::Idle);
            r
        })
    }
}

/// The socket, noting when a request's first bytes arrive.
struct Watched {
    inner: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before && matches!(self.conn.phase(), Phase::Fresh | Phase::Idle) {
            self.conn.set(Phase::Head);
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
