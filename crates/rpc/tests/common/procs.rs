//! Real processes for multi-instance tests: boinc-rpc binaries and an
//! HAProxy in front of them (Debian's package), on loopback ports.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HAPROXY: &str = "/usr/sbin/haproxy";

pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        // SIGTERM: the graceful path.
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let t = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(t.elapsed() < Duration::from_secs(20), "did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spawn_logged(cmd: &mut Command, log: &Path) -> Child {
    let file = std::fs::File::create(log).unwrap();
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"))
}

pub fn start_rpc(config: &Path, port: u16, log: PathBuf) -> Proc {
    let child = spawn_logged(
        Command::new(env!("CARGO_BIN_EXE_boinc-rpc"))
            .arg("--config")
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "info"),
        &log,
    );
    Proc { child, log }
}

pub async fn wait_up(port: u16, what: &str) {
    let client = reqwest::Client::new();
    let t = Instant::now();
    loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/get_project_config.php"))
            .send()
            .await
        {
            if r.status() == 200 {
                return;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{what} did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn start_haproxy(dir: &Path, port: u16, backends: &[u16]) -> Proc {
    start_haproxy_with(dir, port, backends, "")
}

/// [`start_haproxy`] with more lines for the backend section (e.g. an
/// HTTP health check).
pub fn start_haproxy_with(dir: &Path, port: u16, backends: &[u16], backend_extra: &str) -> Proc {
    assert!(
        Path::new(HAPROXY).exists(),
        "{HAPROXY} missing: apt-get install haproxy (see .ci/setup)"
    );
    let mut cfg = format!(
        "global\n    maxconn 2000\n\
         defaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n\
         \x20   option forwardfor\n    option redispatch\n    retries 3\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    balance roundrobin\n{backend_extra}"
    );
    for (i, b) in backends.iter().enumerate() {
        cfg.push_str(&format!(
            "    server rpc{i} 127.0.0.1:{b} check inter 200ms fall 1 rise 1\n"
        ));
    }
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, cfg).unwrap();
    let log = dir.join("haproxy.log");
    let child = spawn_logged(Command::new(HAPROXY).arg("-db").arg("-f").arg(&path), &log);
    Proc { child, log }
}

impl Proc {
    /// Send `signal` (e.g. SIGHUP, what BOINC's bin/stop sends).
    pub fn signal(&self, signal: i32) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }
}
