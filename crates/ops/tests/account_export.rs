//! The access request's export on a database with upstream BOINC's whole
//! schema (crates/db/tests/fixtures): what it must hold is read from the
//! database table by table here (the tests' own account of which rows are
//! about a person, not the export's catalogue), and compared with the
//! document. Also: one consistent snapshot, and an audit row if and only if
//! an export was produced.

mod common;

use boinc_db::mysql_async::prelude::*;
use boinc_db::mysql_async::{Conn, Value};
use boinc_db::testing::wait_for_statement;
use boinc_ops::account::{self, AccountError};
use boinc_ops::consent_records::UserRef;
use serde_json::{json, Value as Json};

#[path = "../../db/tests/fixtures/people.rs"]
mod people;

use common::cli_as;
use people::{FIONA, OLAF};

/// Columns an export never holds (credentials; the project's job input).
const NEVER: &[(&str, &str)] = &[
    ("user", "passwd_hash"),
    ("user", "authenticator"),
    ("user", "login_token"),
    ("token", "token"),
    ("result", "xml_doc_in"),
];

/// A stored value as JSON, written here independently of the export.
fn to_json(v: &Value) -> Json {
    match v {
        Value::NULL => Json::Null,
        Value::Int(i) => json!(i),
        Value::UInt(u) => json!(u),
        Value::Float(f) => json!(f64::from(*f)),
        Value::Double(d) => json!(d),
        Value::Bytes(b) => json!(String::from_utf8(b.clone()).expect("fixture text is UTF-8")),
        Value::Date(y, mo, d, h, mi, s, 0) => {
            json!(format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"))
        }
        other => panic!("no such column type in the fixture: {other:?}"),
    }
}

fn row_json(table: &str, row: &[(String, Value)]) -> Json {
    Json::Object(
        row.iter()
            .filter(|(c, _)| !NEVER.contains(&(table, c.as_str())))
            .map(|(c, v)| (c.clone(), to_json(v)))
            .collect(),
    )
}

fn sorted(mut rows: Vec<Json>) -> Vec<Json> {
    rows.sort_by_key(|r| r.to_string());
    rows
}

/// The document holds exactly what the database holds about `who`, table
/// by table. `deleted`: the account was obfuscated (deletion records exist).
async fn assert_complete(c: &mut Conn, doc: &Json, who: i64, deleted: bool) {
    let parts = doc["about"]["parts"].as_array().unwrap();
    let part_of = |table: &str| -> Option<String> {
        parts
            .iter()
            .find(|p| p["table"] == table)
            .map(|p| p["part"].as_str().unwrap().to_owned())
    };
    // Nothing from a table the tests do not call personal.
    for p in parts {
        let t = p["table"].as_str().unwrap();
        assert!(
            people::ABOUT.iter().any(|(a, _)| *a == t),
            "the export has a part from {t}, which holds nothing about a person"
        );
        assert!(
            !p["contents"].as_str().unwrap().is_empty(),
            "{t}: say what it holds"
        );
    }
    for (table, rows) in people::about(c, who).await {
        let expected: Vec<Json> = rows.iter().map(|r| row_json(&table, r)).collect();
        // Live: a row in every table but the deletion records; obfuscated:
        // rows in those at least (most others are gone).
        let record = table == "user_deleted" || table == "host_deleted";
        if record == deleted {
            assert!(
                !expected.is_empty(),
                "fixture: no row about {who} in {table}"
            );
        }
        match table.as_str() {
            "user" => assert_eq!(doc["account"], expected[0], "account"),
            "consent" => {
                let got: Vec<Json> = doc["consent"]["records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| {
                        json!({"id": r["consent_id"], "consent_time": r["consent_time"],
                               "consent_flag": r["consent_flag"], "source": r["source"],
                               "consent_not_required": r["consent_not_required"]})
                    })
                    .collect();
                let want: Vec<Json> = expected
                    .iter()
                    .map(|r| {
                        json!({"id": r["id"], "consent_time": r["consent_time"],
                               "consent_flag": r["consent_flag"], "source": r["source"],
                               "consent_not_required": r["consent_not_required"]})
                    })
                    .collect();
                assert_eq!(sorted(got), sorted(want), "consent records");
            }
            "consent_terms" => {
                let got: Vec<Json> = doc["consent"]["records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|r| !r["terms_version_id"].is_null())
                    .map(|r| json!({"consent_id": r["consent_id"], "terms_version_id": r["terms_version_id"]}))
                    .collect();
                assert_eq!(sorted(got), sorted(expected), "consent terms links");
            }
            "terms_version" => {
                let got: Vec<Json> = doc["consent"]["terms_versions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| {
                        json!({"id": v["id"], "sha256": v["sha256"], "terms": v["text"],
                                    "first_seen": v["first_seen"]})
                    })
                    .collect();
                assert_eq!(sorted(got), sorted(expected), "terms texts");
            }
            "account_audit" => {
                let got = doc["audit_trail"].as_array().unwrap().clone();
                assert_eq!(sorted(got), sorted(expected), "audit trail");
            }
            _ => {
                let part = part_of(&table)
                    .unwrap_or_else(|| panic!("table {table} is missing from the export"));
                let got = doc[&part]
                    .as_array()
                    .unwrap_or_else(|| panic!("part {part} is not a list"))
                    .clone();
                assert_eq!(sorted(got), sorted(expected), "part {part} ({table})");
            }
        }
    }
}

