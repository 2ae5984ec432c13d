//! boinc-rpc as a BOINC daemon: config discovery and its error, plain logs
//! unless on a terminal without NO_COLOR, `stop_daemons` at start, SIGHUP
//! and SIGTERM as graceful stops with upstream's log line and exit 0.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use boinc_db::testing::{free_port, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_boinc-rpc");

fn cmd(cwd: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(cwd)
        .env_remove("BOINC_PROJECT_DIR")
        .env_remove("BOINC_DATABASE_URL")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR");
    c
}

/// Run `boinc-rpc` (no config anywhere) under a pseudo-terminal via
/// util-linux `script`; returns what the terminal showed.
fn on_terminal(cwd: &Path, no_color: bool) -> String {
    let mut c = Command::new("script");
    c.args(["-qec", BIN, "/dev/null"])
        .current_dir(cwd)
        .env_remove("BOINC_PROJECT_DIR")
        .env_remove("BOINC_DATABASE_URL")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    if no_color {
        c.env("NO_COLOR", "1");
    }
    let o = c
        .output()
        .expect("util-linux `script` (Debian package bsdutils)");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn missing_config_error_and_colour_rules() {
    let root = tempfile::tempdir().unwrap();
    let cwd = root.path().join("tmp_host");
    std::fs::create_dir_all(&cwd).unwrap();
    let o = cmd(&cwd).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    let here = cwd.canonicalize().unwrap();
    assert!(
        err.contains(&here.join("config.xml").display().to_string()),
        "{err}"
    );
    assert!(
        err.contains(&here.join("../config.xml").display().to_string()),
        "{err}"
    );
    // Not a terminal: plain, one line, with a timestamp.
    assert!(!err.contains('\x1b'), "{err:?}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.as_bytes()[..4].iter().all(u8::is_ascii_digit), "{err}");
    // $BOINC_PROJECT_DIR is the only place looked at when set.
    let o = cmd(&cwd)
        .env("BOINC_PROJECT_DIR", root.path().join("elsewhere"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("elsewhere/config.xml") && !err.contains("tmp_host"),
        "{err}"
    );
    // On a terminal: colour, unless NO_COLOR is set.
    let shown = on_terminal(&cwd, false);
    assert!(shown.contains("no config.xml found"), "{shown}");
    assert!(
        shown.contains('\x1b'),
        "terminal without NO_COLOR: {shown:?}"
    );
    let shown = on_terminal(&cwd, true);
    assert!(shown.contains("no config.xml found"), "{shown}");
    assert!(!shown.contains('\x1b'), "NO_COLOR: {shown:?}");
}

fn wait_up(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "boinc-rpc did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("boinc-rpc did not stop");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn stops_on_sighup_sigterm_and_stop_daemons() {
    let db = TestDb::new().await;
    let project = tempfile::tempdir().unwrap();
    let port = free_port();
    db.write_project(
        project.path(),
        &format!("<rpc_listen>127.0.0.1:{port}</rpc_listen>"),
        None,
    );
    let tmp = project.path().join("tmp_host");
    std::fs::create_dir_all(&tmp).unwrap();
    for (sig, name) in [(libc::SIGHUP, "SIGHUP"), (libc::SIGTERM, "SIGTERM")] {
        // ../config.xml from tmp_HOST; the address from <rpc_listen>.
        let mut child = cmd(&tmp)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_up(port);
        // SAFETY: signalling our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
        let s = wait_exit(&mut child);
        let o = child.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&o.stderr);
        assert_eq!(s.code(), Some(0), "{name}: {log}");
        assert!(log.contains(&format!("Quitting due to {name}")), "{log}");
        assert!(!log.contains('\x1b'), "{log:?}");
    }
    // stop_daemons appearing while it runs.
    let mut child = cmd(&tmp).stderr(Stdio::piped()).spawn().unwrap();
    wait_up(port);
    std::fs::write(project.path().join("stop_daemons"), "<stop/>").unwrap();
    let s = wait_exit(&mut child);
    assert_eq!(s.code(), Some(0));
    let o = child.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("Quitting because trigger file"));
    // ... and present at start: no server at all.
    let o = cmd(&tmp).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Quitting because trigger file"));
    // --listen wins over <rpc_listen>; BOINC's `-d N` is taken.
    std::fs::remove_file(project.path().join("stop_daemons")).unwrap();
    let other = free_port();
    let mut child = cmd(&tmp)
        .args(["-d", "3", "--listen", &format!("127.0.0.1:{other}")])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_up(other);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    assert_eq!(wait_exit(&mut child).code(), Some(0));
}
