//! What every binary shares to run where BOINC runs its programs: `bin/start`
//! starts daemons and tasks with their output appended to files under
//! `log_HOST/`, and `bin/stop` writes `PROJECT/stop_daemons` and sends
//! SIGHUP.
//!
//! * [`init_logging`]: one line per event with a timestamp; colour only when
//!   the log stream is a terminal and `NO_COLOR` is unset, so log files hold
//!   no escape bytes.
//! * [`StopSignal`]: resolves on SIGHUP, SIGTERM, SIGINT or when the
//!   `stop_daemons` file appears, and logs why, in upstream's words.
//! * [`run_until_stopped`]: a server future with graceful shutdown and a
//!   bound on how long in-flight work may take after the stop.
//!
//! Kept out of `boinc_db` (the data layer) so that crate needs no logging
//! back end; every binary depends on both.

use std::future::Future;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Whether to colour a stream: only a terminal, and never with `NO_COLOR`
/// set to anything non-empty (<https://no-color.org>).
pub fn use_color(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Log to stderr: `RUST_LOG` if set, else `default_filter`.
pub fn init_logging(default_filter: &str) {
    let ansi = use_color(std::io::stderr().is_terminal());
    init_logging_to(default_filter, std::io::stderr, ansi);
}

/// Log through `writer` (e.g. one that keeps a progress display intact);
/// `ansi` as [`use_color`] decided for the stream behind it.
pub fn init_logging_to<W>(default_filter: &str, writer: W, ansi: bool)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // A second init (tests calling main twice) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .try_init();
}

/// Why a daemon stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    Signal(&'static str),
    TriggerFile(PathBuf),
}

impl StopReason {
    /// Log the reason as BOINC's daemons word it.
    pub fn log(&self) {
        match self {
            StopReason::Signal(name) => tracing::info!("Quitting due to {name}"),
            StopReason::TriggerFile(p) => {
                tracing::info!("Quitting because trigger file '{}' is present", p.display())
            }
        }
    }
}

/// `stop_file` if it exists now (checked once at start, as upstream's
/// programs do: `bin/start` removes it before starting daemons).
pub fn stop_file_present(stop_file: Option<&Path>) -> Option<StopReason> {
    stop_file
        .filter(|p| p.exists())
        .map(|p| StopReason::TriggerFile(p.to_owned()))
}

/// How often the `stop_daemons` file is looked for (upstream daemons check
/// it once per loop, about every second or few).
pub const STOP_FILE_POLL: Duration = Duration::from_secs(1);

/// Stop requests for a daemon. The signal handlers are installed by
/// [`StopSignal::install`] itself, so create it before doing anything slow:
/// from then on SIGHUP no longer kills the process.
pub struct StopSignal {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    stop_file: Option<PathBuf>,
}

impl StopSignal {
    /// Needs a tokio runtime (with the signal driver) to be running.
    pub fn install(stop_file: Option<PathBuf>) -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            hup: signal(SignalKind::hangup())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            stop_file,
        })
    }

    /// Also stop when `stop_file` appears (the project's `stop_daemons`, once
    /// config.xml has been found).
    pub fn with_stop_file(mut self, stop_file: PathBuf) -> Self {
        self.stop_file = Some(stop_file);
        self
    }

    /// Resolves with the first stop request, after logging it.
    pub async fn wait(mut self) -> StopReason {
        let file = self.stop_file.clone();
        let watch_file = async move {
            let Some(file) = file else {
                return std::future::pending().await;
            };
            let mut tick = tokio::time::interval(STOP_FILE_POLL);
            loop {
                tick.tick().await;
                if file.exists() {
                    return StopReason::TriggerFile(file);
                }
            }
        };
        let reason = tokio::select! {
            _ = self.hup.recv() => StopReason::Signal("SIGHUP"),
            _ = self.term.recv() => StopReason::Signal("SIGTERM"),
            _ = self.int.recv() => StopReason::Signal("SIGINT"),
            r = watch_file => r,
        };
        reason.log();
        reason
    }
}

/// The server did not finish its in-flight work within the grace period.
#[derive(Debug)]
pub struct GraceExpired;

impl std::fmt::Display for GraceExpired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("in-flight requests did not finish in time after the stop request")
    }
}

impl std::error::Error for GraceExpired {}

/// Run `serve(shutdown)` until it ends by itself or `stop` resolves; after a
/// stop, `serve` gets `grace` to finish in-flight work (it sees `shutdown`
/// resolve and should stop accepting). Returns what `serve` returned, or
/// [`GraceExpired`].
pub async fn run_until_stopped<S, F, T>(
    serve: S,
    stop: StopSignal,
    grace: Duration,
) -> Result<T, GraceExpired>
where
    S: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> F,
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(serve(Box::pin(async move {
        let _ = rx.await;
    })));
    tokio::select! {
        r = &mut server => return Ok(r.expect("server task panicked")),
        _ = stop.wait() => {}
    }
    let _ = tx.send(());
    match tokio::time::timeout(grace, &mut server).await {
        Ok(r) => Ok(r.expect("server task panicked")),
        Err(_) => {
            server.abort();
            Err(GraceExpired)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_means_plain() {
        // Not a terminal: plain whatever the environment says.
        assert!(!use_color(false));
    }

    #[tokio::test]
    async fn stop_file_stops_and_grace_is_bounded() {
        let dir = std::env::temp_dir().join(format!("boinc-daemon-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("stop_daemons");
        let _ = std::fs::remove_file(&file);
        assert_eq!(stop_file_present(Some(&file)), None);
        let stop = StopSignal::install(Some(file.clone())).unwrap();
        let f2 = file.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            std::fs::write(f2, "<stop/>").unwrap();
        });
        // A server that ignores its shutdown future: the grace bound ends it.
        let r = run_until_stopped(
            |_shutdown| async { std::future::pending::<()>().await },
            stop,
            Duration::from_millis(300),
        )
        .await;
        assert!(r.is_err());
        assert_eq!(
            stop_file_present(Some(&file)),
            Some(StopReason::TriggerFile(file.clone()))
        );
        // A server that honours it: its own result comes back.
        let stop = StopSignal::install(Some(file.clone())).unwrap();
        let r = run_until_stopped(
            |shutdown| async move {
                shutdown.await;
                7
            },
            stop,
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(r.unwrap(), 7);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