/// Texts of the other two people that none of Fiona's rows hold.
const OTHERS: &[&str] = &[
    "olaf.oakes@example.com",
    "Olaf Oakes",
    "olaf.previous@example.com",
    "olaf-box",
    "203.0.113.3",
    "0a1f0a1f0a1f0a1f0a1f0a1f0a1f0a1f",
    "hostcpid0a1f2003",
    "olaf-venue",
    "Olaf likes oak trees",
    "Olaf has opinions",
    "Cooling for oak cases",
    "Fans or water?",
    "The newest one.",
    "Olaf out",
    "Olaf to Tess",
    "Olaf would like",
    "olaf.pays@example.com",
    "TXN-O-0002",
    "tok-0a1f",
    "Oak Grove",
    "oak runs",
    "Terms v2",
    "tess.thorn@example.com",
    "Tess Thorn",
    "7e557e557e557e557e557e557e557e55",
];

/// Her credentials, and the names of credential columns.
const SECRETS: &[&str] = &[
    "fionaSECRETHASH",
    "f10a0a0a0a0a0a0a0a0a0a0a0a0a0a0a",
    "f10a1091f10a1091f10a1091f10a1091",
    "tok-f10a-reset-0123456789abcdef",
    "\"passwd_hash\"",
    "\"authenticator\"",
    "\"login_token\"",
    "\"xml_doc_in\"",
];

