//! The ops page's failed-login throttle behind a reverse proxy, through
//! the real `boinc-ops serve`: with `<rpc_trusted_proxies>` naming the
//! proxy's address, failures count against the client the proxy names in
//! `X-Forwarded-For` (boinc-rpc's rule, the same function), so one client
//! guessing cannot lock the admin out from behind the same proxy. A peer
//! that is not a trusted proxy is counted as itself whatever it forwards.

use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use boinc_db::testing::{free_port, TestDb};
use boinc_ops::web::MAX_FAILURES;

const BIN: &str = env!("CARGO_BIN_EXE_boinc-ops");
const USER: &str = "admin";
const PASS: &str = "correct horse battery";

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn get(c: &reqwest::Client, base: &str, xff: &[&str], pass: &str) -> u16 {
    let mut r = c.get(format!("{base}/")).basic_auth(USER, Some(pass));
    for line in xff {
        r = r.header("x-forwarded-for", *line);
    }
    r.send().await.expect("GET /").status().as_u16()
}

#[tokio::test]
async fn throttle_counts_the_forwarded_client_of_a_trusted_proxy_only() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash(PASS, 4).unwrap();
    let config = db.write_project(
        dir.path(),
        &format!(
            "<ops_user>{USER}</ops_user>\n<ops_password_hash>{hash}</ops_password_hash>\n\
             <rpc_trusted_proxies>127.0.0.1 ::1</rpc_trusted_proxies>"
        ),
        None,
    );
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _serve = Serve(
        Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env_remove("BOINC_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let proxy = client_from("127.0.0.1");
    let t = Instant::now();
    while proxy.get(format!("{base}/")).send().await.is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "ops page did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Client A (behind the proxy) guesses until it is throttled.
    let a = ["203.0.113.1"];
    for i in 0..MAX_FAILURES {
        assert_eq!(get(&proxy, &base, &a, &format!("guess {i}")).await, 401);
    }
    assert_eq!(get(&proxy, &base, &a, "one more").await, 429);
    assert_eq!(get(&proxy, &base, &a, PASS).await, 429, "A is locked out");
    // A forging a line of its own left of what the proxy appends is A.
    assert_eq!(
        get(&proxy, &base, &["203.0.113.2", "203.0.113.1"], PASS).await,
        429
    );
    assert_eq!(
        get(&proxy, &base, &["203.0.113.2, 203.0.113.1"], PASS).await,
        429
    );
    // The admin, client B behind the same proxy, is not.
    let b = ["203.0.113.2"];
    assert_eq!(get(&proxy, &base, &b, PASS).await, 200, "B locked out by A");
    assert_eq!(get(&proxy, &base, &b, "typo").await, 401);
    // From here on the right password is a verified login, which passes
    // any throttle (so guessing cannot end a working session): a wrong
    // one tells a throttled client (429) from one that is not (401).
    assert_eq!(get(&proxy, &base, &a, "probe").await, 429);
    // A request of the proxy's own (no X-Forwarded-For) is the proxy's.
    assert_eq!(get(&proxy, &base, &[], "probe").await, 401);

    // A peer that is no trusted proxy: its X-Forwarded-For is ignored, so
    // rotating it gains nothing, and it locks out only itself.
    let other = client_from("127.0.0.2");
    for i in 0..MAX_FAILURES {
        let xff = format!("198.51.100.{i}");
        assert_eq!(get(&other, &base, &[&xff], "guess").await, 401);
    }
    assert_eq!(get(&other, &base, &["198.51.100.200"], "probe").await, 429);
    assert_eq!(get(&other, &base, &[], "probe").await, 429);
    assert_eq!(get(&proxy, &base, &["198.51.100.200"], "probe").await, 401);

    // IPv6 clients count by /64, as boinc-rpc's limits count them.
    for i in 0..MAX_FAILURES {
        let xff = format!("2001:db8:1:2::{:x}", i + 1);
        assert_eq!(get(&proxy, &base, &[&xff], "guess").await, 401);
    }
    assert_eq!(
        get(&proxy, &base, &["2001:db8:1:2:ffff::9"], "probe").await,
        429
    );
    assert_eq!(get(&proxy, &base, &["2001:db8:1:3::1"], "probe").await, 401);
}
