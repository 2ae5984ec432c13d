//! Grouped consent changes (`boinc_db::consent::group`): one transaction,
//! each change decided as it would be alone, and no group ever waits for
//! a row lock: busy accounts come back as `Busy`.

use std::time::{Duration, Instant};

use boinc_db::consent::group::{Flip, FlipOutcome, GroupConn};
use boinc_db::consent::latest;
use boinc_db::mysql_async::prelude::*;
use boinc_db::testing::fixtures::type_id;
use boinc_db::testing::{insert_account, TestDb};

fn flip(key: &str, name: &str, flag: bool) -> Flip {
    Flip {
        account_key: key.into(),
        type_name: name.into(),
        flag,
        not_required: false,
        source: format!("src-{name}-{flag}"),
    }
}

/// (userid, type, flag, time, source) of every consent row, in id order.
async fn rows(c: &mut boinc_db::mysql_async::Conn) -> Vec<(i64, String, i64, i64, String)> {
    c.query(
        "SELECT c.userid, t.shortname, c.consent_flag, c.consent_time, c.source \
         FROM consent c JOIN consent_type t ON t.id = c.consent_type_id ORDER BY c.id",
    )
    .await
    .unwrap()
}

/// A group connection on the shared server: SKIP LOCKED is there.
async fn group_conn(db: &TestDb) -> GroupConn {
    GroupConn::connect(db.settings.opts())
        .await
        .unwrap()
        .expect("MariaDB 10.6+ has SKIP LOCKED")
}

/// Stage and commit one group.
async fn apply(g: &mut GroupConn, flips: &[Flip], now: i64) -> Vec<FlipOutcome> {
    let staged = g.stage(flips, now).await.unwrap();
    g.commit().await.unwrap();
    staged.outcomes
}

/// One group on a group connection (autocommit off, READ COMMITTED,
/// accounts found and locked in one statement): every change decided as
/// it would be alone. Keys that lock nothing (unknown, look-alikes of a
/// key, erased) are `Busy`: applied alone, they get their "not found".
#[tokio::test]
async fn a_group_decides_each_change_as_it_would_be_alone() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    c.query_drop("UPDATE consent_type SET enabled = 1 WHERE shortname IN ('ENROLL','STATSEXPORT')")
        .await
        .unwrap();
    c.query_drop(
        "INSERT INTO consent_type (shortname, description, enabled, project_specific, privacypref) \
         VALUES ('NEWSLETTER', 'n', 0, 1, 0)",
    )
    .await
    .unwrap();
    let a = insert_account(&mut c, 1, "aaaa1111").await;
    let b = insert_account(&mut c, 2, "bbbb2222").await;
    let erased = insert_account(&mut c, 3, "deleted_3_x").await;
    // B already consented to STATSEXPORT.
    c.exec_drop(
        "INSERT INTO consent (userid, consent_type_id, consent_time, consent_flag, \
         consent_not_required, source) \
         SELECT ?, id, 5, 1, 0, 'before' FROM consent_type WHERE shortname = 'STATSEXPORT'",
        (b,),
    )
    .await
    .unwrap();

    let group = [
        flip("aaaa1111", "STATSEXPORT", true),
        // The same again inside the group: the first one is its latest.
        flip("aaaa1111", "STATSEXPORT", true),
        flip("aaaa1111", "STATSEXPORT", false),
        flip("nosuchkey", "STATSEXPORT", true),
        // The collation takes these for A's key; the group does not.
        flip("AAAA1111", "STATSEXPORT", true),
        flip("aaaa1111 ", "STATSEXPORT", true),
        flip("bbbb2222", "statsexport", false),
        flip("bbbb2222", "STATSEXPORT\u{200b}", false),
        flip("bbbb2222", "ENROLL", false),
        flip("bbbb2222", "NEWSLETTER", true),
        // B's stored consent is the latest: no row.
        flip("bbbb2222", "STATSEXPORT", true),
        flip("bbbb2222", "ENROLL", true),
        flip("deleted_3_x", "STATSEXPORT", true),
        flip("", "STATSEXPORT", true),
    ];
    let mut g = group_conn(&db).await;
    assert!(g.read_committed(), "binary log off here: READ COMMITTED");
    let out = apply(&mut g, &group, 1000).await;
    g.disconnect().await;
    use FlipOutcome::*;
    assert_eq!(
        out,
        vec![
            Applied {
                userid: a,
                recorded: true
            },
            Applied {
                userid: a,
                recorded: false
            },
            Applied {
                userid: a,
                recorded: true
            },
            Busy,
            Busy,
            Busy,
            UnknownType { userid: b },
            UnknownType { userid: b },
            EnrollWithdrawal { userid: b },
            TypeDisabled {
                userid: b,
                shortname: "NEWSLETTER".into()
            },
            Applied {
                userid: b,
                recorded: false
            },
            Applied {
                userid: b,
                recorded: true
            },
        ]
        .into_iter()
        .chain([Busy, Busy])
        .collect::<Vec<_>>()
    );
    let _ = erased;
    assert_eq!(
        rows(&mut c).await,
        vec![
            (b, "STATSEXPORT".into(), 1, 5, "before".into()),
            (
                a,
                "STATSEXPORT".into(),
                1,
                1000,
                "src-STATSEXPORT-true".into()
            ),
            (
                a,
                "STATSEXPORT".into(),
                0,
                1000,
                "src-STATSEXPORT-false".into()
            ),
            (b, "ENROLL".into(), 1, 1000, "src-ENROLL-true".into()),
        ]
    );
    // Same second, later id: the withdrawal is A's latest state.
    let stats = type_id(&mut c, "STATSEXPORT").await;
    let latest = latest::row(&mut c, a, stats).await.unwrap().unwrap();
    assert_eq!(latest.consent_flag, 0);
}

