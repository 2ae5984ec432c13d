//! Graceful shutdown of the real binary: SIGTERM during a burst of
//! account creations lets every in-flight request finish, leaves no user
//! without its consent row, and the process exits cleanly.

mod common;
mod robust;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use boinc_db::testing::{free_port, TestDb};
use common::{passwd_hash, tag, TERMS};
use mysql_async::prelude::*;

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let config = db.write_project(
        dir.path(),
        // The burst's bcrypt work on a busy 2-core machine can take longer
        // than the default 10 s deadline; this test is about the stop.
        "<rpc_create_account_per_ip_per_hour>0</rpc_create_account_per_ip_per_hour>\
         <rpc_request_timeout>120</rpc_request_timeout>",
        Some(TERMS),
    );
    let mut c = db.conn().await;
    c.query_drop("UPDATE consent_type SET enabled = 1 WHERE shortname = 'ENROLL'")
        .await
        .unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_boinc-rpc"))
        .arg("--config")
        .arg(&config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start boinc-rpc");
    let base = format!("http://127.0.0.1:{port}/");
    let client = reqwest::Client::new();
    let start = Instant::now();
    loop {
        if let Ok(r) = client
            .get(format!("{base}get_project_config.php"))
            .send()
            .await
        {
            if r.status() == 200 {
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "boinc-rpc did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A burst that takes a while (bcrypt, a bounded hashing pool).
    const N: usize = 24;
    let mut tasks = Vec::new();
    for i in 0..N {
        let client = client.clone();
        let url = format!("{base}create_account.php");
        tasks.push(tokio::spawn(async move {
            let email = format!("term{i}@example.com");
            let hash = passwd_hash("pw", &email);
            let r = client
                .post(url)
                .form(&[
                    ("email_addr", email.as_str()),
                    ("passwd_hash", hash.as_str()),
                    ("user_name", &format!("Term {i}")),
                    ("consent_flag", "1"),
                    ("source", "shutdown-test"),
                ])
                .send()
                .await
                .expect("in-flight request must complete");
            assert_eq!(r.status(), 200);
            r.text().await.expect("complete body")
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let signalled = Instant::now();

    let mut ok = 0;
    for t in tasks {
        let body = t.await.expect("request task");
        robust::well_formed(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert!(tag(&body, "authenticator").is_some(), "{body}");
        ok += 1;
    }
    assert_eq!(ok, N);
    // The process exits by itself, successfully, once the burst is done.
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if signalled.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("boinc-rpc did not exit within 30 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    // No longer listening.
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err());

    let users: i64 = c
        .query_first("SELECT COUNT(*) FROM user WHERE email_addr LIKE 'term%'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(users, N as i64);
    assert_eq!(robust::users_without_consent(&mut c, "term%").await, 0);
    c.disconnect().await.ok();
}
