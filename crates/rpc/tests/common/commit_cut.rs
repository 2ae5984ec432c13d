//! A TCP proxy in front of MariaDB that reads the client's MySQL packets
//! and, when armed, breaks the connection at the next `COMMIT`: after
//! passing it on (the server commits, the client never hears so) or
//! instead of passing it on (the server rolls back). A COMMIT whose answer
//! is lost, on demand.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// The server gets the COMMIT, then the connection breaks.
    AfterForwarding,
    /// The connection breaks; the server never gets the COMMIT.
    BeforeForwarding,
}

pub struct CommitCut {
    pub port: u16,
    armed: Arc<Mutex<Option<Cut>>>,
    fired: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// COM_QUERY.
const COM_QUERY: u8 = 0x03;

impl CommitCut {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let armed: Arc<Mutex<Option<Cut>>> = Arc::default();
        let fired: Arc<AtomicUsize> = Arc::default();
        let task = tokio::spawn({
            let (armed, fired) = (armed.clone(), fired.clone());
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    let (armed, fired) = (armed.clone(), fired.clone());
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(upstream).await else {
                            return;
                        };
                        relay(client, server, armed, fired).await;
                    });
                }
            }
        });
        Self {
            port,
            armed,
            fired,
            task,
        }
    }

    /// Cut the next COMMIT (on whichever connection sends one).
    pub fn arm(&self, cut: Cut) {
        *self.armed.lock().unwrap() = Some(cut);
    }

    /// COMMITs cut so far.
    pub fn fired(&self) -> usize {
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for CommitCut {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    armed: Arc<Mutex<Option<Cut>>>,
    fired: Arc<AtomicUsize>,
) {
    let (mut client_r, mut client_w) = client.into_split();
    let (mut server_r, mut server_w) = server.into_split();
    // Once muted, what the server sends is swallowed: the client waits for
    // each answer before its next command, so after a COMMIT is passed on
    // the only thing coming back is the COMMIT's answer.
    let muted = Arc::new(AtomicBool::new(false));
    let swallowed = Arc::new(Notify::new());
    let back = tokio::spawn({
        let (muted, swallowed) = (muted.clone(), swallowed.clone());
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match server_r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if muted.load(Ordering::SeqCst) {
                    swallowed.notify_one();
                    continue;
                }
                if client_w.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = client_w.shutdown().await;
        }
    });
    loop {
        let mut header = [0u8; 4];
        if client_r.read_exact(&mut header).await.is_err() {
            break;
        }
        let len =
            usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
        let mut payload = vec![0u8; len];
        if client_r.read_exact(&mut payload).await.is_err() {
            break;
        }
        let is_commit = payload.first() == Some(&COM_QUERY)
            && payload[1..].trim_ascii().eq_ignore_ascii_case(b"COMMIT");
        let cut = if is_commit {
            armed.lock().unwrap().take()
        } else {
            None
        };
        match cut {
            None => {
                if server_w.write_all(&header).await.is_err()
                    || server_w.write_all(&payload).await.is_err()
                {
                    break;
                }
            }
            Some(Cut::BeforeForwarding) => {
                muted.store(true, Ordering::SeqCst);
                fired.fetch_add(1, Ordering::SeqCst);
                break;
            }
            Some(Cut::AfterForwarding) => {
                muted.store(true, Ordering::SeqCst);
                let _ = server_w.write_all(&header).await;
                let _ = server_w.write_all(&payload).await;
                let _ = server_w.flush().await;
                // The server has committed once it answers; the client
                // never hears it.
                let _ =
                    tokio::time::timeout(std::time::Duration::from_secs(10), swallowed.notified())
                        .await;
                fired.fetch_add(1, Ordering::SeqCst);
                break;
            }
        }
    }
    // Both sides see the connection end.
    back.abort();
    drop(server_w);
}
