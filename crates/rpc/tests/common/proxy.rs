//! A TCP proxy in front of MariaDB that a test can cut (connections
//! refused and existing ones broken), stall (accepts, never answers) and
//! restore: database outages without touching the shared server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Up,
    /// Accept, then say nothing.
    Stall,
    /// Accept and close at once (the client sees a broken connection).
    Down,
}

pub struct DbProxy {
    pub port: u16,
    /// Mode plus a generation: every change breaks existing connections.
    mode: watch::Sender<(Mode, u64)>,
    /// Connections accepted so far (this proxy's clients only, unlike the
    /// server's global counter that every parallel test moves).
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl DbProxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = watch::channel((Mode::Up, 0u64));
        let accepted = Arc::new(AtomicU64::new(0));
        let counter = accepted.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let mut rx = rx.clone();
                let (mode, generation) = *rx.borrow_and_update();
                tokio::spawn(async move {
                    let changed = async {
                        while rx.changed().await.is_ok() {
                            if rx.borrow().1 != generation {
                                return;
                            }
                        }
                    };
                    match mode {
                        Mode::Down => {}
                        Mode::Stall => {
                            let _keep = &client;
                            changed.await;
                        }
                        Mode::Up => {
                            let Ok(server) = TcpStream::connect(upstream).await else {
                                return;
                            };
                            let (mut a, mut b) = (client, server);
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
                                _ = changed => {}
                            }
                        }
                    }
                });
            }
        });
        Self {
            port,
            mode: tx,
            accepted,
            task,
        }
    }

    /// How many connections the proxy has accepted.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    fn set(&self, mode: Mode) {
        self.mode.send_modify(|(m, g)| {
            *m = mode;
            *g += 1;
        });
    }

    /// Break existing connections; new ones are closed at once.
    pub fn cut(&mut self) {
        self.set(Mode::Down);
    }

    /// Break existing connections; new ones are accepted and hang.
    pub async fn stall(&mut self) {
        self.set(Mode::Stall);
    }

    pub async fn restore(&mut self) {
        self.set(Mode::Up);
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The MariaDB server TestDb uses, as a socket address.
pub fn test_server_addr() -> SocketAddr {
    let server = std::env::var(boinc_db::testing::TEST_SERVER_ENV)
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".to_owned());
    let s = boinc_db::DbSettings::from_url(&format!("{}/x", server.trim_end_matches('/')))
        .expect("test server URL");
    let host = if s.host == "localhost" {
        "127.0.0.1"
    } else {
        s.host.as_str()
    };
    format!("{host}:{}", s.port)
        .parse()
        .expect("test server address")
}
