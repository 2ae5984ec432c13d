//! A legacy latin1 database converted to utf8mb4 while boinc-rpc runs
//! (`boinc-ops db convert-utf8mb4`): its pooled sessions still talk
//! latin1, and it says so in its log, asking for a restart.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use boinc_db::testing::{free_port, TestDb};

#[tokio::test]
async fn boinc_rpc_asks_for_a_restart_after_the_conversion() {
    let db = TestDb::latin1().await;
    let dir = tempfile::tempdir().unwrap();
    let config = db.write_project(dir.path(), "", None);
    let log = dir.path().join("rpc.log");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_boinc-rpc"))
        .arg("--config")
        .arg(&config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://127.0.0.1:{port}/get_project_config.php");
    let start = Instant::now();
    while client.get(&url).send().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "boinc-rpc did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A refresh has learnt the session's latin1 by now; nothing to say yet.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let said = |log: &std::path::Path| {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains("RESTART boinc-rpc")
    };
    assert!(!said(&log));

    let mut c = db.conn().await;
    let mut quiet = |_: &str| {};
    let r = boinc_db::schema::utf8mb4::convert(&mut c, false, &mut quiet)
        .await
        .unwrap();
    assert!(!r.converted.is_empty());
    c.disconnect().await.ok();
    let start = Instant::now();
    while !said(&log) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no restart request in the log: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}
