//! Terms versioning and consent reports against real MariaDB.

use boinc_db::consent::terms;
use boinc_db::consent::NewConsent;
use boinc_db::mysql_async::prelude::*;
use boinc_db::queries;
use boinc_db::testing::fixtures::{new_user, type_id};
use boinc_db::testing::TestDb;

async fn user(conn: &mut boinc_db::mysql_async::Conn, n: i64) -> i64 {
    let email = format!("u{n}@example.org");
    let name = format!("user {n}");
    let auth = format!("auth{n}");
    queries::insert_user(conn, &new_user(1000 + n, &email, &name, &auth))
        .await
        .unwrap()
}

async fn consent(
    conn: &mut boinc_db::mysql_async::Conn,
    userid: i64,
    ct: i64,
    time: i64,
    flag: bool,
    not_required: bool,
) -> i64 {
    boinc_db::consent::insert(
        conn,
        &NewConsent {
            userid,
            consent_type_id: ct,
            consent_time: time,
            consent_flag: flag,
            consent_not_required: not_required,
            source: "test",
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn same_text_is_stored_once_and_changed_text_is_a_new_version() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let a = terms::ensure_terms_version(&mut conn, "Terms A", 1)
        .await
        .unwrap();
    let a2 = terms::ensure_terms_version(&mut conn, "Terms A", 2)
        .await
        .unwrap();
    let b = terms::ensure_terms_version(&mut conn, "Terms B", 3)
        .await
        .unwrap();
    assert_eq!(a, a2);
    assert_ne!(a, b);
    let versions = terms::terms_versions(&mut conn).await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0].sha256, terms::sha256_hex("Terms A"));
    assert_eq!(versions[0].first_seen, 1, "first sighting kept");
    assert_eq!(
        terms::terms_text(&mut conn, b).await.unwrap().as_deref(),
        Some("Terms B")
    );
}

#[tokio::test]
async fn report_counts_latest_state_per_type_and_enroll_by_version() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let enroll = type_id(&mut conn, "ENROLL").await;
    let stats = type_id(&mut conn, "STATSEXPORT").await;
    let v1 = terms::ensure_terms_version(&mut conn, "v1", 1)
        .await
        .unwrap();
    let v2 = terms::ensure_terms_version(&mut conn, "v2", 2)
        .await
        .unwrap();
    let mut users = Vec::new();
    for n in 0..7 {
        users.push(user(&mut conn, n).await);
    }
    // ENROLL: u0,u1 accepted v1; u2 accepted v2; u3 not required (AM); u4 consented without version
    for (u, v) in [
        (users[0], Some(v1)),
        (users[1], Some(v1)),
        (users[2], Some(v2)),
        (users[4], None),
    ] {
        let c = consent(&mut conn, u, enroll, 10, true, false).await;
        if let Some(v) = v {
            terms::link_consent_terms(&mut conn, c, v).await.unwrap();
        }
    }
    consent(&mut conn, users[3], enroll, 10, false, true).await;
    // STATSEXPORT: u0 consented; u1 consented then withdrew in the same second;
    // u2 withdrew then consented again
    consent(&mut conn, users[0], stats, 10, true, false).await;
    consent(&mut conn, users[1], stats, 20, true, false).await;
    consent(&mut conn, users[1], stats, 20, false, false).await;
    consent(&mut conn, users[2], stats, 5, false, false).await;
    consent(&mut conn, users[2], stats, 6, true, false).await;
    // a deleted user is not counted anywhere
    conn.exec_drop(
        "UPDATE user SET authenticator = 'deleted_123' WHERE id = ?",
        (users[6],),
    )
    .await
    .unwrap();
    consent(&mut conn, users[6], stats, 6, true, false).await;

    let report = boinc_db::consent::report::consent_report(&mut conn)
        .await
        .unwrap();
    let e = &report[0];
    assert_eq!(e.shortname, "ENROLL");
    assert_eq!(
        (e.consented, e.withdrawn, e.not_required, e.never_asked),
        (4, 0, 1, 1)
    );
    assert_eq!(
        e.by_terms_version,
        vec![(None, 1), (Some(v1), 2), (Some(v2), 1)]
    );
    let s = &report[1];
    assert_eq!(s.shortname, "STATSEXPORT");
    assert_eq!(
        (s.consented, s.withdrawn, s.not_required, s.never_asked),
        (2, 1, 0, 3)
    );
    assert!(s.by_terms_version.is_empty());
}

#[tokio::test]
async fn history_is_in_order_with_ties_in_insert_order_and_terms() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let enroll = type_id(&mut conn, "ENROLL").await;
    let stats = type_id(&mut conn, "STATSEXPORT").await;
    let u = user(&mut conn, 1).await;
    let v = terms::ensure_terms_version(&mut conn, "the terms", 1)
        .await
        .unwrap();
    let c = consent(&mut conn, u, enroll, 100, true, false).await;
    terms::link_consent_terms(&mut conn, c, v).await.unwrap();
    consent(&mut conn, u, stats, 200, true, false).await;
    consent(&mut conn, u, stats, 200, false, false).await;
    consent(&mut conn, u, stats, 150, true, false).await;
    let h = terms::user_history(&mut conn, u).await.unwrap();
    let seq: Vec<(&str, i64, i64)> = h
        .iter()
        .map(|e| (e.consent_type.as_str(), e.consent_time, e.consent_flag))
        .collect();
    assert_eq!(
        seq,
        vec![
            ("ENROLL", 100, 1),
            ("STATSEXPORT", 150, 1),
            ("STATSEXPORT", 200, 1),
            ("STATSEXPORT", 200, 0)
        ]
    );
    assert_eq!(
        h[0].terms_sha256.as_deref(),
        Some(terms::sha256_hex("the terms").as_str())
    );
    assert_eq!(h[1].terms_version_id, None);
}
