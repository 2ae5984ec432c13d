//! Grouped consent changes (`boinc_db::consent_flip`): one transaction,
//! each change decided as it would be alone.

use boinc_db::consent_flip::{self, Flip, FlipOutcome};
use boinc_db::mysql_async::prelude::*;
use boinc_db::queries;
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

#[tokio::test]
async fn one_group_decides_each_change_as_it_would_be_alone() {
    one_group(false).await;
}

/// The same group on a group connection (autocommit off, READ COMMITTED,
/// accounts found and locked in one statement).
#[tokio::test]
async fn a_group_connection_decides_the_same() {
    one_group(true).await;
}

async fn one_group(group_conn: bool) {
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
    let out = if group_conn {
        let mut g = consent_flip::GroupConn::connect(db.settings.opts())
            .await
            .unwrap();
        assert!(g.read_committed(), "binary log off here: READ COMMITTED");
        let out = g.apply_then(&group, 1000, || ()).await.unwrap();
        g.disconnect().await;
        out
    } else {
        consent_flip::apply(&mut c, &group, 1000).await.unwrap()
    };
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
            NoAccount,
            NoAccount,
            NoAccount,
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
        .chain([NoAccount, NoAccount])
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
    let stats = queries::consent_type_by_name(&mut c, "STATSEXPORT")
        .await
        .unwrap()
        .unwrap();
    let latest = queries::latest_consent(&mut c, a, stats.id)
        .await
        .unwrap()
        .unwrap();
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
    let err = consent_flip::apply(&mut c, &[flip("aaaa1111", "STATSEXPORT", true), bad], 1000)
        .await
        .expect_err("an over-long source fails the INSERT");
    assert!(err.to_string().contains("source"), "{err}");
    assert!(rows(&mut c).await.is_empty());
    // The connection is usable again (the transaction was rolled back).
    let out = consent_flip::apply(&mut c, &[flip("aaaa1111", "STATSEXPORT", true)], 1001)
        .await
        .unwrap();
    assert!(matches!(
        out[..],
        [FlipOutcome::Applied { recorded: true, .. }]
    ));
}

/// A group that has to wait for an account's lock sees what the holder
/// committed meanwhile, although the group's statement had already read
/// (and so taken its snapshot) before the wait: the latest flag is read
/// by a locking read, which sees the newest committed row. With a plain
/// read the holder's consent would be missed and recorded a second time.
#[tokio::test]
async fn a_group_waiting_for_a_lock_sees_what_the_holder_committed() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    c.query_drop("UPDATE consent_type SET enabled = 1 WHERE shortname = 'STATSEXPORT'")
        .await
        .unwrap();
    // B first: its row is locked (and read) before the wait for A's.
    let b = insert_account(&mut c, 1, "bbbb2222").await;
    let a = insert_account(&mut c, 2, "aaaa1111").await;
    assert!(b < a);

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

    let mut g = consent_flip::GroupConn::connect(db.settings.opts())
        .await
        .unwrap();
    let group = tokio::spawn(async move {
        let out = g
            .apply_then(
                &[
                    flip("bbbb2222", "STATSEXPORT", true),
                    flip("aaaa1111", "STATSEXPORT", true),
                ],
                1000,
                || (),
            )
            .await;
        g.disconnect().await;
        out
    });
    // Wait until the group's lock statement waits (on A).
    boinc_db::testing::wait_for_statement(&mut c, "SELECT u.id, u.authenticator%FOR UPDATE").await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    tx.commit().await.unwrap();

    let out = group.await.unwrap().unwrap();
    assert_eq!(
        out,
        vec![
            FlipOutcome::Applied {
                userid: b,
                recorded: true
            },
            FlipOutcome::Applied {
                userid: a,
                recorded: false
            },
        ]
    );
    let a_rows: Vec<String> = c
        .exec(
            "SELECT source FROM consent WHERE userid = ? ORDER BY id",
            (a,),
        )
        .await
        .unwrap();
    assert_eq!(a_rows, ["holder"], "A's consent recorded once");
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
    let mut g = consent_flip::GroupConn::connect(settings.opts())
        .await
        .unwrap();
    assert!(!g.read_committed());
    let out = g
        .apply_then(
            &[
                flip("aaaa1111", "STATSEXPORT", true),
                flip("aaaa1111", "STATSEXPORT", true),
                flip("aaaa1111", "STATSEXPORT", false),
                flip("AAAA1111", "STATSEXPORT", true),
                flip("bbbb2222", "ENROLL", false),
                flip("bbbb2222", "STATSEXPORT\u{200b}", true),
            ],
            1000,
            || (),
        )
        .await
        .unwrap();
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
            NoAccount,
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
