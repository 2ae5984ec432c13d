//! Erasure on a database with upstream BOINC's whole schema (every table,
//! see fixtures/upstream_tables.sql) holding Fiona, the data subject, and
//! other people: afterwards a `mariadb-dump` of the whole database holds
//! nothing that identifies her, and everyone else's rows are exactly as
//! they were.

use boinc_db::account::erase::{erase, Mode};
use boinc_db::models::cpid_string;
use boinc_db::mysql_async::prelude::*;
use boinc_db::mysql_async::Conn;

#[path = "fixtures/people.rs"]
mod people;

use people::{FIONA, OLAF, TESS};

/// Everything the other two people have that no row ties to Fiona.
async fn others(c: &mut Conn) -> Vec<(i64, people::TableRows)> {
    vec![
        (OLAF, people::untouched_by(c, OLAF, FIONA).await),
        (TESS, people::untouched_by(c, TESS, FIONA).await),
    ]
}

/// Each of those rows is still there, unchanged.
async fn assert_others_unchanged(c: &mut Conn, before: &[(i64, people::TableRows)]) {
    for (who, rows) in before {
        assert!(rows.iter().any(|(_, r)| !r.is_empty()));
        let now = people::about_strings(c, *who).await;
        let missing = people::missing_after(rows, &now);
        assert!(
            missing.is_empty(),
            "rows of {who} changed or gone:\n{}",
            missing.join("\n")
        );
    }
}

#[tokio::test]
async fn fixture_fills_every_upstream_table_for_her_and_for_others() {
    let db = people::database().await;
    let mut c = db.conn().await;
    people::check_classification(&mut c).await;
    let tables = people::base_tables(&mut c).await;
    // Upstream's 46 tables, this project's 6 (terms_version, consent_terms,
    // consent_type_audit, rpc_limit, rpc_commit, account_audit).
    assert_eq!(tables.len(), 52, "{tables:?}");
    for who in [FIONA, OLAF] {
        for (t, rows) in people::about(&mut c, who).await {
            if t == "user_deleted" || t == "host_deleted" {
                continue; // nobody here is deleted yet
            }
            assert!(!rows.is_empty(), "no row about {who} in {t}");
        }
    }
    // Every identifier of hers is in the database to begin with.
    let dump = people::dump(&db);
    for needle in people::FIONA_IDENTIFIERS
        .iter()
        .chain(people::FIONA_HOST_CPIDS)
    {
        assert!(
            dump.to_lowercase().contains(&needle.to_lowercase()),
            "fixture lacks {needle}"
        );
    }
}

