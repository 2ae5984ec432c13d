//! The real `boinc-rpc` binary on a project folder, its log (stderr and
//! stdout) in a file the test reads afterwards: for what only the process
//! shows (log levels, exit status).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use boinc_db::testing::free_port;

pub const BIN: &str = env!("CARGO_BIN_EXE_boinc-rpc");

pub struct RealServer {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl RealServer {
    /// Start it on `config` at a free port and wait until it answers.
    pub async fn start(config: &Path) -> Self {
        let port = free_port();
        let log = config.with_file_name(format!("boinc-rpc-{port}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(BIN)
            .arg("--config")
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "info")
            .env_remove("BOINC_DATABASE_URL")
            .env_remove("BOINC_PROJECT_DIR")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("start boinc-rpc");
        let mut s = Self { child, port, log };
        s.wait_up().await;
        s
    }

    async fn wait_up(&mut self) {
        let client = reqwest::Client::new();
        let t = Instant::now();
        loop {
            if let Ok(r) = client.get(self.url("get_project_config.php")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("boinc-rpc exited ({status}):\n{}", self.log());
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "boinc-rpc did not come up:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://127.0.0.1:{}/{path_and_query}", self.port)
    }

    /// Everything the process wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM (the graceful path), then its exit status.
    pub fn stop(&mut self) -> ExitStatus {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let t = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RealServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The log's lines at `level` ("ERROR", "WARN", ...).
pub fn lines_at<'a>(log: &'a str, level: &str) -> Vec<&'a str> {
    let tag = format!(" {level} ");
    log.lines().filter(|l| l.contains(&tag)).collect()
}
