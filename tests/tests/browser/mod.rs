//! Headless Chromium over chromedriver for the ops-page tests, and the ops
//! page they drive. Fails (never skips) when Chromium is missing.
#![allow(dead_code)]

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use boinc_db::testing::TestDb;
use boinc_ops::{ConsentOps, Credentials, ServeOptions};
use fantoccini::{Client, ClientBuilder};

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The ops page's admin in these tests.
pub const USER: &str = "admin";
pub const PASS: &str = "BrowserPass123";

/// The ops page on `db`, served in-process on 127.0.0.1 (any port) to
/// [`USER`]; its address and task (abort it at the end).
pub async fn serve_ops(
    db: &TestDb,
    read_only: bool,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<Result<(), boinc_ops::ServeError>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let creds = Credentials::new(USER, &bcrypt::hash(PASS, 4).unwrap()).unwrap();
    let server = tokio::spawn(boinc_ops::serve(
        listener,
        ConsentOps::new(db.pool()),
        ServeOptions {
            read_only,
            credentials: Some(creds),
            ..Default::default()
        },
    ));
    (addr, server)
}
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Kills the chromedriver we started (and only it) when dropped.
pub struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn start_chromedriver() -> (Driver, u16) {
    for bin in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(bin).exists(),
            "{bin} is missing: install Debian's chromium and chromium-driver (.ci/run does)"
        );
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (driver, port);
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not come up on {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A headless browser session; keep the driver and profile alive with it.
pub async fn browser() -> (Client, Driver, tempfile::TempDir) {
    let (driver, port) = start_chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!("literal object")
    };
    let c = ClientBuilder::native()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("webdriver session");
    (c, driver, profile)
}

/// End a browser flow: close the browser, and if the flow failed, panic
/// with its error and where the browser was (URL and page source).
pub async fn finish(c: Client, result: anyhow::Result<()>) {
    let debug = if result.is_err() {
        format!(
            "url={:?}\n{}",
            c.current_url().await.map(|u| u.to_string()),
            c.source().await.unwrap_or_default()
        )
    } else {
        String::new()
    };
    let _ = c.close().await;
    if let Err(e) = result {
        panic!("browser flow failed: {e}\n{debug}");
    }
}