#[tokio::test]
async fn obfuscate_leaves_nothing_that_identifies_her_anywhere() {
    let db = people::database().await;
    let mut c = db.conn().await;
    let others_before = others(&mut c).await;
    let public_cpid = cpid_string(
        "cafe0f10a0f10a0f10a0f10a0f10acafe",
        "fiona.fjord@example.org",
    );

    let o = erase(&mut c, FIONA, Mode::Obfuscate, "admin-o")
        .await
        .unwrap();
    assert_eq!((o.hosts, o.consent_rows_kept), (2, 3));

    let left = people::identifying_lines(&people::dump(&db));
    assert!(
        left.is_empty(),
        "still in the database:\n{}",
        left.join("\n")
    );
    assert_others_unchanged(&mut c, &others_before).await;

    // The anonymous row: three unrelated markers, none of them the key.
    let (email, name, auth, cpid, hash): (String, String, String, String, String) = c
        .exec_first(
            "SELECT email_addr, name, authenticator, cross_project_id, passwd_hash FROM user \
             WHERE id = ?",
            (FIONA,),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(auth.starts_with("deleted_") && email.starts_with("deleted_"));
    assert!(
        auth != name && auth != email && auth != hash,
        "the key is public"
    );
    assert_eq!(cpid.len(), 32);
    assert_ne!(cpid_string(&cpid, &email), public_cpid);
    // Stats sites got the id they knew, computed before anything changed.
    let ud: Vec<(i64, String)> = c
        .exec(
            "SELECT userid, public_cross_project_id FROM user_deleted WHERE userid = ?",
            (FIONA,),
        )
        .await
        .unwrap();
    assert_eq!(ud, vec![(FIONA, public_cpid)]);
    let hd: Vec<(i64, String)> = c
        .query("SELECT hostid, public_cross_project_id FROM host_deleted WHERE hostid > 2000 ORDER BY hostid")
        .await
        .unwrap();
    assert_eq!(
        hd,
        vec![
            (2001, "hostcpid0f10a2001".into()),
            (2002, "hostcpid0f10a2002".into())
        ]
    );
    // Donations: amounts, dates and the project's reference stay, the payer
    // does not.
    let d: (f64, i64, String, String, String, String) = c
        .exec_first(
            "SELECT payment_amount, payment_time, txn_id, email_addr, payer_email, payer_name \
             FROM donation_paypal WHERE id = 11001",
            (),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        d,
        (
            25.0,
            1680000100,
            "TXN-F-0001".into(),
            "".into(),
            "".into(),
            "".into()
        )
    );
    // Her thread with Olaf's reply stays, untitled; her lone thread goes;
    // Olaf's thread keeps its title and loses her reply from its count.
    let threads: Vec<(i64, String, i64)> = c
        .query("SELECT id, title, replies FROM thread ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        threads,
        vec![
            (8001, "[deleted]".into(), 0),
            (8003, "Cooling for oak cases".into(), 0),
            (8004, "Thorny questions".into(), 0)
        ]
    );
    let posts: Vec<i64> = c.query("SELECT id FROM post ORDER BY id").await.unwrap();
    assert_eq!(posts, vec![9002, 9004, 9006]);
    // Notices of her messages and friend request go with them; others stay.
    let notices: Vec<i64> = c.query("SELECT id FROM notify ORDER BY id").await.unwrap();
    assert_eq!(notices, vec![14004, 14005]);
    // Consent evidence stays, keyed by the account id.
    let consent: Vec<(i64, Option<i64>)> = c
        .exec(
            "SELECT c.id, t.terms_version_id FROM consent c LEFT JOIN consent_terms t \
             ON t.consent_id = c.id WHERE c.userid = ? ORDER BY c.id",
            (FIONA,),
        )
        .await
        .unwrap();
    assert_eq!(consent, vec![(1, Some(1)), (2, None), (3, None)]);
    // Credit stays (team and project totals do not change).
    let credit: Option<f64> = c
        .exec_first("SELECT total FROM credit_user WHERE userid = ?", (FIONA,))
        .await
        .unwrap();
    assert_eq!(credit, Some(250.5));
}

/// After a wipe only these tables still have rows tied to her account id,
/// and only ids: the audit of the request, the deletion record stats sites
/// read, and rows that record what other people or the project did
/// (a thread others replied in, moderation votes she cast, jobs).
const LEFT_AFTER_WIPE: &[&str] = &[
    "account_audit",
    "user_deleted",
    "thread",
    "banishment_vote",
    "banishment_votes",
    "batch",
    "assignment",
];

#[tokio::test]
async fn wipe_removes_her_from_every_table() {
    let db = people::database().await;
    let mut c = db.conn().await;
    let others_before = others(&mut c).await;

    let o = erase(&mut c, FIONA, Mode::Wipe, "admin-w").await.unwrap();
    assert_eq!((o.hosts, o.consent_rows_removed), (2, 3));

    let left = people::identifying_lines(&people::dump(&db));
    assert!(
        left.is_empty(),
        "still in the database:\n{}",
        left.join("\n")
    );
    assert_others_unchanged(&mut c, &others_before).await;

    let mut tied: Vec<String> = people::about(&mut c, FIONA)
        .await
        .into_iter()
        .filter(|(_, rows)| !rows.is_empty())
        .map(|(t, _)| t)
        .collect();
    tied.sort();
    let mut want: Vec<String> = LEFT_AFTER_WIPE.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(tied, want);
    // Results stay for the science, without her or her computers.
    let res: Vec<(i64, i64, i64)> = c
        .query("SELECT id, userid, hostid FROM result WHERE id IN (5001, 5002) ORDER BY id")
        .await
        .unwrap();
    assert_eq!(res, vec![(5001, 0, 0), (5002, 0, 0)]);
}

#[tokio::test]
async fn wipe_after_obfuscate_leaves_nothing_either() {
    let db = people::database().await;
    let mut c = db.conn().await;
    let others_before = others(&mut c).await;
    erase(&mut c, FIONA, Mode::Obfuscate, "a").await.unwrap();
    let ud_before: Vec<(i64, String, f64)> = c
        .query("SELECT * FROM user_deleted ORDER BY userid")
        .await
        .unwrap();
    let hd_before: Vec<(i64, String, f64)> = c
        .query("SELECT * FROM host_deleted ORDER BY hostid")
        .await
        .unwrap();
    erase(&mut c, FIONA, Mode::Wipe, "a").await.unwrap();
    let left = people::identifying_lines(&people::dump(&db));
    assert!(
        left.is_empty(),
        "still in the database:\n{}",
        left.join("\n")
    );
    assert_others_unchanged(&mut c, &others_before).await;
    // The records stats sites read are the first ones, unchanged.
    let ud: Vec<(i64, String, f64)> = c
        .query("SELECT * FROM user_deleted ORDER BY userid")
        .await
        .unwrap();
    let hd: Vec<(i64, String, f64)> = c
        .query("SELECT * FROM host_deleted ORDER BY hostid")
        .await
        .unwrap();
    assert_eq!((ud, hd), (ud_before, hd_before));
}

/// Begin a transaction on `writer` that changes (and so locks) rows of
/// other people in the tables an erase of Fiona has to scan.
async fn hold_others_rows(writer: &mut Conn) {
    // Each by its key: in any isolation level it locks that row alone.
    writer.query_drop("BEGIN").await.unwrap();
    for sql in [
        "UPDATE private_messages SET opened = 1 WHERE id = 10003",
        "UPDATE thread SET views = views + 1 WHERE id = 8004",
        "UPDATE notify SET create_time = create_time + 1 WHERE id = 14005",
        "UPDATE friend SET reciprocated = 1 WHERE user_src = 1002 AND user_dest = 1003",
        "UPDATE team SET nusers = nusers + 1 WHERE id = 3003",
        "UPDATE team_admin SET rights = 2 WHERE teamid = 3003 AND userid = 1002",
        "UPDATE post SET votes = votes + 1 WHERE id = 9006",
    ] {
        writer.query_drop(sql).await.unwrap();
    }
}

/// Erase Fiona while `hold_others_rows` holds its locks: it must finish
/// before that transaction ends (it never waits on someone else's rows).
async fn erase_beside_writer(c: &mut Conn, writer: &mut Conn, mode: Mode) {
    hold_others_rows(writer).await;
    let erased = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        erase(c, FIONA, mode, "a"),
    )
    .await
    .unwrap_or_else(|_| panic!("{mode:?} waited for rows that are not hers"));
    erased.unwrap();
    writer.query_drop("COMMIT").await.unwrap();
    let kept: Option<(i64, i64)> = c
        .query_first(
            "SELECT (SELECT views FROM thread WHERE id = 8004), \
             (SELECT opened FROM private_messages WHERE id = 10003)",
        )
        .await
        .unwrap();
    assert_eq!(kept, Some((2, 1)), "{mode:?}: the writer's changes");
}