#[tokio::test]
async fn a_group_that_fails_writes_nothing() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    c.query_drop("UPDATE consent_type SET enabled = 1 WHERE shortname = 'STATSEXPORT'")
        .await
        .unwrap();
    insert_account(&mut c, 1, "aaaa1111").await;
    insert_account(&mut c, 2, "bbbb2222").await;
    let mut bad = flip("bbbb2222", "STATSEXPORT", true);
    bad.source = "x".repeat(300); // past consent.source's 255: strict mode refuses
    let mut g = group_conn(&db).await;
    let err = g
        .stage(&[flip("aaaa1111", "STATSEXPORT", true), bad], 1000)
        .await
        .expect_err("an over-long source fails the INSERT");
    assert!(err.to_string().contains("source"), "{err}");
    // As the worker does: the connection goes (closing it rolls back).
    g.disconnect().await;
    assert!(rows(&mut c).await.is_empty());
    let mut g = group_conn(&db).await;
    let out = apply(&mut g, &[flip("aaaa1111", "STATSEXPORT", true)], 1001).await;
    assert!(matches!(
        out[..],
        [FlipOutcome::Applied { recorded: true, .. }]
    ));
}

/// An account another transaction holds (an erase, an admin, BOINC's PHP)
/// is skipped, not waited for: the group decides and commits the others
/// while the holder still holds it, and that account comes back `Busy`.
/// Once the holder has committed, a group sees what it wrote.
#[tokio::test]
async fn a_busy_account_is_skipped_not_waited_for() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    c.query_drop("UPDATE consent_type SET enabled = 1 WHERE shortname = 'STATSEXPORT'")
        .await
        .unwrap();
    let b = insert_account(&mut c, 1, "bbbb2222").await;
    let a = insert_account(&mut c, 2, "aaaa1111").await;
    let d = insert_account(&mut c, 3, "dddd4444").await;

    // The holder: A locked, its consent recorded, not yet committed.
    let mut holder = db.conn().await;
    let mut tx = holder
        .start_transaction(boinc_db::mysql_async::TxOpts::default())
        .await
        .unwrap();
    tx.exec_drop("SELECT id FROM user WHERE id = ? FOR UPDATE", (a,))
        .await
        .unwrap();
    tx.exec_drop(
        "INSERT INTO consent (userid, consent_type_id, consent_time, consent_flag, \
         consent_not_required, source) \
         SELECT ?, id, 5, 1, 0, 'holder' FROM consent_type WHERE shortname = 'STATSEXPORT'",
        (a,),
    )
    .await
    .unwrap();

    let mut g = group_conn(&db).await;
    let group = [
        flip("bbbb2222", "STATSEXPORT", true),
        flip("aaaa1111", "STATSEXPORT", true),
        flip("dddd4444", "STATSEXPORT", true),
    ];
    // Far below innodb_lock_wait_timeout (50 s): had it waited, the test
    // would stall there; the bound only keeps a broken build from hanging.
    let started = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(20), apply(&mut g, &group, 1000))
        .await
        .expect("the group must not wait for A's lock");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        out,
        vec![
            FlipOutcome::Applied {
                userid: b,
                recorded: true
            },
            FlipOutcome::Busy,
            FlipOutcome::Applied {
                userid: d,
                recorded: true
            },
        ]
    );
    // B's and D's rows are committed while A is still held.
    let committed: Vec<i64> = c
        .query("SELECT userid FROM consent ORDER BY id")
        .await
        .unwrap();
    assert_eq!(committed, [b, d]);

    tx.commit().await.unwrap();
    let out = apply(&mut g, &[flip("aaaa1111", "STATSEXPORT", true)], 1001).await;
    assert_eq!(
        out,
        vec![FlipOutcome::Applied {
            userid: a,
            recorded: false
        }]
    );
    let a_rows: Vec<String> = c
        .exec(
            "SELECT source FROM consent WHERE userid = ? ORDER BY id",
            (a,),
        )
        .await
        .unwrap();
    assert_eq!(a_rows, ["holder"], "A's consent recorded once");
    g.disconnect().await;
}

