//! A mixed load run (10,000 requests by default so the debug-build suite
//! stays quick on 2 cores; RPC_MIX_REQUESTS=100000 for the full run, and
//! `rpc_bench mixed` does 100,000+ against the release binary) (mostly get_project_config,
//! lookup_account, am_get_info and am_set_info consent flips, plus a few
//! hundred create_account with consent) against one server, then: zero
//! 5xx (in fact every reply HTTP 200 with well-formed XML), zero users
//! without their consent row, and as many accounts as successful
//! create_account replies.

mod common;
mod robust;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use common::{passwd_hash, Harness};
use mysql_async::prelude::*;

#[derive(Default)]
struct Counts {
    non_200: AtomicUsize,
    server_errors: AtomicUsize,
    malformed: AtomicUsize,
    transport: AtomicUsize,
    created: AtomicUsize,
    create_failed: AtomicUsize,
    error_replies: AtomicUsize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_requests_lose_nothing() {
    let total: usize = std::env::var("RPC_MIX_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let h = Arc::new(
        Harness::consent_project(
            "<rpc_failed_logins_per_ip>100000000</rpc_failed_logins_per_ip>\
             <rpc_request_timeout>60</rpc_request_timeout><rpc_db_timeout>10</rpc_db_timeout>\
             <rpc_create_account_per_ip_per_hour>0</rpc_create_account_per_ip_per_hour>",
        )
        .await,
    );
    h.set_type_enabled("STATSEXPORT", true).await;
    let mut keys = Vec::new();
    for i in 0..16 {
        keys.push(
            h.new_account(
                &format!("seed{i}@example.com"),
                &format!("Seed {i}"),
                &[("consent_flag", "1"), ("source", "seed")],
            )
            .await,
        );
    }
    let keys = Arc::new(keys);
    let base = h.server.url();
    let next = Arc::new(AtomicUsize::new(0));
    let counts = Arc::new(Counts::default());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (client, base, next, counts, keys) = (
            client.clone(),
            base.clone(),
            next.clone(),
            counts.clone(),
            keys.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let key = &keys[n % keys.len()];
                let slot = n % 1000;
                let (url, is_create) = if slot < 3 {
                    let email = format!("mix{n}@example.com");
                    let hash = passwd_hash("pw", &email);
                    (
                        format!(
                            "{base}create_account.php?email_addr={email}&passwd_hash={hash}\
                             &user_name=Mix+{n}&consent_flag={}&source=mixed-load",
                            n % 2
                        ),
                        true,
                    )
                } else if slot < 100 {
                    (
                        format!(
                            "{base}am_set_info.php?account_key={key}&consent_name=STATSEXPORT\
                             &consent_flag={}&consent_not_required=0&consent_source=mixed",
                            (n / 1000) % 2
                        ),
                        false,
                    )
                } else if slot < 250 {
                    (format!("{base}am_get_info.php?account_key={key}"), false)
                } else if slot < 400 {
                    (
                        format!(
                            "{base}lookup_account.php?email_addr=seed{}@example.com",
                            n % 20 // some unknown: -136
                        ),
                        false,
                    )
                } else {
                    (format!("{base}get_project_config.php"), false)
                };
                let r = match client.get(&url).send().await {
                    Ok(r) => r,
                    Err(_) => {
                        counts.transport.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                let status = r.status().as_u16();
                if status != 200 {
                    counts.non_200.fetch_add(1, Ordering::Relaxed);
                }
                if status >= 500 {
                    counts.server_errors.fetch_add(1, Ordering::Relaxed);
                }
                let body = match r.text().await {
                    Ok(b) => b,
                    Err(_) => {
                        counts.transport.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                if robust::well_formed(&body).is_err() {
                    counts.malformed.fetch_add(1, Ordering::Relaxed);
                }
                let error = body.contains("<error>");
                if error {
                    counts.error_replies.fetch_add(1, Ordering::Relaxed);
                }
                if is_create {
                    if !error && body.contains("<authenticator>") {
                        counts.created.fetch_add(1, Ordering::Relaxed);
                    } else {
                        if counts.create_failed.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("create_account failed: {body}");
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("load task");
    }
    let took = started.elapsed();
    let c = &counts;
    eprintln!(
        "{total} requests in {took:?} ({:.0}/s); created {}, create failures {}, error replies {}",
        total as f64 / took.as_secs_f64(),
        c.created.load(Ordering::Relaxed),
        c.create_failed.load(Ordering::Relaxed),
        c.error_replies.load(Ordering::Relaxed),
    );
    assert_eq!(c.transport.load(Ordering::Relaxed), 0, "transport errors");
    assert_eq!(c.server_errors.load(Ordering::Relaxed), 0, "5xx replies");
    assert_eq!(c.non_200.load(Ordering::Relaxed), 0, "non-200 replies");
    assert_eq!(c.malformed.load(Ordering::Relaxed), 0, "malformed XML");
    assert_eq!(c.create_failed.load(Ordering::Relaxed), 0, "failed creates");

    let mut conn = h.conn().await;
    let accounts: i64 = conn
        .query_first("SELECT COUNT(*) FROM user WHERE email_addr LIKE 'mix%'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(accounts as usize, c.created.load(Ordering::Relaxed));
    assert!(accounts >= (total / 1000 * 3) as i64 - 3);
    assert_eq!(robust::users_without_consent(&mut conn, "%").await, 0);
    // A new consent row only when the state changes: no row repeats the
    // flag of the user's previous row for that type (in history order).
    // Legitimate flips 1 -> 0 -> 1 may share one second at this rate, so
    // equal (time, flag) pairs alone are no evidence of a duplicate.
    let dup: i64 = conn
        .query_first(
            "SELECT COUNT(*) FROM (SELECT consent_flag, LAG(consent_flag) OVER \
             (PARTITION BY userid, consent_type_id ORDER BY consent_time, id) AS prev \
             FROM consent) h WHERE prev = consent_flag",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dup, 0, "consent rows repeating the previous state");
}
