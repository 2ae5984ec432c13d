//! What a reply promises (SPEC section 3), however requests are grouped,
//! queued or retried inside the server: `<success/>` means committed; an
//! error reply means nothing of the call was written, then or later; a
//! row lock held elsewhere on one account delays only that account's
//! calls. Through HTTP, against the real database, with the faults that
//! break promises: locks held past the request deadline, and connections
//! broken during COMMIT (`common::commit_cut`).

mod common;

use std::time::{Duration, Instant};

use boinc_db::testing;
use common::commit_cut::{CommitCut, Cut};
use common::proxy::test_server_addr;
use common::*;
use mysql_async::prelude::*;

fn consent<'a>(key: &'a str, flag: &'a str, source: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("account_key", key),
        ("consent_name", "STATSEXPORT"),
        ("consent_flag", flag),
        ("consent_not_required", "0"),
        ("consent_source", source),
    ]
}

/// The same change with a profile field too, so it is never grouped.
fn consent_alone<'a>(key: &'a str, flag: &'a str, source: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut p = consent(key, flag, source);
    p.push(("venue", "home"));
    p
}

async fn project(options: boinc_rpc::Options, proxy_port: Option<u16>) -> Harness {
    let h = Harness::build("", Some(TERMS), options, proxy_port).await;
    h.set_type_enabled("ENROLL", true).await;
    h.set_type_enabled("STATSEXPORT", true).await;
    h
}

/// Accounts straight into the database: (id, key).
async fn accounts(h: &Harness, n: usize) -> Vec<(i64, String)> {
    let mut c = h.conn().await;
    let mut out = Vec::new();
    for i in 0..n {
        let key = format!("{:032x}", 0x0BAD_F00D_0000_u64 + i as u64);
        out.push((testing::insert_account(&mut c, i, &key).await, key));
    }
    out
}

/// (flag, source) of an account's STATSEXPORT rows, in order.
async fn history(h: &Harness, userid: i64) -> Vec<(i64, String)> {
    h.conn()
        .await
        .exec(
            "SELECT c.consent_flag, c.source FROM consent c \
             JOIN consent_type t ON t.id = c.consent_type_id \
             WHERE c.userid = ? AND t.shortname = 'STATSEXPORT' ORDER BY c.id",
            (userid,),
        )
        .await
        .unwrap()
}

/// Another session holding these accounts' rows (an erase, an admin, PHP).
async fn hold(h: &Harness, ids: &[i64]) -> mysql_async::Conn {
    let mut holder = h.conn().await;
    holder.query_drop("START TRANSACTION").await.unwrap();
    for id in ids {
        holder
            .exec_drop("SELECT id FROM user WHERE id = ? FOR UPDATE", (id,))
            .await
            .unwrap();
    }
    holder
}

fn post(h: &Harness, params: &[(&str, &str)]) -> tokio::task::JoinHandle<String> {
    let (client, url) = (h.client.clone(), h.url("am_set_info.php"));
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::spawn(async move {
        client
            .post(url)
            .form(&params)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    })
}

/// The example, and its profile twin: account Z is held by another
/// session past the request deadline. A change for Y sent with Z's is
/// never held up by Z; Z's callers get -138 at the deadline, and nothing
/// of their calls is written after, even once Z is free again. Y's later
/// withdrawal stays the last word.
#[tokio::test]
async fn an_error_reply_at_the_deadline_is_never_undone() {
    let options = boinc_rpc::Options {
        request_timeout: Duration::from_millis(1500),
        ..test_options()
    };
    let h = project(options, None).await;
    let acc = accounts(&h, 2).await;
    let ((z, zkey), (y, ykey)) = (acc[0].clone(), acc[1].clone());
    let mut holder = hold(&h, &[z]).await;

    let z_grouped = post(&h, &consent(&zkey, "1", "z-grouped"));
    let z_alone = post(&h, &consent_alone(&zkey, "1", "z-alone"));
    let y_on = post(&h, &consent(&ykey, "1", "y-on"));
    let started = Instant::now();
    let y_reply = y_on.await.unwrap();
    assert!(y_reply.contains("<success/>"), "{y_reply}");
    assert!(
        !z_grouped.is_finished() && !z_alone.is_finished(),
        "Z's calls wait for Z; Y's did not wait for them"
    );
    let (zg, za) = (z_grouped.await.unwrap(), z_alone.await.unwrap());
    assert_error(&zg, -138);
    assert_error(&za, -138);
    assert!(started.elapsed() < Duration::from_secs(10));

    // Y withdraws (alone, with a venue); Z is let go afterwards.
    let off = post(&h, &consent_alone(&ykey, "0", "y-off")).await.unwrap();
    assert!(off.contains("<success/>"), "{off}");
    holder.query_drop("ROLLBACK").await.unwrap();
    // Anything still in flight inside the server would land now: give it
    // every chance (the request deadline and more), then look.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        history(&h, z).await.is_empty(),
        "Z's -138 calls wrote nothing"
    );
    let venue: Option<String> = h
        .conn()
        .await
        .exec_first("SELECT venue FROM user WHERE id = ?", (z,))
        .await
        .unwrap();
    assert_eq!(venue.as_deref(), Some(""), "Z's profile untouched");
    assert_eq!(
        history(&h, y).await,
        [(1, "y-on".to_owned()), (0, "y-off".to_owned())]
    );
}

