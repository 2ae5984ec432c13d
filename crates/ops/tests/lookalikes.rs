//! The admin CLI against look-alike input (issue 9 items 1 and 2): a
//! data-request export by email never hands over the record of an account
//! whose address merely collates equal, and consent-type commands never act
//! on a type whose name merely collates equal. Under every collation a
//! BOINC database may use.

mod common;

use boinc_db::mysql_async::prelude::*;
use boinc_db::testing::fixtures::{new_user, user_with_enroll};
use boinc_db::testing::{look_alikes, TestDb, NAME_COLLATIONS};
use common::cli;

/// Command-line arguments cannot hold NUL; every other look-alike can.
fn cli_look_alikes(s: &str) -> Vec<String> {
    look_alikes(s)
        .into_iter()
        .filter(|p| !p.contains('\0'))
        .collect()
}

async fn add_user(db: &TestDb, email: &str, auth: &str) -> i64 {
    let mut c = db.conn().await;
    let user = new_user(1_700_000_000, email, auth, auth);
    user_with_enroll(&mut c, &user, "secret-source-of-this-user").await
}

#[tokio::test]
async fn consent_history_by_email_exports_only_the_exact_address() {
    let db = TestDb::new().await;
    let id = add_user(&db, "nr@x.org", "owner").await;
    let other = add_user(&db, "other@x.org", "other").await;
    let mut c = db.conn().await;
    c.exec_drop(
        "UPDATE user SET previous_email_addr = 'old@x.org' WHERE id = ?",
        (other,),
    )
    .await
    .unwrap();
    for coll in NAME_COLLATIONS {
        db.collate_names(coll).await;
        for exact in ["nr@x.org", "NR@X.ORG"] {
            let o = cli(&db, &["consent", "history", "--email", exact, "--json"]).await;
            assert!(o.status.success(), "{coll}: {exact}: {o:?}");
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(v["user"]["id"], id, "{coll}");
        }
        for probe in cli_look_alikes("nr@x.org") {
            for json in [true, false] {
                let mut args = vec!["consent", "history", "--email", probe.as_str()];
                if json {
                    args.push("--json");
                }
                let o = cli(&db, &args).await;
                let (out, err) = (
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr),
                );
                assert_eq!(o.status.code(), Some(2), "{coll}: {probe:?}: {out} {err}");
                assert!(out.is_empty(), "{coll}: {probe:?} exported: {out}");
                assert!(
                    err.contains("no account has that email address"),
                    "{coll}: {probe:?}: {err}"
                );
            }
        }
        // A look-alike of someone's previous address does not point at them.
        for probe in cli_look_alikes("old@x.org") {
            let o = cli(&db, &["consent", "history", "--email", &probe]).await;
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{coll}: {probe:?}: {err}");
            assert!(!err.contains("--user"), "{coll}: {probe:?}: {err}");
            assert!(o.stdout.is_empty());
        }
        let o = cli(&db, &["consent", "history", "--email", "OLD@x.org"]).await;
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&format!("--user {other}")), "{coll}: {err}");
    }
}

/// Every consent type and its audit rows, to prove nothing changed.
async fn types_and_audit(db: &TestDb) -> (Vec<(i64, String, i64, i64)>, i64) {
    let mut c = db.conn().await;
    let types = c
        .query("SELECT id, shortname, enabled, privacypref FROM consent_type ORDER BY id")
        .await
        .unwrap();
    let audit: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM consent_type_audit")
        .await
        .unwrap();
    (types, audit.unwrap_or(0))
}

#[tokio::test]
async fn consent_type_commands_refuse_look_alike_names() {
    let db = TestDb::new().await;
    for coll in NAME_COLLATIONS {
        db.collate_names(coll).await;
        let before = types_and_audit(&db).await;
        for name in ["ENROLL", "STATSEXPORT"] {
            for probe in cli_look_alikes(name) {
                for args in [
                    vec!["consent-type", "enable", probe.as_str()],
                    vec!["consent-type", "disable", probe.as_str()],
                    vec!["consent-type", "privacypref", probe.as_str(), "on"],
                    vec!["consent-type", "history", probe.as_str()],
                ] {
                    let o = cli(&db, &args).await;
                    assert!(!o.status.success(), "{coll}: {args:?} succeeded");
                    let err = String::from_utf8_lossy(&o.stderr);
                    assert!(
                        err.to_lowercase().contains("unknown")
                            || err.to_lowercase().contains("no consent type"),
                        "{coll}: {args:?}: {err}"
                    );
                }
            }
        }
        assert_eq!(types_and_audit(&db).await, before, "{coll}");
    }
    // The exact name still works.
    let o = cli(&db, &["consent-type", "enable", "STATSEXPORT"]).await;
    assert!(o.status.success(), "{o:?}");
}
