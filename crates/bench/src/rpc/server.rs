//! The release `boinc-rpc` under test, started beside this binary.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use boinc_db::testing::free_port;

use super::probe::Http;

/// A running `boinc-rpc`, killed when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `boinc-rpc --config CONFIG` on a free port and waits until it
/// answers get_project_config.
pub async fn start_server(config: &std::path::Path) -> anyhow::Result<Server> {
    let exe = std::env::current_exe()?
        .parent()
        .context("exe dir")?
        .join("boinc-rpc");
    if !exe.exists() {
        bail!(
            "{} missing: cargo build --release -p boinc-rpc",
            exe.display()
        );
    }
    let port = free_port();
    let child = Command::new(&exe)
        .arg("--config")
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting boinc-rpc")?;
    let server = Server { child, port };
    let t = Instant::now();
    loop {
        if let Ok(mut c) = Http::connect(port).await {
            if let Ok((200, _)) = c.get("/get_project_config.php").await {
                return Ok(server);
            }
        }
        if t.elapsed() > Duration::from_secs(20) {
            bail!("boinc-rpc did not come up");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
