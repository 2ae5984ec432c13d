//! Consent-only am_set_info requests are group-committed
//! (`boinc_rpc::flip_group`): the same replies and rows as each request
//! alone, exact under same-instant requests, and one failing request
//! costs no other its change.

mod common;

use std::time::Duration;

use boinc_db::consent_flip::{Flip, FlipOutcome};
use boinc_db::testing::{self, TestDb};
use boinc_rpc::flip_group::{FlipError, FlipGroups};
use common::*;
use mysql_async::prelude::*;

/// Accounts straight into the database (no bcrypt): (id, key).
async fn accounts(c: &mut mysql_async::Conn, n: usize) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for i in 0..n {
        let key = format!("{:032x}", 0x00C0_FFEE_0000_u64 + i as u64);
        out.push((testing::insert_account(c, i, &key).await, key));
    }
    out
}

fn consent<'a>(key: &'a str, name: &'a str, flag: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("account_key", key),
        ("consent_name", name),
        ("consent_flag", flag),
        ("consent_not_required", "0"),
        ("consent_source", "AM"),
    ]
}

/// Every consent row: (account index, type, flag, not_required, source).
async fn all_rows(h: &Harness, ids: &[i64]) -> Vec<(usize, String, i64, i64, String)> {
    let mut c = h.conn().await;
    let rows: Vec<(i64, String, i64, i64, String)> = c
        .query(
            "SELECT c.userid, t.shortname, c.consent_flag, c.consent_not_required, c.source \
             FROM consent c JOIN consent_type t ON t.id = c.consent_type_id ORDER BY c.id",
        )
        .await
        .unwrap();
    rows.into_iter()
        .map(|(u, t, f, n, s)| (ids.iter().position(|i| *i == u).unwrap(), t, f, n, s))
        .collect()
}

async fn project(workers: usize) -> Harness {
    let h = Harness::with(
        "",
        Some(TERMS),
        boinc_rpc::Options {
            consent_group_workers: workers,
            ..test_options()
        },
    )
    .await;
    h.set_type_enabled("ENROLL", true).await;
    h.set_type_enabled("STATSEXPORT", true).await;
    h.add_type("NEWSLETTER", false).await;
    h
}

/// One script of requests, each alone and grouped: the same replies and
/// the same rows, and the rows the rules ask for.
#[tokio::test]
async fn grouped_and_alone_answer_and_record_the_same() {
    let mut seen = Vec::new();
    for workers in [0, 2] {
        let h = project(workers).await;
        assert_eq!(h.server.state.flip_groups().is_some(), workers > 0);
        let mut c = h.conn().await;
        let acc = accounts(&mut c, 2).await;
        let ids: Vec<i64> = acc.iter().map(|a| a.0).collect();
        let (a, b) = (acc[0].1.as_str(), acc[1].1.as_str());
        let upper = a.to_uppercase();
        let script: Vec<Vec<(&str, &str)>> = vec![
            consent(a, "STATSEXPORT", "1"),
            consent(a, "STATSEXPORT", "1"),
            consent(a, "STATSEXPORT", "0"),
            consent(a, "statsexport", "1"),
            consent(a, "STATSEXPORT\u{200b}", "1"),
            consent(a, "NEWSLETTER", "1"),
            consent(a, "ENROLL", "0"),
            consent(a, "ENROLL", "1"),
            consent(&upper, "STATSEXPORT", "1"),
            consent("0123456789abcdef0123456789abcdef", "STATSEXPORT", "1"),
            consent(b, "STATSEXPORT", "0"),
            consent(b, "STATSEXPORT", "1"),
        ];
        let mut replies = Vec::new();
        for params in &script {
            replies.push(h.call("am_set_info.php", params).await);
        }
        let rows = all_rows(&h, &ids).await;
        if workers > 0 {
            let stats = h.server.state.flip_groups().unwrap().stats();
            assert_eq!(
                stats.changes,
                script.len() as u64,
                "every request went through the groups"
            );
        }
        seen.push((replies, rows));
    }
    let (alone, grouped) = (&seen[0], &seen[1]);
    assert_eq!(alone.0, grouped.0, "replies differ");
    assert_eq!(alone.1, grouped.1, "rows differ");
    // And they are what the rules say.
    let replies = &grouped.0;
    for i in [0, 1, 2, 7, 10, 11] {
        assert!(
            replies[i].contains("<success/>") && !replies[i].contains("warning"),
            "{i}: {}",
            replies[i]
        );
    }
    for i in [3, 4] {
        assert!(replies[i].contains("does not exist"), "{}", replies[i]);
    }
    assert!(replies[5].contains("not enabled"), "{}", replies[5]);
    assert_eq!(error_num(&replies[6]), Some(-1), "{}", replies[6]);
    assert_eq!(error_num(&replies[8]), Some(-136), "{}", replies[8]);
    assert_eq!(error_num(&replies[9]), Some(-136), "{}", replies[9]);
    let s = |i: usize, t: &str, f: i64| (i, t.to_owned(), f, 0, "AM".to_owned());
    assert_eq!(
        grouped.1,
        vec![
            s(0, "STATSEXPORT", 1),
            s(0, "STATSEXPORT", 0),
            s(0, "ENROLL", 1),
            s(1, "STATSEXPORT", 0),
            s(1, "STATSEXPORT", 1),
        ]
    );
}

