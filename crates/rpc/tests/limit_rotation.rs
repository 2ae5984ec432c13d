//! The shared per-client counters (`rpc_limit`) against a client that
//! rotates IPv6 addresses, over HTTP through a trusted proxy: a walk
//! through the /64s of one /48 runs into the /48's budget (and so adds a
//! bounded number of rows), a walk through many /48s keeps the table
//! within `<rpc_limit_max_rows>`, successful logins leave no rows, and
//! clients elsewhere are unaffected throughout.

mod common;

use boinc_rpc::limits::WIDER_BLOCK_FACTOR;
use common::*;
use mysql_async::prelude::*;

/// Failed logins per client per window in these tests.
const PER_CLIENT: u32 = 5;

/// An unknown account key: a failed login of `ip`.
async fn guess(h: &Harness, ip: &str) -> String {
    h.call_from(ip, "am_get_info.php", &[("account_key", "no-such-key")])
        .await
}

#[track_caller]
fn assert_not_found(body: &str) {
    assert_eq!(
        body,
        format!("{HEADER}<error>\n    <error_num>-136</error_num>\n    <error_msg>Not found</error_msg>\n</error>\n")
    );
}

#[track_caller]
fn assert_throttled(body: &str) {
    assert_error(body, -1);
    assert!(
        body.contains("<error_msg>too many failed attempts from your address; try again in "),
        "{body}"
    );
}

async fn rows(h: &Harness) -> i64 {
    let mut c = h.conn().await;
    c.query_first("SELECT COUNT(*) FROM rpc_limit")
        .await
        .unwrap()
        .unwrap()
}

fn harness_config(extra: &str) -> String {
    format!("{PROXIED}<rpc_failed_logins_per_ip>{PER_CLIENT}</rpc_failed_logins_per_ip>{extra}")
}

#[tokio::test]
async fn rotating_64s_inside_one_48_hits_the_48s_budget() {
    let h = Harness::new(&harness_config(""), None).await;
    let block = PER_CLIENT * WIDER_BLOCK_FACTOR;
    // 200 /64s of 2001:db8:aa::/48, one guess each.
    let mut answered = 0;
    for i in 0..200u32 {
        let body = guess(&h, &format!("2001:db8:aa:{i:x}::1")).await;
        if i < block {
            assert_not_found(&body);
            answered += 1;
        } else {
            assert_throttled(&body);
        }
    }
    assert_eq!(answered, block);
    // One row per /64 that got an answer, and the /48's: not one per /64.
    assert_eq!(rows(&h).await, i64::from(block) + 1);
    // A /64 of the block that guessed before is refused as well.
    assert_throttled(&guess(&h, "2001:db8:aa:0::2").await);
    // Clients elsewhere: another /48, IPv4.
    assert_not_found(&guess(&h, "2001:db8:bb:1::1").await);
    assert_not_found(&guess(&h, "198.51.100.9").await);
    // The per-/64 limit still holds inside a fresh /48, and a sibling /64
    // keeps its own budget there.
    for i in 0..PER_CLIENT + 2 {
        let body = guess(&h, &format!("2001:db8:cc:1::{:x}", i + 1)).await;
        if i < PER_CLIENT {
            assert_not_found(&body);
        } else {
            assert_throttled(&body);
        }
    }
    assert_not_found(&guess(&h, "2001:db8:cc:2::1").await);
}

