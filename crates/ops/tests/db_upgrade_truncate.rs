//! Issue 9 item 16: `TRUNCATE consent_type` with foreign-key checks off
//! gets past the no-delete trigger; `boinc-ops db upgrade` notices, puts
//! ENROLL and STATSEXPORT back, says so loudly and counts the consent rows
//! left pointing at nothing.

mod common;

use std::path::Path;
use std::process::Output;

use boinc_db::consent::{self, NewConsent};
use boinc_db::mysql_async::prelude::*;
use boinc_db::queries;
use boinc_db::testing::fixtures::{new_user, type_id};
use boinc_db::testing::TestDb;
use common::{cli_as, err, out, types};

/// boinc-ops run by the admin `cli-tester`.
async fn run(config: &Path, args: &[&str]) -> Output {
    cli_as("cli-tester", config, args).await
}

async fn consent_rows(db: &TestDb, uid: i64, ct: i64, n: usize) {
    let mut c = db.conn().await;
    for i in 0..n {
        consent::insert(
            &mut c,
            &NewConsent {
                userid: uid,
                consent_type_id: ct,
                consent_time: 1_700_000_000 + i as i64,
                consent_flag: true,
                consent_not_required: false,
                source: "test",
            },
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn db_upgrade_recreates_truncated_predefined_types_and_warns() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = db.write_project(dir.path(), "", None);

    // ENROLL enabled through the tools (so the audit trail knows its id),
    // STATSEXPORT never touched, a project type added through the tools.
    for args in [
        &["consent-type", "enable", "ENROLL"][..],
        &["consent-type", "add", "NEWSLETTER", "The newsletter"][..],
    ] {
        let o = run(&cfg, args).await;
        assert!(o.status.success(), "{args:?}: {}", err(&o));
    }
    let mut c = db.conn().await;
    let (enroll, stats, news) = (
        type_id(&mut c, "ENROLL").await,
        type_id(&mut c, "STATSEXPORT").await,
        type_id(&mut c, "NEWSLETTER").await,
    );
    let user = new_user(
        1_700_000_000,
        "v@example.org",
        "v",
        "auth0000000000000000000000000000v",
    );
    let uid = queries::insert_user(&mut c, &user).await.unwrap();
    consent_rows(&db, uid, enroll, 2).await;
    consent_rows(&db, uid, stats, 3).await;
    consent_rows(&db, uid, news, 4).await;

    // The trigger refuses DELETE; TRUNCATE with FK checks off empties it.
    assert!(c.query_drop("DELETE FROM consent_type").await.is_err());
    c.query_drop("SET foreign_key_checks = 0").await.unwrap();
    c.query_drop("TRUNCATE TABLE consent_type").await.unwrap();
    c.query_drop("SET foreign_key_checks = 1").await.unwrap();
    drop(c);
    assert!(types(&db).await.is_empty());

    let o = run(&cfg, &["db", "upgrade"]).await;
    let (out, err) = (out(&o), err(&o));
    assert_eq!(o.status.code(), Some(3), "stdout {out}\nstderr {err}");
    assert!(
        err.contains("WARNING: consent type ENROLL was MISSING")
            && err.contains(&format!("old id {enroll}")),
        "{err}"
    );
    assert!(
        err.contains("WARNING: consent type STATSEXPORT was MISSING"),
        "{err}"
    );
    // STATSEXPORT's and NEWSLETTER's rows point at nothing; ENROLL's are
    // ENROLL's again.
    assert!(
        err.contains(&format!(
            "3 consent row(s) point at consent type id {stats}, which does not exist"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "4 consent row(s) point at consent type id {news}, which does not exist \
             (the audit trail last named it \"NEWSLETTER\")"
        )),
        "{err}"
    );
    assert!(!err.contains(&format!("id {enroll}, which")), "{err}");

    // Back, exact bytes, with the old id and flags where the audit knew them.
    let now = types(&db).await;
    let e = now
        .iter()
        .find(|t| t.shortname == "ENROLL")
        .expect("ENROLL");
    assert_eq!(
        (e.id, e.enabled, e.privacypref, e.project_specific),
        (enroll, 1, 0, 0)
    );
    let s = now
        .iter()
        .find(|t| t.shortname == "STATSEXPORT")
        .expect("STATSEXPORT");
    assert_eq!((s.enabled, s.privacypref, s.project_specific), (0, 1, 0));
    // A fresh id never adopts another type's orphaned rows.
    assert!(s.id > news && s.id > stats, "STATSEXPORT got id {}", s.id);
    assert_eq!(now.len(), 2);
    let o = run(&cfg, &["consent-type", "add", "LATER", "Added after"]).await;
    assert!(o.status.success(), "{}", common::err(&o));
    let later = type_id(&mut db.conn().await, "LATER").await;
    assert!(
        ![enroll, stats, news].contains(&later),
        "LATER got id {later}"
    );
    // The recreation is in the audit history.
    let o = run(&cfg, &["consent-type", "history", "ENROLL"]).await;
    assert!(common::out(&o).contains("restore"), "{}", common::out(&o));

    // Running again recreates nothing but still reports the orphans.
    let o = run(&cfg, &["db", "upgrade"]).await;
    let err = common::err(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(!err.contains("MISSING"), "{err}");
    assert!(err.contains("4 consent row(s)"), "{err}");
    assert_eq!(types(&db).await.len(), 3);
}

#[tokio::test]
async fn db_upgrade_of_a_sound_database_is_quiet() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = db.write_project(dir.path(), "", None);
    let o = run(&cfg, &["db", "upgrade"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(!err(&o).contains("WARNING"), "{}", err(&o));
}

#[tokio::test]
async fn db_upgrade_refuses_when_a_look_alike_holds_the_name() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = db.write_project(dir.path(), "", None);
    let mut c = db.conn().await;
    c.query_drop("SET foreign_key_checks = 0").await.unwrap();
    c.query_drop("TRUNCATE TABLE consent_type").await.unwrap();
    c.query_drop("SET foreign_key_checks = 1").await.unwrap();
    c.query_drop(
        "INSERT INTO consent_type (shortname, description, enabled, project_specific, privacypref) \
         VALUES ('enroll', 'look-alike', 1, 1, 0)",
    )
    .await
    .unwrap();
    drop(c);
    let o = run(&cfg, &["db", "upgrade"]).await;
    let err = err(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("consent type ENROLL is missing and cannot be recreated"),
        "{err}"
    );
    assert!(!types(&db).await.iter().any(|t| t.shortname == "ENROLL"));
}

/// Issue 19 item 4: a `consent_type` table that simply lacks the
/// predefined rows (no consent row and no audit record names a lost type)
/// gets them as a fresh install does, with an audit row, exit 0; running
/// again changes nothing. A trace of a loss keeps the loud path (exit 3).
#[tokio::test]
async fn db_upgrade_adds_predefined_types_a_table_never_had() {
    // (what the table holds first, SQL to set it up)
    let cases: [(&str, &[&str]); 3] = [
        (
            "an empty consent_type table (made without content.sql)",
            &[
                "SET foreign_key_checks = 0",
                "TRUNCATE TABLE consent_type",
                "SET foreign_key_checks = 1",
            ],
        ),
        (
            "a project type with consent rows of its own",
            &[
                "SET foreign_key_checks = 0",
                "TRUNCATE TABLE consent_type",
                "SET foreign_key_checks = 1",
                "INSERT INTO consent_type (shortname, description, enabled, project_specific, \
                 privacypref) VALUES ('NEWSLETTER', 'news', 1, 1, 0)",
                "INSERT INTO consent (userid, consent_type_id, consent_time, consent_flag, \
                 consent_not_required, source) SELECT 1, id, 1700000000, 1, 0, 'web' \
                 FROM consent_type WHERE shortname = 'NEWSLETTER'",
            ],
        ),
        (
            "STATSEXPORT present, ENROLL never added",
            &[
                "SET foreign_key_checks = 0",
                "TRUNCATE TABLE consent_type",
                "SET foreign_key_checks = 1",
                "INSERT INTO consent_type (shortname, description, enabled, project_specific, \
                 privacypref) VALUES ('STATSEXPORT', 'Stats', 1, 0, 1)",
            ],
        ),
    ];
    for (what, setup) in cases {
        let db = TestDb::new().await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = db.write_project(dir.path(), "", None);
        let mut c = db.conn().await;
        for sql in setup {
            c.query_drop(*sql).await.unwrap();
        }
        let before: Vec<String> = types(&db).await.into_iter().map(|t| t.shortname).collect();
        let o = run(&cfg, &["db", "upgrade"]).await;
        let (out, err) = (out(&o), err(&o));
        assert_eq!(
            o.status.code(),
            Some(0),
            "{what}: stdout {out}\nstderr {err}"
        );
        assert!(!err.contains("WARNING"), "{what}: {err}");
        let now = types(&db).await;
        for (name, privacypref) in [("ENROLL", 0), ("STATSEXPORT", 1)] {
            let t = now
                .iter()
                .find(|t| t.shortname == name)
                .unwrap_or_else(|| panic!("{what}: no {name}"));
            if before.iter().any(|b| b == name) {
                assert!(
                    !out.contains(&format!("consent_type {name} (added")),
                    "{what}: {out}"
                );
                continue;
            }
            // As content.sql adds it: disabled, BOINC's flags.
            assert_eq!(
                (t.enabled, t.project_specific, t.privacypref),
                (0, 0, privacypref),
                "{what}: {name}"
            );
            assert!(
                out.contains(&format!(
                    "applied: consent_type {name} (added: the table never had it)"
                )),
                "{what}: {out}"
            );
            let audit: Vec<(i64, String, String)> = c
                .exec(
                    "SELECT consent_type_id, action, actor FROM consent_type_audit WHERE shortname = ?",
                    (name,),
                )
                .await
                .unwrap();
            assert_eq!(
                audit,
                [(t.id, "add".to_owned(), "boinc-ops db upgrade".to_owned())],
                "{what}: {name}"
            );
        }
        // Again: nothing to do.
        let o = run(&cfg, &["db", "upgrade"]).await;
        assert_eq!(o.status.code(), Some(0), "{what}: {}", common::err(&o));
        assert!(
            common::out(&o).contains("schema up to date"),
            "{what}: {}",
            common::out(&o)
        );
        assert_eq!(types(&db).await.len(), now.len());
    }
}

/// The same table with a trace of a loss stays loud: the audit trail names
/// the type, or an audit row names a type id that is gone.
#[tokio::test]
async fn db_upgrade_with_a_trace_of_a_lost_type_still_warns() {
    for trace in [
        "INSERT INTO consent_type_audit (change_time, actor, consent_type_id, shortname, action, \
         old_value, new_value) VALUES (1, 'admin', 1, 'ENROLL', 'enable', '0', '1')",
        "INSERT INTO consent_type_audit (change_time, actor, consent_type_id, shortname, action, \
         old_value, new_value) VALUES (1, 'admin', 7, 'NEWSLETTER', 'add', '', 'x')",
    ] {
        let db = TestDb::new().await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = db.write_project(dir.path(), "", None);
        let mut c = db.conn().await;
        for sql in [
            "SET foreign_key_checks = 0",
            "TRUNCATE TABLE consent_type",
            "SET foreign_key_checks = 1",
            trace,
        ] {
            c.query_drop(sql).await.unwrap();
        }
        let o = run(&cfg, &["db", "upgrade"]).await;
        let err = err(&o);
        assert_eq!(o.status.code(), Some(3), "{trace}: {err}");
        assert!(
            err.contains("WARNING: consent type ENROLL was MISSING"),
            "{err}"
        );
    }
}