#[tokio::test]
async fn export_holds_what_every_table_holds_about_her_and_nothing_of_others() {
    let db = people::database().await;
    let mut c = db.conn().await;
    people::check_classification(&mut c).await;
    let pool = db.pool();
    let doc = account::export(
        &pool,
        &UserRef::Email("FIONA.fjord@example.org".into()),
        "export-admin",
        1_700_000_000,
    )
    .await
    .unwrap();
    assert_eq!(doc.userid, FIONA);
    let text = serde_json::to_string(&doc).unwrap();
    let v: Json = serde_json::from_str(&text).unwrap();
    assert_complete(&mut c, &v, FIONA, false).await;
    for s in OTHERS.iter().chain(SECRETS) {
        assert!(!text.contains(s), "the export holds {s}");
    }
    let tokens = v["tokens"].as_array().unwrap();
    assert!(!tokens.is_empty() && tokens.iter().all(|t| t.get("token").is_none()));
    // Messages and friend requests from others are hers; their authors
    // appear as ids.
    assert!(text.contains("Hello back, see you.") && text.contains("Sure!"));
    // The consent record reads as before: the withdrawal is in force.
    let current: Vec<(String, String)> = v["consent"]["current"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["consent_type"].as_str().unwrap().to_owned(),
                s["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        current,
        vec![
            ("ENROLL".into(), "consented".into()),
            ("STATSEXPORT".into(), "withdrawn".into())
        ]
    );
    // This export is the trail's last entry, in the document and stored.
    let last = v["audit_trail"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["actor"], &last["action"], &last["action_time"]),
        (
            &json!("export-admin"),
            &json!("export"),
            &json!(1_700_000_000)
        )
    );

    // The other person's export is just as complete, and holds nothing of
    // the third.
    let doc = account::export(&pool, &UserRef::Id(OLAF), "export-admin", 1_700_000_001)
        .await
        .unwrap();
    let text = serde_json::to_string(&doc).unwrap();
    assert_complete(&mut c, &serde_json::from_str(&text).unwrap(), OLAF, false).await;
    for tess in [
        "tess.thorn@example.com",
        "Tess Thorn",
        "7e557e557e557e557e557e557e557e55",
    ] {
        assert!(!text.contains(tess), "Olaf's export holds {tess}");
    }
    assert_eq!(doc.userid, OLAF);

    // An obfuscated account's export: what is left, deletion records too.
    boinc_db::account::erase::erase(
        &mut c,
        FIONA,
        boinc_db::account::erase::Mode::Obfuscate,
        "a",
    )
    .await
    .unwrap();
    let doc = account::export(&pool, &UserRef::Id(FIONA), "export-admin", 1_700_000_002)
        .await
        .unwrap();
    let v = serde_json::to_value(&doc).unwrap();
    assert_complete(&mut c, &v, FIONA, true).await;

    pool.disconnect().await.ok();
}

async fn trail_len(c: &mut Conn, who: i64) -> i64 {
    c.exec_first(
        "SELECT COUNT(*) FROM account_audit WHERE userid = ?",
        (who,),
    )
    .await
    .unwrap()
    .unwrap()
}

/// Rows committed while the export runs (into a table it has read, one it
/// is waiting for, and ones it reads later) are in none of its parts.
#[tokio::test]
async fn export_reads_one_consistent_snapshot() {
    let db = people::database().await;
    let pool = db.pool();
    let mut locker = db.conn().await;
    let mut other = db.conn().await;
    // The late host names only some of its columns.
    other.query_drop("SET SESSION sql_mode = ''").await.unwrap();
    locker
        .query_drop("LOCK TABLES private_messages WRITE")
        .await
        .unwrap();
    let p = pool.clone();
    let export =
        tokio::spawn(async move { account::export(&p, &UserRef::Id(FIONA), "a", 1).await });
    wait_for_statement(&mut other, "%FROM%private_messages%WHERE%").await;
    // The export has read the account and hosts and waits for the messages.
    locker
        .query_drop(
            "INSERT INTO private_messages (id, userid, senderid, date, subject, content) \
             VALUES (10099, 1001, 1002, 1, 'late', 'late message')",
        )
        .await
        .unwrap();
    for sql in [
        "INSERT INTO host (id, create_time, userid, domain_name, venue, product_name) \
         VALUES (2099, 1, 1001, 'late-host', '', '')",
        "INSERT INTO friend VALUES (1003, 1001, 'late friend', 1, 0)",
        "INSERT INTO consent (userid, consent_type_id, consent_time, consent_flag, \
         consent_not_required, source) SELECT 1001, id, 1800000000, 1, 0, 'late' \
         FROM consent_type WHERE shortname = 'STATSEXPORT'",
        "UPDATE user SET country = 'Iceland' WHERE id = 1001",
    ] {
        other.query_drop(sql).await.unwrap();
    }
    locker.query_drop("UNLOCK TABLES").await.unwrap();
    let doc = export.await.unwrap().unwrap();
    let text = serde_json::to_string(&doc).unwrap();
    for late in [
        "late message",
        "late-host",
        "late friend",
        "\"late\"",
        "Iceland",
    ] {
        assert!(
            !text.contains(late),
            "the export saw {late} committed after it began"
        );
    }
    // The changes were there to be seen: the next export has them all.
    let doc = account::export(&pool, &UserRef::Id(FIONA), "a", 2)
        .await
        .unwrap();
    let text = serde_json::to_string(&doc).unwrap();
    for late in [
        "late message",
        "late-host",
        "late friend",
        "\"late\"",
        "Iceland",
    ] {
        assert!(text.contains(late), "{late} missing from a later export");
    }
    pool.disconnect().await.ok();
}