#[tokio::test]
async fn rotating_64s_inside_one_48_gets_its_budget_of_accounts() {
    let h = Harness::new(
        &format!(
            "{PROXIED}<rpc_create_account_per_ip_per_hour>2</rpc_create_account_per_ip_per_hour>"
        ),
        None,
    )
    .await;
    let block = 2 * WIDER_BLOCK_FACTOR as usize;
    let mut created = 0;
    for i in 0..3 * block {
        let email = format!("rot{i}@example.com");
        let hash = passwd_hash("secret", &email);
        let body = h
            .call_from(
                &format!("2001:db8:dd:{i:x}::1"),
                "create_account.php",
                &[
                    ("email_addr", email.as_str()),
                    ("passwd_hash", hash.as_str()),
                    ("user_name", &format!("Rot {i}")),
                ],
            )
            .await;
        if i < block {
            assert!(body.contains("<authenticator>"), "{i}: {body}");
            created += 1;
        } else {
            assert_error(&body, -1);
            assert!(
                body.contains("too many accounts created from your address"),
                "{body}"
            );
        }
    }
    assert_eq!(created, block);
    assert_eq!(h.user_count().await, block as i64);
}

#[tokio::test]
async fn rotating_48s_keeps_the_table_within_its_cap() {
    const CAP: i64 = 64;
    let h = Harness::new(
        &harness_config(&format!("<rpc_limit_max_rows>{CAP}</rpc_limit_max_rows>")),
        None,
    )
    .await;
    let mut highest = 0;
    // Each guess from a new /48 adds two rows (its /48 and its /64).
    for i in 0..300u32 {
        let ip = format!("2001:db8:{:x}:1::1", 0x1000 + i);
        assert_not_found(&guess(&h, &ip).await);
        let n = rows(&h).await;
        highest = highest.max(n);
        assert!(n <= CAP, "{n} rows after {} clients (cap {CAP})", i + 1);
    }
    assert!(
        highest > CAP / 2,
        "the test never got near the cap: {highest}"
    );
    // The newest windows are the ones kept: the last client is still
    // counted, with its failure.
    let mut c = h.conn().await;
    let last: Option<i64> = c
        .exec_first(
            "SELECT used FROM rpc_limit WHERE client = ?",
            (vec![0x20u8, 0x01, 0x0d, 0xb8, 0x11, 0x2b, 0, 1],),
        )
        .await
        .unwrap();
    assert_eq!(last, Some(1));
    // A client's limit within its window is unaffected by the churn.
    for i in 0..PER_CLIENT + 1 {
        let body = guess(&h, "192.0.2.77").await;
        if i < PER_CLIENT {
            assert_not_found(&body);
        } else {
            assert_throttled(&body);
        }
    }
}

#[tokio::test]
async fn successful_logins_leave_no_rows() {
    let h = Harness::new(&harness_config(""), None).await;
    h.new_account("ok@example.com", "Okay", &[]).await;
    let hash = passwd_hash("secret", "ok@example.com");
    let base = rows(&h).await;
    for i in 0..40u32 {
        let body = h
            .call_from(
                &format!("2001:db8:ee:{i:x}::1"),
                "lookup_account.php",
                &[
                    ("email_addr", "ok@example.com"),
                    ("passwd_hash", hash.as_str()),
                ],
            )
            .await;
        assert!(body.contains("<authenticator>"), "{body}");
    }
    assert_eq!(
        rows(&h).await,
        base,
        "a success gives its slots and rows back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotation_of_48s_keeps_the_table_within_its_cap() {
    const CAP: i64 = 128;
    const AT_ONCE: u32 = 8;
    let h = std::sync::Arc::new(
        Harness::new(
            &harness_config(&format!("<rpc_limit_max_rows>{CAP}</rpc_limit_max_rows>")),
            None,
        )
        .await,
    );
    let mut highest = 0;
    for batch in 0..50u32 {
        let mut set = tokio::task::JoinSet::new();
        for j in 0..AT_ONCE {
            let h = h.clone();
            let ip = format!("2001:db8:{:x}:1::1", 0x2000 + batch * AT_ONCE + j);
            set.spawn(async move { guess(&h, &ip).await });
        }
        while let Some(body) = set.join_next().await {
            assert_not_found(&body.unwrap());
        }
        let n = rows(&h).await;
        highest = highest.max(n);
        assert!(n <= CAP, "{n} rows after batch {batch} (cap {CAP})");
    }
    assert!(
        highest > CAP / 2,
        "the test never got near the cap: {highest}"
    );
}
