//! Abuse limits from config.xml: per-IP account creation, failed
//! authenticator lookups, body and parameter caps, slow senders, banned
//! email domains and invite codes.

mod common;
mod robust;

use std::time::{Duration, Instant};

use common::*;

async fn create_from(h: &Harness, ip: &str, email: &str) -> String {
    let hash = passwd_hash("secret", email);
    let name = email.replace(['@', '.'], "_");
    h.call_from(
        ip,
        "create_account.php",
        &[
            ("email_addr", email),
            ("passwd_hash", &hash),
            ("user_name", &name),
        ],
    )
    .await
}

#[tokio::test]
async fn create_account_is_limited_per_address_per_hour() {
    let h = Harness::new(
        &format!(
            "{PROXIED}<rpc_create_account_per_ip_per_hour>3</rpc_create_account_per_ip_per_hour>"
        ),
        None,
    )
    .await;
    for i in 0..3 {
        let b = create_from(&h, "192.0.2.1", &format!("a{i}@example.com")).await;
        assert!(b.contains("<authenticator>"), "{b}");
    }
    let b = create_from(&h, "192.0.2.1", "a3@example.com").await;
    assert_error(&b, -1);
    assert!(b.contains("try again later"), "{b}");
    // A retry of an existing account is not a new account: still answered.
    let b = create_from(&h, "192.0.2.1", "a0@example.com").await;
    assert!(b.contains("<authenticator>"), "{b}");
    // Another address has its own budget.
    let b = create_from(&h, "192.0.2.2", "b0@example.com").await;
    assert!(b.contains("<authenticator>"), "{b}");
    assert_eq!(h.user_count().await, 4);
    // Without a trusted proxy the header is ignored (the peer counts).
    let h2 = Harness::new(
        "<rpc_create_account_per_ip_per_hour>1</rpc_create_account_per_ip_per_hour>",
        None,
    )
    .await;
    assert!(create_from(&h2, "192.0.2.1", "c0@example.com")
        .await
        .contains("<authenticator>"));
    assert_error(&create_from(&h2, "192.0.2.9", "c1@example.com").await, -1);
    assert_eq!(h2.user_count().await, 1);
}

#[tokio::test]
async fn exempt_addresses_and_zero_mean_unlimited() {
    let h = Harness::new(
        &format!(
            "{PROXIED}<rpc_create_account_per_ip_per_hour>1</rpc_create_account_per_ip_per_hour>\
             <rpc_rate_limit_exempt>198.51.100.7</rpc_rate_limit_exempt>"
        ),
        None,
    )
    .await;
    for i in 0..3 {
        let b = create_from(&h, "198.51.100.7", &format!("am{i}@example.com")).await;
        assert!(b.contains("<authenticator>"), "{b}");
    }
    let h = Harness::new(
        "<rpc_create_account_per_ip_per_hour>0</rpc_create_account_per_ip_per_hour>",
        None,
    )
    .await;
    for i in 0..3 {
        let b = h
            .create(&format!("z{i}@example.com"), "pw", &format!("Z{i}"), &[])
            .await;
        assert!(b.contains("<authenticator>"), "{b}");
    }
}

#[tokio::test]
async fn failed_authenticator_lookups_are_limited_per_address() {
    let h = Harness::consent_project(&format!(
        "{PROXIED}<rpc_failed_logins_per_ip>3</rpc_failed_logins_per_ip>\
         <rpc_failed_login_window>60</rpc_failed_login_window>"
    ))
    .await;
    let key = h.new_account("k@example.com", "K", &[]).await;
    for i in 0..3 {
        let rpc = if i % 2 == 0 {
            "am_get_info.php"
        } else {
            "am_set_info.php"
        };
        let b = h
            .call_from("203.0.113.5", rpc, &[("account_key", "guess")])
            .await;
        assert_error(&b, -136);
    }
    // Now even the right key is refused from there, with a retry hint.
    // The first refusal reads the shared counter; the server remembers it
    // full, so the next ones are refused without asking for a database
    // connection at all.
    let mut asks = Vec::new();
    for rpc in ["am_get_info.php", "am_set_info.php", "lookup_account.php"] {
        let b = h
            .call_from(
                "203.0.113.5",
                rpc,
                &[("account_key", &key), ("email_addr", "k@example.com")],
            )
            .await;
        assert_error(&b, -1);
        assert!(b.contains("try again in"), "{b}");
        asks.push(h.pool_asks().await);
    }
    assert_eq!(asks[1], asks[0], "refused after a database query: {asks:?}");
    assert_eq!(asks[2], asks[0], "refused after a database query: {asks:?}");
    // Others are unaffected.
    let b = h
        .call_from("203.0.113.6", "am_get_info.php", &[("account_key", &key)])
        .await;
    assert!(b.contains("<success/>"), "{b}");
    let b = h
        .call_from(
            "203.0.113.6",
            "am_set_info.php",
            &[("account_key", &key), ("country", "Germany")],
        )
        .await;
    assert!(b.contains("<success/>"), "{b}");
}

