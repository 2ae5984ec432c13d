//! Consent as proof: create_account links each ENROLL consent row to the
//! terms version in force, stored once under the SHA-256 of exactly the
//! text get_project_config serves. BOINC's own consent columns and the
//! `latest_consent` view are unchanged.

mod common;

use std::time::{Duration, Instant};

use boinc_db::consent::terms;
use common::*;
use mysql_async::prelude::*;

/// The terms text as a client reads it from get_project_config.
fn served_terms(body: &str) -> Option<String> {
    let open = "<terms_of_use>\n";
    let start = body.find(open)? + open.len();
    let end = body.find("\n</terms_of_use>")?;
    Some(
        quick_xml::escape::unescape(&body[start..end])
            .expect("valid XML escapes")
            .into_owned(),
    )
}

/// Poll get_project_config until it serves `expected` (the cache refreshes
/// on a timer); returns the served text.
async fn wait_for_terms(h: &Harness, expected: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let body = h.get("get_project_config.php").await;
        let served = served_terms(&body);
        if served.as_deref() == Some(expected) {
            return served.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "get_project_config never served {expected:?}; last: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (consent id, type id, time, flag, not_required, source) of a user's rows.
type ConsentRow = (i64, i64, i64, i64, i64, String);

async fn consent_rows(h: &Harness, userid: i64) -> Vec<ConsentRow> {
    let mut c = h.conn().await;
    c.exec(
        "SELECT id, consent_type_id, consent_time, consent_flag, consent_not_required, source \
         FROM consent WHERE userid = ? ORDER BY consent_time, id",
        (userid,),
    )
    .await
    .unwrap()
}

async fn linked_version(h: &Harness, consent_id: i64) -> Option<i64> {
    let mut c = h.conn().await;
    c.exec_first(
        "SELECT terms_version_id FROM consent_terms WHERE consent_id = ?",
        (consent_id,),
    )
    .await
    .unwrap()
}

async fn latest(h: &Harness, userid: i64) -> Vec<(i64, i64, i64)> {
    let mut c = h.conn().await;
    c.exec(
        "SELECT userid, consent_type_id, consent_flag FROM latest_consent WHERE userid = ?",
        (userid,),
    )
    .await
    .unwrap()
}

async fn columns(h: &Harness, table: &str) -> Vec<String> {
    let mut c = h.conn().await;
    c.exec(
        "SELECT column_name FROM information_schema.columns \
         WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position",
        (table,),
    )
    .await
    .unwrap()
}

const CONSENT: &[(&str, &str)] = &[("consent_flag", "1"), ("source", "client")];

#[tokio::test]
async fn terms_versions_follow_the_served_terms_file() {
    let h = Harness::consent_project("").await;
    let enroll = h.type_id("ENROLL").await;
    let terms_path = h.dir.path().join("terms_of_use.txt");

    // Version 1: the terms the project started with. The ops tools read the
    // file the same way (to mark the current version).
    let served1 = wait_for_terms(&h, TERMS).await;
    assert_eq!(
        terms::read_terms_file(&terms_path).as_deref(),
        Some(served1.as_str())
    );
    h.new_account("v1@example.org", "Version One", CONSENT)
        .await;

    // The project edits its terms (whitespace around the text is trimmed
    // when served, so it is trimmed when hashed).
    let text2 = "Terms v2: be nice & share <GPU> time too.\n\"No\" 'cheating'.";
    let edited_at = boinc_db::now();
    std::fs::write(&terms_path, format!("\n  {text2}\r\n\n")).unwrap();
    let served2 = wait_for_terms(&h, text2).await;
    assert_eq!(
        terms::read_terms_file(&terms_path).as_deref(),
        Some(served2.as_str())
    );
    h.new_account("v2@example.org", "Version Two", CONSENT)
        .await;

    // The file rewritten with the same text (only surrounding whitespace
    // differs): the same version, nothing new stored.
    std::fs::write(&terms_path, format!("{text2}\n")).unwrap();
    h.new_account("v2b@example.org", "Version Two B", CONSENT)
        .await;
    // A legacy client (no consent params): no consent row, no link.
    h.new_account("legacy@example.org", "Legacy", &[]).await;
    // An account manager that did not ask its user: not required.
    h.new_account(
        "am@example.org",
        "Managed",
        &[("consent_flag", "0"), ("source", "GridRepublic")],
    )
    .await;

    let mut c = h.conn().await;
    let versions = terms::terms_versions(&mut c).await.unwrap();
    assert_eq!(versions.len(), 2, "{versions:?}");
    let (v1, v2) = (&versions[0], &versions[1]);
    assert_ne!(v1.id, v2.id);
    assert_eq!(v1.sha256, terms::sha256_hex(&served1));
    assert_eq!(v2.sha256, terms::sha256_hex(&served2));
    assert_eq!(
        terms::terms_text(&mut c, v1.id).await.unwrap().as_deref(),
        Some(served1.as_str())
    );
    assert_eq!(
        terms::terms_text(&mut c, v2.id).await.unwrap().as_deref(),
        Some(served2.as_str())
    );
    assert!(v2.first_seen >= edited_at, "{v2:?} edited at {edited_at}");
    assert!(v1.first_seen <= v2.first_seen);

    // Each consent row: BOINC's columns as SPEC says, plus our link.
    let mut linked = Vec::new();
    for (email, version) in [
        ("v1@example.org", v1.id),
        ("v2@example.org", v2.id),
        ("v2b@example.org", v2.id),
    ] {
        let u = h.user(email).await.unwrap();
        let rows = consent_rows(&h, u.id).await;
        assert_eq!(rows.len(), 1, "{email}: {rows:?}");
        let (id, ct, time, flag, not_required, source) = rows[0].clone();
        assert_eq!(
            (ct, time, flag, not_required, source.as_str()),
            (enroll, u.create_time, 1, 0, "client"),
            "{email}"
        );
        assert_eq!(linked_version(&h, id).await, Some(version), "{email}");
        assert_eq!(latest(&h, u.id).await, vec![(u.id, enroll, 1)], "{email}");
        linked.push(id);
    }
    let legacy = h.user("legacy@example.org").await.unwrap();
    assert!(consent_rows(&h, legacy.id).await.is_empty());
    assert!(latest(&h, legacy.id).await.is_empty());
    let am = h.user("am@example.org").await.unwrap();
    let rows = consent_rows(&h, am.id).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].1,
            rows[0].2,
            rows[0].3,
            rows[0].4,
            rows[0].5.as_str()
        ),
        (enroll, am.create_time, 0, 1, "GridRepublic")
    );
    assert_eq!(latest(&h, am.id).await, vec![(am.id, enroll, 0)]);

    // Only consent rows written by create_account are linked; no row
    // points at a consent that does not exist.
    let links: Vec<(i64, i64)> = c
        .query("SELECT consent_id, terms_version_id FROM consent_terms ORDER BY consent_id")
        .await
        .unwrap();
    let orphans: i64 = c
        .query_first(
            "SELECT COUNT(*) FROM consent_terms t LEFT JOIN consent c ON c.id = t.consent_id \
             WHERE c.id IS NULL",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(orphans, 0);
    for id in &linked {
        assert!(links.iter().any(|(c, _)| c == id), "{links:?}");
    }
    assert!(links.len() <= 4, "{links:?}");

    // BOINC's tables and view keep their exact columns.
    assert_eq!(
        columns(&h, "consent").await,
        [
            "id",
            "userid",
            "consent_type_id",
            "consent_time",
            "consent_flag",
            "consent_not_required",
            "source"
        ]
    );
    assert_eq!(
        columns(&h, "latest_consent").await,
        ["userid", "consent_type_id", "consent_flag"]
    );

    // The report: ENROLL accepted once for v1, twice for v2.
    let report = boinc_db::consent::report::consent_report(&mut c)
        .await
        .unwrap();
    let e = report.iter().find(|t| t.shortname == "ENROLL").unwrap();
    assert_eq!(
        (e.consented, e.withdrawn, e.not_required, e.never_asked),
        (3, 0, 1, 1)
    );
    assert_eq!(e.by_terms_version, vec![(Some(v1.id), 1), (Some(v2.id), 2)]);
}

