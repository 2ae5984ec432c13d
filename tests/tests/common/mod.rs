//! Shared by the deployment tests: the workspace's own binaries, a
//! throwaway BOINC client driven through boinccmd, and a stand-in for
//! BOINC's `bin/start` / `bin/stop` (which we can't ship).
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>/`, where cargo puts boinc-rpc, boinc-ops and db_dump.
/// They are built by `cargo nextest run --workspace` (the README's test
/// command); a narrower run (`-p e2e`) uses whatever was built last.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_owned();
    for b in ["boinc-rpc", "boinc-ops", "db_dump"] {
        assert!(
            dir.join(b).is_file(),
            "{} missing: run the tests with `cargo nextest run --workspace`, which builds it",
            dir.join(b).display()
        );
    }
    dir
}

/// The host name as BOINC's start script uses it: cut at the first dot.
pub fn short_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for its length; gethostname NUL-terminates within it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(rc, 0, "gethostname");
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    name.split('.').next().unwrap_or("localhost").to_owned()
}

/// What clients send as the password: md5(password . lower(email)).
pub fn passwd_hash(pw: &str, email: &str) -> String {
    boinc_db::password::md5_hex(&format!("{pw}{}", email.to_lowercase()))
}

pub fn no_proxy_env(cmd: &mut Command) {
    for v in [
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("no_proxy", "127.0.0.1,localhost");
}

// ---------------------------------------------------------------------
// A throwaway BOINC client (Debian's boinc-client) and boinccmd.

pub const GUI_PASSWD: &str = "e2e-gui-secret";

pub struct Client {
    child: Child,
    pub port: u16,
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_client(dir: &Path) -> Client {
    std::fs::write(dir.join("gui_rpc_auth.cfg"), GUI_PASSWD).unwrap();
    let port = boinc_db::testing::free_port();
    let log = std::fs::File::create(dir.join("client.log")).unwrap();
    let mut cmd = Command::new("boinc");
    cmd.arg("--dir")
        .arg(dir)
        .args(["--gui_rpc_port", &port.to_string()])
        .args(["--no_gpus", "--no_info_fetch", "--allow_multiple_clients"])
        .args(["--skip_cpu_benchmarks", "--suppress_net_info"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    no_proxy_env(&mut cmd);
    let child = cmd
        .spawn()
        .expect("the BOINC client must be installed (Debian package boinc-client)");
    let client = Client { child, port };
    let start = Instant::now();
    loop {
        if boinccmd(&client, &["--get_cc_status"]).0 {
            return client;
        }
        let log = std::fs::read_to_string(dir.join("client.log")).unwrap_or_default();
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "BOINC client did not answer GUI RPCs: {log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Run boinccmd against `client` (blocking; at most 60 s).
pub fn boinccmd(client: &Client, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("boinccmd");
    cmd.args(["--host", &format!("127.0.0.1:{}", client.port)])
        .args(["--passwd", GUI_PASSWD])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    no_proxy_env(&mut cmd);
    let mut child = cmd
        .spawn()
        .expect("boinccmd must be installed (Debian package boinc-client)");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("boinccmd {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub fn account_key(out: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.strip_prefix("account key: "))
        .map(|s| s.trim().to_owned())
}

// ---------------------------------------------------------------------
// What BOINC's bin/start and bin/stop do, for one project folder.

pub struct Project {
    pub dir: PathBuf,
    pub host: String,
}

/// A daemon started as bin/start starts one.
pub struct Daemon {
    pub program: String,
    pub child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Project {
    pub fn new(dir: &Path, host: &str) -> Self {
        Self {
            dir: dir.to_owned(),
            host: host.to_owned(),
        }
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.dir.join(format!("tmp_{}", self.host))
    }
    pub fn log_dir(&self) -> PathBuf {
        self.dir.join(format!("log_{}", self.host))
    }
    pub fn pid_dir(&self) -> PathBuf {
        self.dir.join(format!("pid_{}", self.host))
    }

    fn layout(&self) -> boinc_ops::project::config_edit::Layout {
        let text = std::fs::read_to_string(self.dir.join("config.xml")).unwrap();
        boinc_ops::project::config_edit::scan(&text).unwrap()
    }

    /// Daemon commands of config.xml that are enabled and exist in bin/
    /// (a stand-in project has no feeder, transitioner, ...).
    pub fn daemon_cmds(&self) -> Vec<String> {
        self.layout()
            .daemons
            .items
            .iter()
            .filter(|d| !d.is_disabled() && self.dir.join("bin").join(d.program()).is_file())
            .map(|d| d.cmd.clone())
            .collect()
    }

    /// The command as start runs it: cwd tmp_HOST, PROJECT/bin first on
    /// PATH, no BOINC_PROJECT_DIR (so ../config.xml is how it finds the
    /// project), stdin from /dev/null, in a session of its own.
    fn command(&self, cmd: &str, out: &Path) -> Command {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let bin = self.dir.join("bin");
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let program = bin.join(words[0]);
        let mut c = Command::new(program);
        c.args(&words[1..])
            .current_dir(self.tmp_dir())
            .env("PATH", path)
            .env_remove("BOINC_PROJECT_DIR")
            .env_remove("BOINC_DATABASE_URL")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        no_proxy_env(&mut c);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .unwrap();
        c.stdout(log.try_clone().unwrap()).stderr(log);
        c
    }

    /// Start one daemon as start does: takes `pid_HOST/PROG.lock` in the
    /// new process (held for as long as that process keeps the descriptor
    /// open), writes `pid_HOST/PROG.pid`, appends output to
    /// `log_HOST/PROG.log`. None when the lock is held: a copy runs.
    pub fn start_daemon(&self, cmd: &str) -> Option<Daemon> {
        let program = boinc_ops::project::config_edit::program(cmd).to_owned();
        let lock = self.pid_dir().join(format!("{program}.lock"));
        let lock_c = std::ffi::CString::new(lock.to_str().unwrap()).unwrap();
        let mut c = self.command(cmd, &self.log_dir().join(format!("{program}.log")));
        // SAFETY: only async-signal-safe calls (setsid, open, lockf) in the child.
        unsafe {
            c.pre_exec(move || {
                libc::setsid();
                let fd = libc::open(lock_c.as_ptr(), libc::O_WRONLY | libc::O_CREAT, 0o664);
                if fd < 0 || libc::lockf(fd, libc::F_TLOCK, 0) != 0 {
                    return Err(std::io::Error::from_raw_os_error(libc::EAGAIN));
                }
                // Not close-on-exec: the daemon inherits it, as from start.
                Ok(())
            });
        }
        match c.spawn() {
            Ok(child) => {
                std::fs::write(
                    self.pid_dir().join(format!("{program}.pid")),
                    format!("{}\n", child.id()),
                )
                .unwrap();
                Some(Daemon { program, child })
            }
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => None,
            Err(e) => panic!("cannot start {cmd}: {e}"),
        }
    }

    /// Whether some process holds `pid_HOST/PROG.lock` (start's test).
    pub fn lock_held(&self, program: &str) -> bool {
        let lock = self.pid_dir().join(format!("{program}.lock"));
        let f = OpenOptions::new().write(true).open(lock).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: a valid descriptor; F_TEST only reads lock state.
        unsafe { libc::lockf(f.as_raw_fd(), libc::F_TEST, 0) != 0 }
    }

    /// bin/start --enable: remove stop_daemons, start every daemon.
    pub fn start(&self) -> Vec<Daemon> {
        let _ = std::fs::remove_file(self.dir.join("stop_daemons"));
        self.daemon_cmds()
            .iter()
            .map(|c| self.start_daemon(c).expect("no copy running yet"))
            .collect()
    }

    /// Run a task (the enabled config.xml task whose program is `program`)
    /// as start does: cwd tmp_HOST, output to `log_HOST/<output>`. Waits.
    pub fn run_task(&self, program: &str) -> std::process::ExitStatus {
        let layout = self.layout();
        let task = layout
            .tasks
            .items
            .iter()
            .find(|t| t.program() == program)
            .unwrap_or_else(|| panic!("no {program} task in config.xml"));
        assert!(!task.is_disabled(), "task {} is disabled", task.cmd);
        let out = task
            .output
            .clone()
            .unwrap_or_else(|| format!("{program}.out"));
        let mut child = self
            .command(&task.cmd, &self.log_dir().join(out))
            .spawn()
            .unwrap();
        let start = Instant::now();
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            if start.elapsed() > Duration::from_secs(120) {
                let _ = child.kill();
                panic!("task {} did not finish", task.cmd);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// bin/stop: write stop_daemons, SIGHUP every pid in pid_HOST/*.pid
    /// (removing the pid files). Returns the pids signalled.
    pub fn stop(&self) -> Vec<i32> {
        std::fs::write(self.dir.join("stop_daemons"), "<stop/>\n").unwrap();
        let mut pids = Vec::new();
        for e in std::fs::read_dir(self.pid_dir()).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "pid") {
                let pid: i32 = std::fs::read_to_string(&p).unwrap().trim().parse().unwrap();
                std::fs::remove_file(&p).unwrap();
                // SAFETY: signalling a process this test started.
                unsafe { libc::kill(pid, libc::SIGHUP) };
                pids.push(pid);
            }
        }
        pids
    }

    /// Every byte of every file in log_HOST.
    pub fn logs(&self) -> Vec<(String, Vec<u8>)> {
        std::fs::read_dir(self.log_dir())
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect()
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_dir().join(name)).unwrap_or_default()
    }
}

/// Wait for a child to exit (at most `limit`).
pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("process {} did not exit within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Poll `url` until it answers 200 (at most 30 s).
pub async fn wait_http(url: &str) -> String {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let start = Instant::now();
    loop {
        if let Ok(r) = client.get(url).send().await {
            if r.status() == 200 {
                return r.text().await.unwrap();
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{url} did not answer"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