/// Many requests for the same accounts at the same instant: each change
/// is recorded once, whatever groups they fall into.
#[tokio::test]
async fn same_instant_flips_record_each_change_once() {
    let h = project(2).await;
    let mut c = h.conn().await;
    let acc = accounts(&mut c, 16).await;
    let ids: Vec<i64> = acc.iter().map(|a| a.0).collect();
    for flag in ["1", "0", "0"] {
        let mut calls = Vec::new();
        for (_, key) in &acc {
            for _ in 0..4 {
                let (client, url, key) = (h.client.clone(), h.url("am_set_info.php"), key.clone());
                calls.push(tokio::spawn(async move {
                    client
                        .post(url)
                        .form(&consent(&key, "STATSEXPORT", flag))
                        .send()
                        .await
                        .unwrap()
                        .text()
                        .await
                        .unwrap()
                }));
            }
        }
        for call in calls {
            let body = call.await.unwrap();
            assert!(body.contains("<success/>"), "{body}");
        }
    }
    let rows = all_rows(&h, &ids).await;
    for i in 0..acc.len() {
        let flags: Vec<i64> = rows.iter().filter(|r| r.0 == i).map(|r| r.2).collect();
        // On, then off; the repeated withdrawals change nothing.
        assert_eq!(flags, vec![1, 0], "account {i}");
    }
}

fn flip(key: &str, source: String) -> Flip {
    Flip {
        account_key: key.to_owned(),
        type_name: "STATSEXPORT".into(),
        flag: true,
        not_required: false,
        source,
    }
}

/// Requests queued behind a busy group go together in the next one; one
/// of them failing in the database costs the others nothing: each is
/// applied again on its own and only that one fails.
#[tokio::test]
async fn queued_changes_commit_together_and_a_failing_one_costs_no_other() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    c.query_drop("UPDATE consent_type SET enabled = 1 WHERE shortname = 'STATSEXPORT'")
        .await
        .unwrap();
    let acc = accounts(&mut c, 9).await;
    let groups = std::sync::Arc::new(FlipGroups::start(
        db.settings.opts(),
        Duration::from_secs(5),
        1,
    ));

    // The one worker is held up: its group waits for account 0's lock.
    let mut holder = db.conn().await;
    let mut tx = holder
        .start_transaction(mysql_async::TxOpts::default())
        .await
        .unwrap();
    tx.exec_drop("SELECT id FROM user WHERE id = ? FOR UPDATE", (acc[0].0,))
        .await
        .unwrap();
    let first = {
        let (g, key) = (groups.clone(), acc[0].1.clone());
        tokio::spawn(async move { g.submit(flip(&key, "first".into())).await })
    };
    testing::wait_for_statement(
        &mut c,
        "SELECT u.id, u.authenticator%FROM user u WHERE u.id IN %FOR UPDATE",
    )
    .await;

    // Eight more queue up meanwhile; one has a source past its column's
    // 255 characters (the RPC refuses those first; here it stands for any
    // request the database refuses).
    let mut queued = Vec::new();
    for (i, (_, key)) in acc[1..].iter().enumerate() {
        let source = if i == 3 {
            "x".repeat(300)
        } else {
            format!("q{i}")
        };
        let (g, key) = (groups.clone(), key.clone());
        queued.push(tokio::spawn(
            async move { g.submit(flip(&key, source)).await },
        ));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.commit().await.unwrap();

    assert!(matches!(
        first.await.unwrap(),
        Ok(FlipOutcome::Applied { recorded: true, .. })
    ));
    for (i, q) in queued.into_iter().enumerate() {
        match (i, q.await.unwrap()) {
            (3, Err(FlipError::Db(e))) => assert!(e.to_string().contains("source"), "{e}"),
            (3, other) => panic!("the over-long source: {other:?}"),
            (
                _,
                Ok(FlipOutcome::Applied {
                    recorded: true,
                    userid,
                }),
            ) => {
                assert_eq!(userid, acc[i + 1].0)
            }
            (_, other) => panic!("request {i}: {other:?}"),
        }
    }
    let stats = groups.stats();
    // The first group, the eight together, then each of the eight again.
    assert_eq!(stats.largest, 8, "{stats:?}");
    assert_eq!(stats.groups, 1 + 1 + 8, "{stats:?}");
    let sources: Vec<String> = c
        .query("SELECT source FROM consent ORDER BY id")
        .await
        .unwrap();
    assert_eq!(sources, ["first", "q0", "q1", "q2", "q4", "q5", "q6", "q7"]);
}