#[tokio::test]
async fn latest_consent_breaks_same_second_ties_by_id() {
    // The view our report relies on: one latest row per user and type,
    // the later insert winning a same-second tie.
    let h = Harness::consent_project("").await;
    wait_for_terms(&h, TERMS).await;
    h.new_account("tie@example.org", "Tie", CONSENT).await;
    let u = h.user("tie@example.org").await.unwrap();
    let mut c = h.conn().await;
    let stats = h.type_id("STATSEXPORT").await;
    for flag in [1, 0, 1, 0] {
        c.exec_drop(
            "INSERT INTO consent (userid, consent_type_id, consent_time, consent_flag, \
             consent_not_required, source) VALUES (?, ?, 5000, ?, 0, 'test')",
            (u.id, stats, flag),
        )
        .await
        .unwrap();
    }
    let mut rows = latest(&h, u.id).await;
    rows.sort();
    let enroll_id = h.type_id("ENROLL").await;
    let mut expected = vec![(u.id, enroll_id, 1), (u.id, stats, 0)];
    expected.sort();
    assert_eq!(rows, expected);
    let history = terms::user_history(&mut c, u.id).await.unwrap();
    let flags: Vec<i64> = history.iter().map(|e| e.consent_flag).collect();
    // ENROLL at create_time (now) sorts after the rows at 5000.
    assert_eq!(flags, [1, 0, 1, 0, 1]);
    assert!(history[4].terms_version_id.is_some());
}
