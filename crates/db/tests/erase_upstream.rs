//! Erasure on a database with upstream BOINC's whole schema (every table,
//! see fixtures/upstream_tables.sql) holding Fiona, the data subject, and
//! other people: afterwards a `mariadb-dump` of the whole database holds
//! nothing that identifies her, and everyone else's rows are exactly as
//! they were.

use boinc_db::erase::{erase, Mode};
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
    // Upstream's 46 tables, this project's 5 (terms_version, consent_terms,
    // consent_type_audit, rpc_limit, account_audit).
    assert_eq!(tables.len(), 51, "{tables:?}");
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
    let public_cpid = boinc_db::cpid(
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
    assert_ne!(boinc_db::cpid(&cpid, &email), public_cpid);
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
            (8003, "Cooling for oak cases".into(), 0)
        ]
    );
    let posts: Vec<i64> = c.query("SELECT id FROM post ORDER BY id").await.unwrap();
    assert_eq!(posts, vec![9002, 9004]);
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