/// A read that fails half way, a document that cannot be staged, an audit
/// row that cannot be written: no export and no audit row, each time.
#[tokio::test]
async fn export_is_audited_if_and_only_if_it_is_produced() {
    let db = people::database().await;
    let pool = db.pool();
    let mut c = db.conn().await;
    let before = trail_len(&mut c, FIONA).await;

    // A table vanishes while the export waits to read it.
    let mut locker = db.conn().await;
    locker
        .query_drop("LOCK TABLES private_messages WRITE")
        .await
        .unwrap();
    let p = pool.clone();
    let export =
        tokio::spawn(async move { account::export(&p, &UserRef::Id(FIONA), "a", 1).await });
    wait_for_statement(&mut c, "%FROM%private_messages%WHERE%").await;
    locker
        .query_drop("DROP TABLE private_messages")
        .await
        .unwrap();
    locker.query_drop("UNLOCK TABLES").await.unwrap();
    match export.await.unwrap() {
        Err(AccountError::Db(e)) => assert!(e.to_string().contains("private_messages"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        trail_len(&mut c, FIONA).await,
        before,
        "audited a failed export"
    );

    // The caller cannot stage the document (disk full, ...).
    let e = account::export_staged(&pool, &UserRef::Id(FIONA), "a", 2, |_| {
        Err::<(), _>(std::io::Error::other("disk full"))
    })
    .await
    .unwrap_err();
    assert!(
        matches!(&e, AccountError::Output(io) if io.to_string() == "disk full"),
        "{e}"
    );
    assert_eq!(trail_len(&mut c, FIONA).await, before);

    // The audit row cannot be written: nothing is staged.
    c.query_drop(
        "CREATE TRIGGER no_audit BEFORE INSERT ON account_audit FOR EACH ROW \
         SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit refused'",
    )
    .await
    .unwrap();
    let mut staged = false;
    let e = account::export_staged(&pool, &UserRef::Id(FIONA), "a", 3, |_| {
        staged = true;
        Ok(())
    })
    .await
    .unwrap_err();
    assert!(e.to_string().contains("audit refused"), "{e}");
    assert!(!staged, "a document was produced without its audit row");
    c.query_drop("DROP TRIGGER no_audit").await.unwrap();

    // And when all goes well: exactly one row more.
    account::export(&pool, &UserRef::Id(FIONA), "a", 4)
        .await
        .unwrap();
    assert_eq!(trail_len(&mut c, FIONA).await, before + 1);
    pool.disconnect().await.ok();
}

/// The CLI: an export it cannot write is not recorded; one it writes is,
/// and the file is the document.
#[tokio::test]
async fn cli_export_is_recorded_only_when_written() {
    let db = people::database().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = db.write_project(dir.path(), "", None);
    let mut c = db.conn().await;
    let before = trail_len(&mut c, FIONA).await;
    let run = |out: std::path::PathBuf| {
        let cfg = cfg.clone();
        async move {
            let out = out.to_str().expect("UTF-8 path");
            let args = ["account", "export", "--id", "1001", "--out", out];
            cli_as("cli-admin", &cfg, &args).await
        }
    };
    let o = run(dir.path().join("no-such-dir/fiona.json")).await;
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        trail_len(&mut c, FIONA).await,
        before,
        "audited, not written"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("could not write the export (nothing was recorded)")
            && err.contains("no-such-dir"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only config.xml"
    );

    let file = dir.path().join("fiona.json");
    let o = run(file.clone()).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(trail_len(&mut c, FIONA).await, before + 1);
    let v: Json = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_complete(&mut c, &v, FIONA, false).await;
    assert_eq!(
        v["audit_trail"].as_array().unwrap().last().unwrap()["actor"],
        "cli-admin"
    );
}
