//! The consent-type operations against a real MariaDB: each operation, each
//! refusal, the audit trail, and the database's own refusal to delete.

mod common;

use boinc_db::mysql_async::prelude::*;
use boinc_db::testing::TestDb;
use boinc_ops::{ConsentOps, OpsError};
use common::{audit, get_type, snapshot};

#[tokio::test]
async fn ops_list_shows_predefined_types() {
    let db = TestDb::new().await;
    let ops = ConsentOps::new(db.pool());
    let names: Vec<String> = ops
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.shortname)
        .collect();
    assert!(names.contains(&"ENROLL".to_owned()), "{names:?}");
    assert!(names.contains(&"STATSEXPORT".to_owned()), "{names:?}");
}

#[tokio::test]
async fn ops_add_starts_disabled_project_specific_and_is_audited() {
    let db = TestDb::new().await;
    let ops = ConsentOps::new(db.pool());
    let before = boinc_db::now();
    let t = ops
        .add("alice", "NEWSLETTER", "  Send me the project newsletter.  ")
        .await
        .unwrap();
    assert_eq!(t.shortname, "NEWSLETTER");
    assert_eq!(t.description, "Send me the project newsletter.");
    assert_eq!((t.enabled, t.project_specific, t.privacypref), (0, 1, 0));
    assert_eq!(get_type(&db, "NEWSLETTER").await.unwrap(), t);
    let a = audit(&db).await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].actor, "alice");
    assert_eq!(a[0].action, "add");
    assert_eq!(a[0].shortname, "NEWSLETTER");
    assert_eq!(a[0].consent_type_id, t.id);
    assert_eq!(a[0].new_value, "Send me the project newsletter.");
    assert!(a[0].change_time >= before && a[0].change_time <= boinc_db::now());
}

#[tokio::test]
async fn ops_add_refuses_duplicate_shortname() {
    let db = TestDb::new().await;
    let ops = ConsentOps::new(db.pool());
    ops.add("a", "DUP", "first").await.unwrap();
    let snap = snapshot(&db).await;
    for name in ["DUP", "ENROLL"] {
        let e = ops.add("a", name, "second").await.unwrap_err();
        assert!(
            matches!(e, OpsError::Duplicate(ref n) if n == name),
            "{e:?}"
        );
    }
    assert_eq!(snapshot(&db).await, snap, "a refused add changed something");
}

#[tokio::test]
async fn ops_add_refuses_bad_shortnames() {
    let db = TestDb::new().await;
    let ops = ConsentOps::new(db.pool());
    let snap = snapshot(&db).await;
    let too_long = "A".repeat(192);
    for bad in [
        "lowercase",
        "Mixed",
        "HAS SPACE",
        " LEADING",
        "TRAILING ",
        "",
        "DASH-ED",
        "ÜML",
        too_long.as_str(),
    ] {
        let e = ops.add("a", bad, "desc").await.unwrap_err();
        assert!(
            matches!(e, OpsError::InvalidShortname(..)),
            "{bad:?}: {e:?}"
        );
        assert!(e.is_user_error());
    }
    assert_eq!(snapshot(&db).await, snap);
    // The longest allowed name fits the column.
    let max = "B".repeat(191);
    ops.add("a", &max, "desc").await.unwrap();
    assert!(get_type(&db, &max).await.is_some());
}

#[tokio::test]
async fn ops_add_refuses_empty_or_oversized_description() {
    let db = TestDb::new().await;
    let ops = ConsentOps::new(db.pool());
    let snap = snapshot(&db).await;
    let long = "x".repeat(256);
    for bad in ["", "   ", long.as_str(), "two\nlines"] {
        let e = ops.add("a", "GOOD_NAME", bad).await.unwrap_err();
        assert!(
            matches!(e, OpsError::InvalidDescription(_)),
            "{bad:?}: {e:?}"
        );
    }
    assert_eq!(snapshot(&db).await, snap);
    // 255 multi-byte characters are fine (the column counts characters).
    ops.add("a", "GOOD_NAME", &"é".repeat(255)).await.unwrap();
}