/// Rows of other people that someone is writing (locked) in the tables an
/// erase has to scan: the erase neither waits for them nor locks the rest
/// of those tables, so it finishes while that writer's transaction is still
/// open, and both changes are kept.
#[tokio::test]
async fn erase_passes_rows_others_are_writing() {
    for mode in [Mode::Obfuscate, Mode::Wipe] {
        let db = people::database().await;
        let mut c = db.conn().await;
        let mut writer = db.conn().await;
        erase_beside_writer(&mut c, &mut writer, mode).await;
        let left = people::identifying_lines(&people::dump(&db));
        assert!(left.is_empty(), "{mode:?}:\n{}", left.join("\n"));
    }
}

/// A server writing its binary log as statements refuses writes under READ
/// COMMITTED: there the erase runs in REPEATABLE READ, and still does all
/// of it.
#[tokio::test]
async fn erase_works_on_a_statement_binlog_server() {
    let server = boinc_db::testing::PrivateMariaDb::start_with(&[
        "--log-bin=mysql-bin",
        "--server-id=1",
        "--binlog-format=STATEMENT",
    ])
    .await;
    let settings = server.settings("erase_stmt");
    let mut c = boinc_db::mysql_async::Conn::new(settings.server_opts())
        .await
        .unwrap();
    c.query_drop("CREATE DATABASE erase_stmt CHARACTER SET utf8mb4")
        .await
        .unwrap();
    let mut c = boinc_db::mysql_async::Conn::new(settings.opts())
        .await
        .unwrap();
    boinc_db::testing::run_sql(&mut c, people::UPSTREAM_TABLES).await;
    boinc_db::schema::upgrade(&mut c).await.unwrap();
    boinc_db::testing::run_sql(&mut c, people::PEOPLE).await;
    let format: Option<String> = c.query_first("SELECT @@binlog_format").await.unwrap();
    assert_eq!(format.as_deref(), Some("STATEMENT"));
    // REPEATABLE READ there, and still no waiting on others' rows.
    let mut writer = boinc_db::mysql_async::Conn::new(settings.opts())
        .await
        .unwrap();
    erase_beside_writer(&mut c, &mut writer, Mode::Obfuscate).await;
    erase(&mut c, OLAF, Mode::Wipe, "a").await.unwrap();
    let users: Vec<(i64, bool)> = c
        .query("SELECT id, authenticator LIKE 'deleted%' FROM user ORDER BY id")
        .await
        .unwrap();
    assert_eq!(users, vec![(FIONA, true), (TESS, false)]);
}
