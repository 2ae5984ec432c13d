//! Issue 9 item 15: nothing the `boinc-ops` binary prints carries a raw
//! terminal control or bidi character, whatever the database holds. A
//! consent type, its audit trail, a volunteer's name, a consent source and
//! a terms text are all stored with an OSC title sequence, a screen clear,
//! C1/DEL and U+202E; every command that shows them is run for real.

mod common;

use boinc_db::consent::terms;
use boinc_db::consent::types::{insert_audit, NewAudit};
use boinc_db::consent::{self, NewConsent};
use boinc_db::mysql_async::prelude::*;
use boinc_db::queries;
use boinc_db::testing::fixtures::new_user;
use boinc_db::testing::TestDb;
use common::cli;

/// ESC ] 0 ; title BEL (window title), ESC [ 2 J (clear screen), a C1 CSI,
/// DEL, a right-to-left override and a left-to-right isolate.
const EVIL: &str = "x\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{7f}\u{202e}txt.exe\u{2066}y";
const EVIL_NAME: &str = "EVIL\u{202e}\u{1b}[8m";

/// Characters that must never reach the terminal raw (line feeds between
/// lines are fine, and so is the CR of a CRLF line end).
fn raw_unsafe(s: &str) -> Vec<char> {
    s.replace("\r\n", "\n")
        .chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c,
                    '\u{061C}' | '\u{200E}' | '\u{200F}'
                    | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        })
        .collect()
}

#[tokio::test]
async fn cli_output_never_carries_raw_controls_or_bidi() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    // Written behind the tools' backs (SQL, an upstream database, a client):
    // the CLI must be safe whatever is stored.
    c.exec_drop(
        "INSERT INTO consent_type (shortname, description, enabled, project_specific, privacypref) \
         VALUES (?, ?, 1, 1, 0)",
        (EVIL_NAME, EVIL),
    )
    .await
    .unwrap();
    let ct: i64 = c
        .exec_first(
            "SELECT id FROM consent_type WHERE shortname = BINARY ?",
            (EVIL_NAME,),
        )
        .await
        .unwrap()
        .unwrap();
    insert_audit(
        &mut c,
        &NewAudit {
            change_time: 1_700_000_000,
            actor: EVIL,
            consent_type_id: ct,
            shortname: EVIL_NAME,
            action: EVIL,
            old_value: EVIL,
            new_value: EVIL,
        },
    )
    .await
    .unwrap();
    let user = new_user(
        1_700_000_000,
        "evil@example.org",
        EVIL,
        "auth000000000000000000000000000evil",
    );
    let uid = queries::insert_user(&mut c, &user).await.unwrap();
    let cid = consent::insert(
        &mut c,
        &NewConsent {
            userid: uid,
            consent_type_id: ct,
            consent_time: 1_700_000_100,
            consent_flag: true,
            consent_not_required: false,
            source: EVIL,
        },
    )
    .await
    .unwrap();
    let terms_text = format!("Terms\r\nline two {EVIL}\rspoof\n");
    let v = terms::ensure_terms_version(&mut c, &terms_text, 1_700_000_000)
        .await
        .unwrap();
    terms::link_consent_terms(&mut c, cid, v).await.unwrap();
    drop(c);

    let (uid, v) = (uid.to_string(), v.to_string());
    let commands: Vec<Vec<&str>> = vec![
        vec!["consent-type", "list"],
        vec!["consent-type", "list", "--json"],
        vec!["consent-type", "history"],
        vec!["consent-type", "history", "--json"],
        vec!["consent-type", "history", EVIL_NAME],
        vec!["consent-type", "disable", EVIL_NAME],
        vec!["consent-type", "disable", EVIL_NAME],
        vec!["consent-type", "enable", EVIL],
        vec!["consent-type", "delete", EVIL],
        vec!["consent", "report"],
        vec!["consent", "report", "--json"],
        vec!["consent", "history", "--user", &uid],
        vec!["consent", "history", "--user", &uid, "--json"],
        vec!["consent", "history", "--email", EVIL],
        vec!["consent", "terms"],
        vec!["consent", "terms", &v],
        vec!["consent", "terms", &v, "--json"],
    ];
    for args in &commands {
        let o = cli(&db, args).await;
        let (stdout, stderr) = (
            String::from_utf8(o.stdout.clone()).expect("UTF-8 stdout"),
            String::from_utf8(o.stderr.clone()).expect("UTF-8 stderr"),
        );
        assert!(
            !stdout.is_empty() || !stderr.is_empty(),
            "{args:?}: no output"
        );
        for (what, text) in [("stdout", &stdout), ("stderr", &stderr)] {
            let bad = raw_unsafe(text);
            assert!(
                bad.is_empty(),
                "{args:?} {what} carries raw {bad:?}:\n{}",
                text.escape_debug()
            );
        }
    }

    // Shown escaped, so the admin sees what is stored.
    let list = String::from_utf8(cli(&db, &["consent-type", "list"]).await.stdout).unwrap();
    assert!(
        list.contains(
            "x\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{9b}31m\\u{7f}\\u{202e}txt.exe\\u{2066}y"
        ),
        "{list}"
    );
    assert!(list.contains("EVIL\\u{202e}\\u{1b}[8m"), "{list}");
    // JSON stays exact: readers decode the escapes back to the stored text.
    let o = cli(&db, &["consent-type", "list", "--json"]).await;
    let types: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(types
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["shortname"] == EVIL_NAME && t["description"] == EVIL));
    // Terms text keeps its lines (CRLF included); a bare CR is escaped.
    let o = cli(&db, &["consent", "terms", &v]).await;
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.starts_with("Terms\r\nline two x\\u{1b}]0;"),
        "{text:?}"
    );
    assert!(text.ends_with("y\\rspoof\n"), "{text:?}");
    let o = cli(&db, &["consent", "terms", &v, "--json"]).await;
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["text"], terms_text);
}

#[tokio::test]
async fn cli_refuses_descriptions_with_controls_or_bidi() {
    let db = TestDb::new().await;
    for desc in [EVIL, "Newsletter \u{202e}rettelsweN", "zero\u{200b}width"] {
        let o = cli(&db, &["consent-type", "add", "NEWSLETTER", desc]).await;
        assert_eq!(o.status.code(), Some(2), "{desc:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(err.contains("invisible formatting characters"), "{err}");
        assert!(raw_unsafe(&err).is_empty(), "{err:?}");
    }
    let list = String::from_utf8(cli(&db, &["consent-type", "list"]).await.stdout).unwrap();
    assert!(!list.contains("NEWSLETTER"), "{list}");
}