/// One held account, however many calls wait for it (grouped or not),
/// delays no other account's calls and ties up no connection: the others
/// all succeed while it is held, and its own succeed once it is free.
#[tokio::test]
async fn a_busy_account_delays_no_other() {
    let options = boinc_rpc::Options {
        request_timeout: Duration::from_secs(60),
        ..test_options()
    };
    let h = project(options, None).await;
    let acc = accounts(&h, 17).await;
    let (busy, busy_key) = acc[0].clone();
    let mut holder = hold(&h, &[busy]).await;
    // More calls for the held account than the pool has connections.
    let mut waiting = Vec::new();
    for i in 0..40 {
        let source = format!("busy-{i}");
        waiting.push(if i % 2 == 0 {
            post(&h, &consent(&busy_key, "1", &source))
        } else {
            post(&h, &consent_alone(&busy_key, "1", &source))
        });
    }
    let mut others = Vec::new();
    for (i, (_, key)) in acc[1..].iter().enumerate() {
        others.push(if i % 2 == 0 {
            post(&h, &consent(key, "1", "other"))
        } else {
            post(&h, &consent_alone(key, "1", "other"))
        });
    }
    let all_others = async {
        let mut replies = Vec::new();
        for o in others {
            replies.push(o.await.unwrap());
        }
        replies
    };
    // Had they waited for the held account they would wait the full 60 s.
    let replies = tokio::time::timeout(Duration::from_secs(30), all_others)
        .await
        .expect("other accounts' calls finish while one account is held");
    for r in &replies {
        assert!(r.contains("<success/>"), "{r}");
    }
    assert!(waiting.iter().all(|w| !w.is_finished()));
    for (id, _) in &acc[1..] {
        assert_eq!(history(&h, *id).await, [(1, "other".to_owned())]);
    }
    holder.query_drop("ROLLBACK").await.unwrap();
    for w in waiting {
        let r = w.await.unwrap();
        assert!(r.contains("<success/>"), "{r}");
    }
    // Forty "consent" calls: one row, whichever came first.
    let rows = history(&h, busy).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, 1);
}

async fn cut_project(workers: usize) -> (CommitCut, Harness) {
    let cut = CommitCut::start(test_server_addr()).await;
    let options = boinc_rpc::Options {
        consent_group_workers: workers,
        ..test_options()
    };
    let h = project(options, Some(cut.port)).await;
    (cut, h)
}

/// The connection breaks after the server got the COMMIT: the server
/// committed, so the reply is success, for a grouped consent change, a
/// change applied alone (its `rpc_commit` token tells), and a new account.
#[tokio::test]
async fn a_commit_that_happened_but_whose_answer_was_lost_is_a_success() {
    let (cut, h) = cut_project(2).await;
    let acc = accounts(&h, 2).await;

    cut.arm(Cut::AfterForwarding);
    let r = h
        .call("am_set_info.php", &consent(&acc[0].1, "1", "g"))
        .await;
    assert_eq!(cut.fired(), 1);
    assert!(r.contains("<success/>"), "{r}");
    assert_eq!(history(&h, acc[0].0).await, [(1, "g".to_owned())]);

    cut.arm(Cut::AfterForwarding);
    let r = h
        .call("am_set_info.php", &consent_alone(&acc[1].1, "1", "a"))
        .await;
    assert_eq!(cut.fired(), 2);
    assert!(r.contains("<success/>"), "{r}");
    assert_eq!(history(&h, acc[1].0).await, [(1, "a".to_owned())]);

    cut.arm(Cut::AfterForwarding);
    let r = h
        .create(
            "lost@example.com",
            "secret",
            "Lost Answer",
            &[("consent_flag", "1"), ("source", "web")],
        )
        .await;
    assert_eq!(cut.fired(), 3);
    let user = h.user("lost@example.com").await.expect("committed");
    assert_eq!(tag(&r, "authenticator"), Some(user.authenticator), "{r}");
}

/// The connection breaks before the server got the COMMIT: nothing was
/// written. A consent change (grouped or alone) is tried again and
/// succeeds once; a new account is refused with -138 and does not exist,
/// then or later.
#[tokio::test]
async fn a_commit_that_never_happened_is_retried_or_refused_never_half_done() {
    let (cut, h) = cut_project(2).await;
    let acc = accounts(&h, 2).await;

    cut.arm(Cut::BeforeForwarding);
    let r = h
        .call("am_set_info.php", &consent(&acc[0].1, "1", "g"))
        .await;
    assert_eq!(cut.fired(), 1);
    assert!(r.contains("<success/>"), "{r}");
    assert_eq!(history(&h, acc[0].0).await, [(1, "g".to_owned())]);

    cut.arm(Cut::BeforeForwarding);
    let r = h
        .call("am_set_info.php", &consent_alone(&acc[1].1, "1", "a"))
        .await;
    assert_eq!(cut.fired(), 2);
    assert!(r.contains("<success/>"), "{r}");
    assert_eq!(history(&h, acc[1].0).await, [(1, "a".to_owned())]);

    cut.arm(Cut::BeforeForwarding);
    let r = h
        .create("never@example.com", "secret", "Never Was", &[])
        .await;
    assert_eq!(cut.fired(), 3);
    assert_error(&r, -138);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(h.user("never@example.com").await.is_none());
    // And the client's retry makes it.
    let r = h
        .create("never@example.com", "secret", "Never Was", &[])
        .await;
    assert!(tag(&r, "authenticator").is_some(), "{r}");
}
