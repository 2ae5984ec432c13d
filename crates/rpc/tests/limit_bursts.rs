//! Per-IP limits against the real server: under concurrent bursts (a slot
//! is reserved atomically before the work, so however the requests
//! interleave no address gets more answers than its limit allows), and
//! with forged client addresses in repeated `X-Forwarded-For` lines.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use mysql_async::prelude::*;

/// Every test is many clients behind a (trusted) local proxy. The request
/// timeout is generous: these tests count answers, and bcrypt on a busy
/// machine must not turn them into -138.
const PROXIED: &str =
    "<rpc_trusted_proxies>127.0.0.1</rpc_trusted_proxies><rpc_request_timeout>60</rpc_request_timeout>";

/// Send all requests at once (one connection each, released together by a
/// barrier); the reply bodies in request order.
async fn burst(h: &Harness, ip: &str, requests: Vec<(&str, Vec<(String, String)>)>) -> Vec<String> {
    let barrier = Arc::new(tokio::sync::Barrier::new(requests.len()));
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|(rpc, params)| {
            // A client of its own: no connection reuse, true concurrency.
            let client = reqwest::Client::new();
            let url = h.url(rpc);
            let ip = ip.to_owned();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let r = client
                    .get(url)
                    .header("X-Forwarded-For", ip)
                    .query(&params)
                    .send()
                    .await
                    .expect("request");
                assert_eq!(r.status(), 200);
                r.text().await.expect("body")
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

/// Reply kinds: error numbers, "ok" for a success, "limited" for the
/// per-IP refusal (-1 with its message).
fn outcome(body: &str) -> String {
    match error_num(body) {
        None => "ok".into(),
        Some(-1) if body.contains("too many") => "limited".into(),
        Some(n) => n.to_string(),
    }
}

fn tally(bodies: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for b in bodies {
        *m.entry(outcome(b)).or_default() += 1;
    }
    m
}

fn owned(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `used` of every counter of this kind (1 failed logins, 2 creations).
/// (`refused` only counts refusals that reached the database: once a
/// server has seen a counter full it refuses without asking.)
async fn used(h: &Harness, kind: u8) -> Vec<i64> {
    let mut c = h.conn().await;
    c.exec("SELECT used FROM rpc_limit WHERE kind = ?", (kind,))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_burst_of_wrong_passwords_gets_exactly_the_limit() {
    let h = Harness::new(
        &format!("{PROXIED}<rpc_failed_logins_per_ip>5</rpc_failed_logins_per_ip>"),
        None,
    )
    .await;
    h.new_account("victim@example.com", "Victim", &[]).await;
    let wrong = passwd_hash("not the password", "victim@example.com");
    let reqs = (0..30)
        .map(|_| {
            (
                "lookup_account.php",
                owned(&[
                    ("email_addr", "victim@example.com"),
                    ("passwd_hash", &wrong),
                ]),
            )
        })
        .collect();
    let t = tally(&burst(&h, "192.0.2.50", reqs).await);
    assert_eq!(t.get("-206"), Some(&5), "{t:?}");
    assert_eq!(t.get("limited"), Some(&25), "{t:?}");
    assert_eq!(used(&h, 1).await, vec![5]);
    // The right password from there is refused too, for the window.
    let right = passwd_hash("secret", "victim@example.com");
    let b = burst(
        &h,
        "192.0.2.50",
        vec![(
            "lookup_account.php",
            owned(&[
                ("email_addr", "victim@example.com"),
                ("passwd_hash", &right),
            ]),
        )],
    )
    .await;
    assert_eq!(outcome(&b[0]), "limited", "{}", b[0]);
    // Another address is unaffected.
    let b = burst(
        &h,
        "192.0.2.51",
        vec![(
            "lookup_account.php",
            owned(&[
                ("email_addr", "victim@example.com"),
                ("passwd_hash", &right),
            ]),
        )],
    )
    .await;
    assert!(b[0].contains("<authenticator>"), "{}", b[0]);
}

#[tokio::test]
async fn a_right_guess_inside_a_burst_is_one_of_the_limited_attempts() {
    let h = Harness::new(
        &format!("{PROXIED}<rpc_failed_logins_per_ip>5</rpc_failed_logins_per_ip>"),
        None,
    )
    .await;
    h.new_account("victim@example.com", "Victim", &[]).await;
    let wrong = passwd_hash("guess", "victim@example.com");
    let right = passwd_hash("secret", "victim@example.com");
    let mut reqs: Vec<_> = (0..30)
        .map(|_| {
            (
                "lookup_account.php",
                owned(&[
                    ("email_addr", "victim@example.com"),
                    ("passwd_hash", &wrong),
                ]),
            )
        })
        .collect();
    reqs.insert(
        17,
        (
            "lookup_account.php",
            owned(&[
                ("email_addr", "victim@example.com"),
                ("passwd_hash", &right),
            ]),
        ),
    );
    let bodies = burst(&h, "192.0.2.60", reqs).await;
    let t = tally(&bodies);
    let wrong_answers = t.get("-206").copied().unwrap_or(0);
    let right_answers = t.get("ok").copied().unwrap_or(0);
    // At most 5 failures are ever answered; the right guess gets an answer
    // only if it held one of the slots (a success gives its slot back, so
    // one more attempt may follow it).
    assert!(wrong_answers <= 5, "{t:?}");
    assert!(wrong_answers + right_answers <= 6, "{t:?}");
    assert_eq!(
        wrong_answers + right_answers + t.get("limited").copied().unwrap_or(0),
        31,
        "{t:?}"
    );
    // Before the fix all 30 wrong guesses were answered -206.
    assert!(t.get("limited").copied().unwrap_or(0) >= 25, "{t:?}");
}

#[tokio::test]
async fn successful_logins_do_not_use_up_the_failure_budget() {
    let h = Harness::new(
        &format!("{PROXIED}<rpc_failed_logins_per_ip>3</rpc_failed_logins_per_ip>"),
        None,
    )
    .await;
    let key = h.new_account("user@example.com", "User", &[]).await;
    let right = passwd_hash("secret", "user@example.com");
    // A burst of successes (each holds a slot only while it runs).
    let reqs: Vec<_> = (0..3)
        .map(|_| {
            (
                "lookup_account.php",
                owned(&[("email_addr", "user@example.com"), ("passwd_hash", &right)]),
            )
        })
        .collect();
    for b in burst(&h, "192.0.2.70", reqs).await {
        assert!(b.contains("<authenticator>"), "{b}");
    }
    // Sequential successes of every kind.
    for _ in 0..5 {
        let b = burst(
            &h,
            "192.0.2.70",
            vec![
                (
                    "lookup_account.php",
                    owned(&[("email_addr", "user@example.com"), ("passwd_hash", &right)]),
                ),
                (
                    "lookup_account.php",
                    owned(&[("email_addr", "user@example.com")]),
                ),
            ],
        )
        .await;
        assert!(b.iter().all(|b| error_num(b).is_none()), "{b:?}");
        for rpc in ["am_get_info.php", "am_set_info.php"] {
            let b = burst(
                &h,
                "192.0.2.70",
                vec![(rpc, owned(&[("account_key", &key)]))],
            )
            .await;
            assert!(b[0].contains("<success/>"), "{}", b[0]);
        }
    }
    // Every success gave its slot back, and with the last one the row.
    assert_eq!(used(&h, 1).await, Vec::<i64>::new());
    // The whole budget is still there: 3 failures, then refusals.
    let wrong = passwd_hash("nope", "user@example.com");
    let mut seen = Vec::new();
    for _ in 0..4 {
        let b = burst(
            &h,
            "192.0.2.70",
            vec![(
                "lookup_account.php",
                owned(&[("email_addr", "user@example.com"), ("passwd_hash", &wrong)]),
            )],
        )
        .await;
        seen.push(outcome(&b[0]));
    }
    assert_eq!(seen, ["-206", "-206", "-206", "limited"]);
}

#[tokio::test]
async fn a_burst_of_unknown_account_keys_gets_exactly_the_limit() {
    let h = Harness::consent_project(&format!(
        "{PROXIED}<rpc_failed_logins_per_ip>5</rpc_failed_logins_per_ip>"
    ))
    .await;
    let key = h.new_account("k@example.com", "K", &[]).await;
    let reqs = (0..30)
        .map(|i| {
            let rpc = if i % 2 == 0 {
                "am_get_info.php"
            } else {
                "am_set_info.php"
            };
            (rpc, owned(&[("account_key", &format!("guess{i}"))]))
        })
        .collect();
    let t = tally(&burst(&h, "203.0.113.77", reqs).await);
    assert_eq!(t.get("-136"), Some(&5), "{t:?}");
    assert_eq!(t.get("limited"), Some(&25), "{t:?}");
    // The right key from there is refused as well (no oracle for keys).
    for rpc in ["am_get_info.php", "am_set_info.php"] {
        let b = burst(
            &h,
            "203.0.113.77",
            vec![(rpc, owned(&[("account_key", &key)]))],
        )
        .await;
        assert_eq!(outcome(&b[0]), "limited", "{}", b[0]);
    }
}

#[tokio::test]
async fn a_burst_of_sign_ups_creates_exactly_the_limit() {
    let h = Harness::new(
        &format!(
            "{PROXIED}<rpc_create_account_per_ip_per_hour>3</rpc_create_account_per_ip_per_hour>"
        ),
        None,
    )
    .await;
    let reqs = (0..15)
        .map(|i| {
            let email = format!("burst{i}@example.com");
            (
                "create_account.php",
                owned(&[
                    ("email_addr", &email),
                    ("passwd_hash", &passwd_hash("pw", &email)),
                    ("user_name", &format!("Burst {i}")),
                ]),
            )
        })
        .collect();
    let bodies = burst(&h, "198.51.100.20", reqs).await;
    let t = tally(&bodies);
    assert_eq!(t.get("ok"), Some(&3), "{t:?}");
    assert_eq!(t.get("limited"), Some(&12), "{t:?}");
    assert_eq!(h.user_count().await, 3);
    assert_eq!(used(&h, 2).await, vec![3]);

    // Idempotent retries of those accounts are not creations: a burst of
    // retries and new sign-ups answers every retry and refuses every new one.
    let created: Vec<usize> = (0..15)
        .filter(|i| bodies[*i].contains("<authenticator>"))
        .collect();
    let mut reqs = Vec::new();
    for i in 0..10 {
        let (email, name) = if i % 2 == 0 {
            let n = created[i / 2 % created.len()];
            (format!("burst{n}@example.com"), format!("Burst {n}"))
        } else {
            (format!("late{i}@example.com"), format!("Late {i}"))
        };
        reqs.push((
            "create_account.php",
            owned(&[
                ("email_addr", &email),
                ("passwd_hash", &passwd_hash("pw", &email)),
                ("user_name", &name),
            ]),
        ));
    }
    let bodies = burst(&h, "198.51.100.20", reqs).await;
    for (i, b) in bodies.iter().enumerate() {
        if i % 2 == 0 {
            assert!(b.contains("<authenticator>"), "retry {i}: {b}");
        } else {
            assert_eq!(outcome(b), "limited", "new {i}: {b}");
        }
    }
    assert_eq!(h.user_count().await, 3);
}

#[tokio::test]
async fn concurrent_sign_ups_for_one_email_use_one_creation() {
    let h = Harness::new(
        &format!(
            "{PROXIED}<rpc_create_account_per_ip_per_hour>2</rpc_create_account_per_ip_per_hour>"
        ),
        None,
    )
    .await;
    let email = "same@example.com";
    let reqs = (0..6)
        .map(|i| {
            (
                "create_account.php",
                owned(&[
                    ("email_addr", email),
                    ("passwd_hash", &passwd_hash("pw", email)),
                    ("user_name", &format!("Same {i}")),
                ]),
            )
        })
        .collect();
    let bodies = burst(&h, "198.51.100.30", reqs).await;
    // Each either made the account, found it (a retry) or was refused
    // while the slots were held; never more than one account.
    assert_eq!(h.user_count().await, 1);
    assert!(
        bodies.iter().any(|b| b.contains("<authenticator>")),
        "{bodies:?}"
    );
    // Only the one creation counts once the burst is over: another new
    // account still fits in the budget of 2, a third does not.
    assert_eq!(used(&h, 2).await, vec![1]);
    let other = "other@example.com";
    let b = burst(
        &h,
        "198.51.100.30",
        vec![(
            "create_account.php",
            owned(&[
                ("email_addr", other),
                ("passwd_hash", &passwd_hash("pw", other)),
                ("user_name", "Other"),
            ]),
        )],
    )
    .await;
    assert!(b[0].contains("<authenticator>"), "{}", b[0]);
}

/// Raw request with the given header lines (reqwest would do, but this
/// shows exactly what goes on the wire).
async fn with_header_lines(h: &Harness, target: &str, lines: &[&str]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for l in lines {
        req.push_str(l);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    let mut s = tokio::net::TcpStream::connect(h.server.addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text.split_once("\r\n\r\n").unwrap().1.to_owned()
}

#[tokio::test]
async fn a_client_cannot_choose_its_address_with_an_extra_forwarded_for_line() {
    // Behind HAProxy with `option forwardfor`: the client's own header
    // line arrives first, the proxy's line (the real address) last.
    let h = Harness::new(
        &format!(
            "{PROXIED}<rpc_create_account_per_ip_per_hour>1</rpc_create_account_per_ip_per_hour>\
             <rpc_rate_limit_exempt>198.51.100.7</rpc_rate_limit_exempt>"
        ),
        None,
    )
    .await;
    let create = |i: usize| {
        let email = format!("xff{i}@example.com");
        format!(
            "/create_account.php?email_addr={}&passwd_hash={}&user_name=Xff{i}",
            email.replace('@', "%40"),
            passwd_hash("pw", &email)
        )
    };
    let forged = [
        "X-Forwarded-For: 198.51.100.7",
        "X-Forwarded-For: 203.0.113.40",
    ];
    let b = with_header_lines(&h, &create(0), &forged).await;
    assert!(b.contains("<authenticator>"), "{b}");
    // The exempt address in the first line does not lift the limit of the
    // address the proxy saw.
    let b = with_header_lines(&h, &create(1), &forged).await;
    assert_eq!(outcome(&b), "limited", "{b}");
    // Nor do several lines, ports or a second copy of our proxy.
    let b = with_header_lines(
        &h,
        &create(2),
        &[
            "X-Forwarded-For: 198.51.100.7, 198.51.100.7",
            "X-Forwarded-For: 203.0.113.40:5555",
            "x-forwarded-for: 127.0.0.1",
        ],
    )
    .await;
    assert_eq!(outcome(&b), "limited", "{b}");
    // A real exempt client (named by the proxy's line) stays exempt, and
    // another client has its own budget.
    for (i, addr) in [
        (3, "198.51.100.7"),
        (4, "198.51.100.7"),
        (5, "203.0.113.41"),
    ] {
        let line = format!("X-Forwarded-For: {addr}");
        let b = with_header_lines(&h, &create(i), &["X-Forwarded-For: 10.1.1.1", &line]).await;
        assert!(b.contains("<authenticator>"), "{addr}: {b}");
    }
    assert_eq!(h.user_count().await, 4);
}

#[tokio::test]
async fn without_the_limit_table_limited_rpcs_fail_closed() {
    // A binary upgraded without `boinc-ops db upgrade`: limits are never
    // silently off; the RPCs that need them say "database error".
    let h = Harness::new(PROXIED, None).await;
    let key = h.new_account("t@example.com", "T", &[]).await;
    let mut c = h.conn().await;
    c.query_drop("DROP TABLE rpc_limit").await.unwrap();
    let right = passwd_hash("secret", "t@example.com");
    let b = burst(
        &h,
        "192.0.2.90",
        vec![
            (
                "lookup_account.php",
                owned(&[("email_addr", "t@example.com"), ("passwd_hash", &right)]),
            ),
            ("am_get_info.php", owned(&[("account_key", &key)])),
            (
                "create_account.php",
                owned(&[
                    ("email_addr", "n@example.com"),
                    ("passwd_hash", &passwd_hash("pw", "n@example.com")),
                    ("user_name", "N"),
                ]),
            ),
        ],
    )
    .await;
    for body in &b {
        assert_error(body, -1);
        assert!(body.contains("database error"), "{body}");
    }
    assert_eq!(h.user_count().await, 1);
    // get_project_config is unaffected.
    assert!(h
        .get("get_project_config.php")
        .await
        .contains("<project_config>"));
}