#[tokio::test]
async fn body_and_parameter_caps() {
    let h = Harness::new(
        "<rpc_max_body_bytes>2000</rpc_max_body_bytes><rpc_max_param_bytes>300</rpc_max_param_bytes>",
        None,
    )
    .await;
    let before = h.user_count().await;
    let email = "cap@example.com";
    let hash = passwd_hash("pw", email);
    // A body over the cap.
    let big = "x".repeat(5000);
    let b = h
        .post(
            "create_account.php",
            &[
                ("email_addr", email),
                ("passwd_hash", &hash),
                ("user_name", "Cap"),
                ("team_name", &big),
            ],
        )
        .await;
    assert_error(&b, -1);
    assert!(b.contains("too large"), "{b}");
    // One parameter over the cap (query string and body).
    let long = "y".repeat(400);
    let b = h
        .call(
            "create_account.php",
            &[
                ("email_addr", email),
                ("passwd_hash", &hash),
                ("user_name", &long),
            ],
        )
        .await;
    assert_error(&b, -1);
    assert!(
        b.contains(
            "<error_msg>user_name is too long (400 bytes given, at most 300 bytes)</error_msg>"
        ),
        "{b}"
    );
    let b = h
        .post(
            "am_set_info.php",
            &[("account_key", "k"), ("global_prefs", &long)],
        )
        .await;
    assert!(
        b.contains(
            "<error_msg>global_prefs is too long (400 bytes given, at most 300 bytes)</error_msg>"
        ),
        "{b}"
    );
    assert_eq!(h.user_count().await, before);
    // Within the caps it works.
    let b = h
        .post(
            "create_account.php",
            &[
                ("email_addr", email),
                ("passwd_hash", &hash),
                ("user_name", "Cap"),
            ],
        )
        .await;
    assert!(b.contains("<authenticator>"), "{b}");
}

#[tokio::test]
async fn a_stalled_body_is_cut_off_at_the_request_timeout() {
    let h = Harness::new("<rpc_request_timeout>1</rpc_request_timeout>", None).await;
    let addr = h.server.addr;
    let t = Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(
        b"POST /create_account.php HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nemail_addr=",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("server answered within 5 s")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("not received in time"), "{text}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[tokio::test]
async fn banned_email_domains() {
    let h = Harness::new(
        "<banned_email_domains>spam.example, trash.example</banned_email_domains>",
        None,
    )
    .await;
    for email in ["a@spam.example", "b@mx.TRASH.example"] {
        assert_error(&h.create(email, "pw", "Spammer", &[]).await, -205);
    }
    assert!(h
        .create("ok@example.com", "pw", "Fine", &[])
        .await
        .contains("<authenticator>"));
    assert_eq!(h.user_count().await, 1);
}

#[tokio::test]
async fn banned_email_domains_file() {
    // The file is read at start-up: write the project by hand first.
    let db = boinc_db::testing::TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("banned.txt"),
        "# spam domains\nmailinator.test\n",
    )
    .unwrap();
    let path = db.write_project(
        dir.path(),
        "<banned_email_domains_file>banned.txt</banned_email_domains_file>",
        None,
    );
    let config = boinc_db::ProjectConfig::load(&path).unwrap();
    let state = boinc_rpc::AppState::with_options(config, test_options()).unwrap();
    let server = boinc_rpc::spawn(state, "127.0.0.1:0").await.unwrap();
    let email = "x@mailinator.test";
    let hash = passwd_hash("pw", email);
    let body = reqwest::Client::new()
        .get(format!("{}create_account.php", server.url()))
        .query(&[
            ("email_addr", email),
            ("passwd_hash", &hash),
            ("user_name", "X"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_error(&body, -205);
    server.stop().await;
}

#[tokio::test]
async fn invite_codes() {
    let h = Harness::new(
        "<invite_code_regex>^(alpha|beta)-[0-9]{3}$</invite_code_regex>",
        None,
    )
    .await;
    let cfg = h.get("get_project_config.php").await;
    assert!(
        cfg.contains("    <account_creation_disabled/>\n    <invite_code_required/>\n"),
        "{cfg}"
    );
    robust::well_formed(&cfg).unwrap();
    let b = h.create("i@example.com", "pw", "Inv", &[]).await;
    assert_error(&b, -1);
    assert!(b.contains("Invalid invitation code"), "{b}");
    assert_error(
        &h.create(
            "i@example.com",
            "pw",
            "Inv",
            &[("invite_code", "gamma-123")],
        )
        .await,
        -1,
    );
    assert_eq!(h.user_count().await, 0);
    let b = h
        .create("i@example.com", "pw", "Inv", &[("invite_code", "beta-042")])
        .await;
    assert!(b.contains("<authenticator>"), "{b}");
}
