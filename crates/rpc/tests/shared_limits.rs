//! Several servers, one database: two real boinc-rpc processes behind a
//! real HAProxy (Debian's package, `option forwardfor`, round robin) on
//! loopback ports. A failed-login burst and a sign-up burst through it stay
//! within the configured limits in total, and an instance restarted in
//! the middle of the window keeps the counts (they live in the database).
//!
//! Clients are told apart by their loopback source address (127.0.0.x);
//! HAProxy appends the one it saw as its own `X-Forwarded-For` line, after
//! the line each client forges (an exempt address).

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use boinc_db::testing::{free_port, TestDb};
use common::procs::{start_haproxy, start_rpc, wait_up};
use common::{error_num, passwd_hash};
use mysql_async::prelude::*;

const EXEMPT: &str = "198.51.100.7";

/// A client at loopback address `ip` (what HAProxy reports as the client).
fn client_at(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// `n` concurrent GETs through the balancer from `ip`, each with a forged
/// `X-Forwarded-For` naming an exempt address; the reply bodies.
async fn burst(lb: u16, ip: &str, rpc: &str, params: Vec<Vec<(String, String)>>) -> Vec<String> {
    let barrier = Arc::new(tokio::sync::Barrier::new(params.len()));
    let tasks: Vec<_> = params
        .into_iter()
        .map(|p| {
            let client = client_at(ip);
            let url = format!("http://127.0.0.1:{lb}/{rpc}");
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let r = client
                    .get(url)
                    .header("X-Forwarded-For", EXEMPT)
                    .query(&p)
                    .send()
                    .await
                    .expect("request through HAProxy");
                assert_eq!(r.status(), 200);
                r.text().await.unwrap()
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn limited(body: &str) -> bool {
    error_num(body) == Some(-1) && body.contains("too many")
}

fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Requests an instance logged for this RPC (its log line names the RPC
/// in quotes, whatever the colouring or format).
fn served(log: &str, rpc: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(&format!("\"{rpc}\"")))
        .count()
}

fn counters(rows: &[(u8, Vec<u8>, i64)], kind: u8, ip: &str) -> Option<i64> {
    let ip: std::net::Ipv4Addr = ip.parse().unwrap();
    rows.iter()
        .find(|(k, c, _)| *k == kind && c.as_slice() == ip.octets())
        .map(|r| r.2)
}

#[tokio::test]
async fn limits_hold_across_two_instances_behind_haproxy_and_a_restart() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let config = db.write_project(
        dir.path(),
        &format!(
            "<rpc_request_timeout>60</rpc_request_timeout>\
             <rpc_trusted_proxies>127.0.0.1</rpc_trusted_proxies>\
             <rpc_rate_limit_exempt>{EXEMPT}</rpc_rate_limit_exempt>\
             <rpc_failed_logins_per_ip>5</rpc_failed_logins_per_ip>\
             <rpc_failed_login_window>600</rpc_failed_login_window>\
             <rpc_create_account_per_ip_per_hour>3</rpc_create_account_per_ip_per_hour>"
        ),
        None,
    );
    let ports = [free_port(), free_port()];
    let mut rpc = [
        start_rpc(&config, ports[0], dir.path().join("rpc0.log")),
        start_rpc(&config, ports[1], dir.path().join("rpc1.log")),
    ];
    for (i, port) in ports.iter().enumerate() {
        wait_up(*port, &format!("boinc-rpc {i}")).await;
    }
    let lb = free_port();
    let _haproxy = start_haproxy(dir.path(), lb, &ports);
    wait_up(lb, "haproxy").await;

    // An account to guess at, made by a client of its own.
    let email = "victim@example.com";
    let right = passwd_hash("secret", email);
    let wrong = passwd_hash("guess", email);
    let made = burst(
        lb,
        "127.0.0.9",
        "create_account.php",
        vec![p(&[
            ("email_addr", email),
            ("passwd_hash", &right),
            ("user_name", "Victim"),
        ])],
    )
    .await;
    assert!(made[0].contains("<authenticator>"), "{}", made[0]);

    // Failed-login burst: 40 wrong guesses at once from 127.0.0.5.
    // (A generous request timeout: bcrypt on a busy machine must not turn
    // answers into -138; this counts answers, not speed.)
    let bodies = burst(
        lb,
        "127.0.0.5",
        "lookup_account.php",
        (0..40)
            .map(|_| p(&[("email_addr", email), ("passwd_hash", &wrong)]))
            .collect(),
    )
    .await;
    let answered = bodies.iter().filter(|b| error_num(b) == Some(-206)).count();
    let refused = bodies.iter().filter(|b| limited(b)).count();
    assert_eq!((answered, refused), (5, 35), "{bodies:?}");

    // Sign-up burst: 20 new accounts at once from 127.0.0.6.
    let bodies = burst(
        lb,
        "127.0.0.6",
        "create_account.php",
        (0..20)
            .map(|i| {
                let e = format!("signup{i}@example.com");
                p(&[
                    ("email_addr", &e),
                    ("passwd_hash", &passwd_hash("pw", &e)),
                    ("user_name", &format!("Signup {i}")),
                ])
            })
            .collect(),
    )
    .await;
    let created = bodies
        .iter()
        .filter(|b| b.contains("<authenticator>"))
        .count();
    let refused = bodies.iter().filter(|b| limited(b)).count();
    assert_eq!((created, refused), (3, 17), "{bodies:?}");
    let mut c = db.conn().await;
    let users: i64 = c
        .query_first("SELECT COUNT(*) FROM user WHERE email_addr LIKE 'signup%'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(users, 3);

    // Both instances took part in both bursts.
    for (i, r) in rpc.iter().enumerate() {
        let log = r.log();
        assert!(served(&log, "lookup_account") > 0, "instance {i}:\n{log}");
        assert!(served(&log, "create_account") > 0, "instance {i}:\n{log}");
    }
    // The shared counters: by the real client address, never the forged one.
    let rows: Vec<(u8, Vec<u8>, i64)> = c
        .query("SELECT kind, client, used FROM rpc_limit")
        .await
        .unwrap();
    assert_eq!(counters(&rows, 1, "127.0.0.5"), Some(5), "{rows:?}");
    assert_eq!(counters(&rows, 2, "127.0.0.6"), Some(3), "{rows:?}");
    assert_eq!(counters(&rows, 1, EXEMPT), None, "{rows:?}");
    assert_eq!(counters(&rows, 2, EXEMPT), None, "{rows:?}");

    // Restart instance 0 in the middle of the window.
    rpc[0].stop();
    rpc[0] = start_rpc(&config, ports[0], dir.path().join("rpc0-again.log"));
    wait_up(ports[0], "restarted boinc-rpc").await;
    tokio::time::sleep(Duration::from_millis(600)).await; // HAProxy's check sees it up
                                                          // Through the balancer (both instances, in turn): still refused, even
                                                          // the right password and one more new account.
    for _ in 0..4 {
        let b = burst(
            lb,
            "127.0.0.5",
            "lookup_account.php",
            vec![p(&[("email_addr", email), ("passwd_hash", &right)])],
        )
        .await;
        assert!(limited(&b[0]), "{}", b[0]);
        let b = burst(
            lb,
            "127.0.0.6",
            "create_account.php",
            vec![p(&[
                ("email_addr", "late@example.com"),
                ("passwd_hash", &passwd_hash("pw", "late@example.com")),
                ("user_name", "Late"),
            ])],
        )
        .await;
        assert!(limited(&b[0]), "{}", b[0]);
    }
    assert!(
        served(&rpc[0].log(), "lookup_account") > 0,
        "the restarted instance answered none:\n{}",
        rpc[0].log()
    );
    // The restarted instance directly (as if the balancer picked it).
    let direct = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/lookup_account.php", ports[0]))
        .header("X-Forwarded-For", "127.0.0.5")
        .query(&[("email_addr", email), ("passwd_hash", &right)])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(limited(&direct), "{direct}");
    // Other clients are unaffected.
    let b = burst(
        lb,
        "127.0.0.7",
        "lookup_account.php",
        vec![p(&[("email_addr", email), ("passwd_hash", &right)])],
    )
    .await;
    assert!(b[0].contains("<authenticator>"), "{}", b[0]);
    let users: i64 = c
        .query_first("SELECT COUNT(*) FROM user")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(users, 4);
    c.disconnect().await.ok();
}