/// A consent row being written by a transaction that does not lock the
/// account (BOINC's PHP writes consent that way), of a grouped account or
/// of its neighbour in the consent index, stalls no group: the group reads
/// what is committed and goes on.
#[tokio::test]
async fn a_consent_row_being_written_elsewhere_stalls_no_group() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    c.query_drop("UPDATE consent_type SET enabled = 1 WHERE shortname = 'STATSEXPORT'")
        .await
        .unwrap();
    let b = insert_account(&mut c, 1, "bbbb2222").await;
    let a = insert_account(&mut c, 2, "aaaa1111").await;
    c.exec_drop(
        "INSERT INTO consent (userid, consent_type_id, consent_time, consent_flag, \
         consent_not_required, source) \
         SELECT ?, id, 5, 0, 0, 'old' FROM consent_type WHERE shortname = 'STATSEXPORT'",
        (a,),
    )
    .await
    .unwrap();
    let mut writer = db.conn().await;
    let mut tx = writer
        .start_transaction(boinc_db::mysql_async::TxOpts::default())
        .await
        .unwrap();
    tx.exec_drop(
        "INSERT INTO consent (userid, consent_type_id, consent_time, consent_flag, \
         consent_not_required, source) \
         SELECT ?, id, 6, 1, 0, 'php' FROM consent_type WHERE shortname = 'STATSEXPORT'",
        (a,),
    )
    .await
    .unwrap();
    let mut g = group_conn(&db).await;
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        apply(
            &mut g,
            &[
                flip("bbbb2222", "STATSEXPORT", true),
                flip("aaaa1111", "STATSEXPORT", true),
            ],
            1000,
        ),
    )
    .await
    .expect("the group must not wait for the writer");
    assert_eq!(
        out,
        vec![
            FlipOutcome::Applied {
                userid: b,
                recorded: true
            },
            FlipOutcome::Applied {
                userid: a,
                recorded: true
            },
        ]
    );
    g.disconnect().await;
    tx.rollback().await.unwrap();
    let sources: Vec<String> = c
        .query("SELECT source FROM consent ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        sources,
        ["old", "src-STATSEXPORT-true", "src-STATSEXPORT-true"]
    );
}

/// A server writing its binary log as statements refuses writes under READ
/// COMMITTED: there a group connection stays in REPEATABLE READ, looks the
/// keys up apart, and decides the same.
#[tokio::test]
async fn statement_binlog_servers_get_the_repeatable_read_plan() {
    let server = boinc_db::testing::PrivateMariaDb::start_with(&[
        "--log-bin=mysql-bin",
        "--server-id=1",
        "--binlog-format=STATEMENT",
    ])
    .await;
    let settings = server.settings("flips");
    boinc_db::schema::init(&settings).await.unwrap();
    let mut c = boinc_db::mysql_async::Conn::new(settings.opts())
        .await
        .unwrap();
    c.query_drop("UPDATE consent_type SET enabled = 1")
        .await
        .unwrap();
    let a = insert_account(&mut c, 1, "aaaa1111").await;
    let b = insert_account(&mut c, 2, "bbbb2222").await;
    let mut g = GroupConn::connect(settings.opts()).await.unwrap().unwrap();
    assert!(!g.read_committed());
    let out = apply(
        &mut g,
        &[
            flip("aaaa1111", "STATSEXPORT", true),
            flip("aaaa1111", "STATSEXPORT", true),
            flip("aaaa1111", "STATSEXPORT", false),
            flip("AAAA1111", "STATSEXPORT", true),
            flip("bbbb2222", "ENROLL", false),
            flip("bbbb2222", "STATSEXPORT\u{200b}", true),
        ],
        1000,
    )
    .await;
    use FlipOutcome::*;
    assert_eq!(
        out,
        vec![
            Applied {
                userid: a,
                recorded: true
            },
            Applied {
                userid: a,
                recorded: false
            },
            Applied {
                userid: a,
                recorded: true
            },
            Busy,
            EnrollWithdrawal { userid: b },
            UnknownType { userid: b },
        ]
    );
    g.disconnect().await;
    let flags: Vec<(i64, i64)> = c
        .query("SELECT userid, consent_flag FROM consent ORDER BY id")
        .await
        .unwrap();
    assert_eq!(flags, [(a, 1), (a, 0)]);
}