#[tokio::test]
async fn ops_enable_disable_privacypref_are_audited() {
    let db = TestDb::new().await;
    let ops = ConsentOps::new(db.pool());
    let c = ops.set_enabled("bob", "ENROLL", true).await.unwrap();
    assert!(c.changed);
    assert_eq!(c.consent_type.enabled, 1);
    assert_eq!(get_type(&db, "ENROLL").await.unwrap().enabled, 1);

    let c = ops.set_privacypref("bob", "ENROLL", true).await.unwrap();
    assert!(c.changed);
    assert_eq!(get_type(&db, "ENROLL").await.unwrap().privacypref, 1);

    let c = ops.set_privacypref("carol", "ENROLL", false).await.unwrap();
    assert!(c.changed);
    let c = ops.set_enabled("carol", "ENROLL", false).await.unwrap();
    assert!(c.changed);
    let t = get_type(&db, "ENROLL").await.unwrap();
    assert_eq!((t.enabled, t.privacypref), (0, 0));

    // Newest first.
    let a = audit(&db).await;
    let got: Vec<(&str, &str, &str, &str)> = a
        .iter()
        .map(|e| {
            (
                e.actor.as_str(),
                e.action.as_str(),
                e.old_value.as_str(),
                e.new_value.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("carol", "disable", "1", "0"),
            ("carol", "privacypref_off", "1", "0"),
            ("bob", "privacypref_on", "0", "1"),
            ("bob", "enable", "0", "1"),
        ]
    );
    assert!(a
        .iter()
        .all(|e| e.shortname == "ENROLL" && e.consent_type_id == t.id));
    let h = ops.history(Some("ENROLL"), 2).await.unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].action, "disable");
    assert!(ops
        .history(Some("STATSEXPORT"), 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn ops_setting_current_value_changes_nothing() {
    let db = TestDb::new().await;
    let ops = ConsentOps::new(db.pool());
    let snap = snapshot(&db).await;
    let c = ops.set_enabled("a", "ENROLL", false).await.unwrap();
    assert!(!c.changed);
    let c = ops.set_privacypref("a", "STATSEXPORT", true).await.unwrap();
    assert!(!c.changed);
    assert_eq!(snapshot(&db).await, snap);
}

#[tokio::test]
async fn ops_unknown_type_is_refused() {
    let db = TestDb::new().await;
    let ops = ConsentOps::new(db.pool());
    let snap = snapshot(&db).await;
    for e in [
        ops.set_enabled("a", "NOPE", true).await.unwrap_err(),
        ops.set_privacypref("a", "NOPE", true).await.unwrap_err(),
        ops.set_enabled("a", "enroll", true)
            .await
            .map(|_| ())
            .unwrap_err(),
        ops.history(Some("NOPE"), 10).await.unwrap_err(),
        ops.get("NOPE").await.unwrap_err(),
    ] {
        assert!(matches!(e, OpsError::UnknownType(_)), "{e:?}");
    }
    assert_eq!(snapshot(&db).await, snap);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ops_concurrent_adds_of_one_name_yield_one_type() {
    let db = TestDb::new().await;
    let ops = ConsentOps::new(db.pool());
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let ops = ops.clone();
            tokio::spawn(async move { ops.add(&format!("u{i}"), "RACE", "same name").await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        // Bounded: a lock-ordering bug would otherwise hang the run.
        let r = tokio::time::timeout(std::time::Duration::from_secs(30), t)
            .await
            .expect("concurrent add hung")
            .unwrap();
        match r {
            Ok(_) => ok += 1,
            Err(OpsError::Duplicate(_)) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(audit(&db).await.len(), 1);
}

#[tokio::test]
async fn ops_raw_sql_delete_of_a_consent_type_fails() {
    let db = TestDb::new().await;
    let ops = ConsentOps::new(db.pool());
    let unused = ops.add("a", "UNUSED", "no consent rows").await.unwrap();
    let enroll = get_type(&db, "ENROLL").await.unwrap();
    let mut c = db.conn().await;
    boinc_db::testing::fixtures::enroll(&mut c, 1, 1, "test").await;
    let snap = snapshot(&db).await;
    for id in [unused.id, enroll.id] {
        let r = c
            .exec_drop("DELETE FROM consent_type WHERE id = ?", (id,))
            .await;
        assert!(r.is_err(), "DELETE of consent type {id} succeeded");
    }
    assert!(c.query_drop("DELETE FROM consent_type").await.is_err());
    assert_eq!(snapshot(&db).await, snap);
}
