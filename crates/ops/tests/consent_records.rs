//! Consent records against a real MariaDB: the report (CLI text and JSON,
//! library, ops page), one user's history (by email and by id, tie-safe
//! order, self-contained JSON export) and the stored terms versions.

mod common;

use std::process::Output;

use boinc_db::consent::terms;
use boinc_db::consent::NewConsent;
use boinc_db::mysql_async::prelude::*;
use boinc_db::mysql_async::Conn;
use boinc_db::queries;
use boinc_db::testing::fixtures::{new_user, type_id};
use boinc_db::testing::TestDb;
use boinc_ops::{ConsentOps, UserRef};
use common::*;
use serde_json::Value;

const V1: &str = "Terms v1: be nice & share <CPU> time.\n\"Quotes\" and 'apostrophes'.";
const V2: &str = "Terms v2: be nicer.";
const T0: i64 = 1_700_000_000;

/// The fixture's ids.
struct Fixture {
    users: Vec<i64>,
    v1: i64,
    v2: i64,
}

async fn user(conn: &mut Conn, n: usize, name: &str) -> i64 {
    let email = format!("user{n}@example.org");
    let auth = format!("auth{n:0>30}");
    queries::insert_user(conn, &new_user(T0 + n as i64, &email, name, &auth))
        .await
        .unwrap()
}

#[allow(clippy::too_many_arguments)]
async fn consent(
    conn: &mut Conn,
    userid: i64,
    ct: i64,
    time: i64,
    flag: bool,
    not_required: bool,
    source: &str,
    version: Option<i64>,
) -> i64 {
    let id = boinc_db::consent::insert(
        conn,
        &NewConsent {
            userid,
            consent_type_id: ct,
            consent_time: time,
            consent_flag: flag,
            consent_not_required: not_required,
            source,
        },
    )
    .await
    .unwrap();
    if let Some(v) = version {
        terms::link_consent_terms(conn, id, v).await.unwrap();
    }
    id
}

/// Six live accounts and a deleted one:
/// ENROLL: u0, u1 accepted v1; u2 accepted v2; u3 not required; u4
/// consented before versioning; u5 never asked.
/// STATSEXPORT: u0 consented; u1 consented at 150 (written last), consented
/// and withdrew in the same second at 200 -> withdrawn; u2 withdrew then
/// consented -> consented. The deleted u6 consented to both (not counted).
async fn fixture(db: &TestDb) -> Fixture {
    let mut c = db.conn().await;
    c.query_drop("UPDATE consent_type SET enabled = 1 WHERE shortname = 'ENROLL'")
        .await
        .unwrap();
    let enroll = type_id(&mut c, "ENROLL").await;
    let stats = type_id(&mut c, "STATSEXPORT").await;
    let v1 = terms::ensure_terms_version(&mut c, V1, T0).await.unwrap();
    let v2 = terms::ensure_terms_version(&mut c, V2, T0 + 86_400)
        .await
        .unwrap();
    let mut users = Vec::new();
    for n in 0..7 {
        let name = if n == 1 {
            "Zoë <b>&amp;</b>".to_owned()
        } else {
            format!("user {n}")
        };
        users.push(user(&mut c, n, &name).await);
    }
    let u = users.clone();
    consent(&mut c, u[0], enroll, T0, true, false, "client", Some(v1)).await;
    consent(
        &mut c,
        u[1],
        enroll,
        T0 + 1,
        true,
        false,
        "client",
        Some(v1),
    )
    .await;
    consent(
        &mut c,
        u[2],
        enroll,
        T0 + 90_000,
        true,
        false,
        "web",
        Some(v2),
    )
    .await;
    consent(
        &mut c,
        u[3],
        enroll,
        T0 + 3,
        false,
        true,
        "GridRepublic",
        None,
    )
    .await;
    consent(&mut c, u[4], enroll, T0 - 5_000, true, false, "web", None).await;
    consent(&mut c, u[0], stats, T0 + 10, true, false, "web", None).await;
    consent(&mut c, u[1], stats, T0 + 200, true, false, "am", None).await;
    consent(&mut c, u[1], stats, T0 + 200, false, false, "am", None).await;
    consent(&mut c, u[1], stats, T0 + 150, true, false, "import", None).await;
    consent(&mut c, u[2], stats, T0 + 5, false, false, "web", None).await;
    consent(&mut c, u[2], stats, T0 + 6, true, false, "web", None).await;
    consent(&mut c, u[6], enroll, T0, true, false, "client", Some(v1)).await;
    consent(&mut c, u[6], stats, T0, true, false, "web", None).await;
    c.exec_drop(
        "UPDATE user SET authenticator = CONCAT('deleted_', id) WHERE id = ?",
        (u[6],),
    )
    .await
    .unwrap();
    Fixture { users, v1, v2 }
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", err(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", out(o)))
}

/// The whitespace-separated cells of every line of a printed table.
fn lines(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

fn has_line(text: &str, cells: &[&str]) -> bool {
    lines(text).iter().any(|l| l == cells)
}

fn day(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

#[tokio::test]
async fn consent_report_counts_match_fixture_cli_text_and_json() {
    let db = TestDb::new().await;
    let f = fixture(&db).await;

    let o = cli(&db, &["consent", "report", "--json"]).await;
    let r = json(&o);
    assert_eq!(r["users"], 6, "{r:#}");
    let types = r["consent_types"].as_array().unwrap();
    let t = |name: &str| {
        types
            .iter()
            .find(|t| t["shortname"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {r:#}"))
    };
    let counts = |t: &Value| {
        (
            t["consented"].as_i64().unwrap(),
            t["withdrawn"].as_i64().unwrap(),
            t["not_required"].as_i64().unwrap(),
            t["never_asked"].as_i64().unwrap(),
        )
    };
    let enroll = t("ENROLL");
    assert_eq!(enroll["enabled"], true);
    assert_eq!(counts(enroll), (4, 0, 1, 1));
    let stats = t("STATSEXPORT");
    assert_eq!(stats["enabled"], false);
    assert_eq!(counts(stats), (2, 1, 0, 3));
    assert_eq!(stats["by_terms_version"], serde_json::json!([]));
    let by: Vec<(Value, Value, i64)> = enroll["by_terms_version"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["terms_version_id"].clone(),
                v["sha256"].clone(),
                v["users"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by,
        vec![
            (f.v1.into(), terms::sha256_hex(V1).into(), 2),
            (f.v2.into(), terms::sha256_hex(V2).into(), 1),
            (Value::Null, Value::Null, 1),
        ]
    );
    assert_eq!(enroll["by_terms_version"][0]["first_seen"], T0);

    let o = cli(&db, &["consent", "report"]).await;
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(
        has_line(&text, &["ENROLL", "yes", "4", "0", "1", "1"]),
        "{text}"
    );
    assert!(
        has_line(&text, &["STATSEXPORT", "no", "2", "1", "0", "3"]),
        "{text}"
    );
    let v1 = f.v1.to_string();
    let v2 = f.v2.to_string();
    let sha1 = terms::sha256_hex(V1);
    let sha2 = terms::sha256_hex(V2);
    assert!(
        has_line(&text, &[&v1, &sha1[..12], &day(T0), "22:13:20", "UTC", "2"]),
        "{text}"
    );
    assert!(
        lines(&text).iter().any(|l| l.first() == Some(&v2)
            && l.get(1).map(String::as_str) == Some(&sha2[..12])
            && l.last().map(String::as_str) == Some("1")),
        "{text}"
    );
    assert!(has_line(&text, &["unversioned", "-", "-", "1"]), "{text}");
    assert!(text.contains("never-asked:"), "{text}");

    // The library gives the same numbers.
    let lib = ConsentOps::new(db.pool()).consent_report().await.unwrap();
    let e = lib.enroll().unwrap();
    assert_eq!(
        (e.consented, e.withdrawn, e.not_required, e.never_asked),
        (4, 0, 1, 1)
    );
    assert_eq!(lib.users, 6);
}

#[tokio::test]
async fn consent_history_is_ordered_tie_safe_by_email_and_user() {
    let db = TestDb::new().await;
    let f = fixture(&db).await;
    let u1 = f.users[1];

    // By email (case-insensitive, as BOINC matches emails) and by id: same export.
    let by_email = json(
        &cli(
            &db,
            &[
                "consent",
                "history",
                "--email",
                "USER1@Example.org",
                "--json",
            ],
        )
        .await,
    );
    let by_id = json(
        &cli(
            &db,
            &["consent", "history", "--user", &u1.to_string(), "--json"],
        )
        .await,
    );
    assert_eq!(by_email["user"], by_id["user"]);
    assert_eq!(by_email["consents"], by_id["consents"]);
    let h = by_email;
    assert_eq!(h["user"]["id"], u1);
    assert_eq!(h["user"]["name"], "Zoë <b>&amp;</b>");
    assert_eq!(h["user"]["email_addr"], "user1@example.org");
    let rows: Vec<(String, i64, String, i64, i64, String, Value)> = h["consents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["consent_type"].as_str().unwrap().to_owned(),
                c["consent_time"].as_i64().unwrap(),
                c["state"].as_str().unwrap().to_owned(),
                c["consent_flag"].as_i64().unwrap(),
                c["consent_not_required"].as_i64().unwrap(),
                c["source"].as_str().unwrap().to_owned(),
                c["terms_version_id"].clone(),
            )
        })
        .collect();
    let s = |x: &str| x.to_owned();
    assert_eq!(
        rows,
        vec![
            (
                s("ENROLL"),
                T0 + 1,
                s("consented"),
                1,
                0,
                s("client"),
                f.v1.into()
            ),
            // written last, but earlier: ordered by time
            (
                s("STATSEXPORT"),
                T0 + 150,
                s("consented"),
                1,
                0,
                s("import"),
                Value::Null
            ),
            // the same second: in the order written
            (
                s("STATSEXPORT"),
                T0 + 200,
                s("consented"),
                1,
                0,
                s("am"),
                Value::Null
            ),
            (
                s("STATSEXPORT"),
                T0 + 200,
                s("withdrawn"),
                0,
                0,
                s("am"),
                Value::Null
            ),
        ]
    );
    assert_eq!(
        h["consents"][0]["consent_time_utc"],
        format!("{} 22:13:21 UTC", day(T0))
    );
    assert_eq!(h["consents"][0]["terms_sha256"], terms::sha256_hex(V1));
    // Current state: the latest row per type, ties by write order.
    let current: Vec<(String, String)> = h["current"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                s(c["consent_type"].as_str().unwrap()),
                s(c["state"].as_str().unwrap()),
            )
        })
        .collect();
    assert_eq!(
        current,
        vec![
            (s("ENROLL"), s("consented")),
            (s("STATSEXPORT"), s("withdrawn"))
        ]
    );
    // Self-contained: the full text of the accepted version.
    let docs = h["terms_versions"].as_array().unwrap();
    assert_eq!(docs.len(), 1, "{h:#}");
    assert_eq!(docs[0]["id"], f.v1);
    assert_eq!(docs[0]["text"], V1);
    assert_eq!(docs[0]["sha256"], terms::sha256_hex(V1));

    // Text output: the same rows, in the same order.
    let o = cli(&db, &["consent", "history", "--user", &u1.to_string()]).await;
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(text.contains(&format!("Account {u1}:")), "{text}");
    assert!(text.contains("user1@example.org"), "{text}");
    let stats_rows: Vec<Vec<String>> = lines(&text)
        .into_iter()
        .filter(|l| l.get(4).map(String::as_str) == Some("STATSEXPORT"))
        .collect();
    let unix: Vec<&str> = stats_rows.iter().map(|l| l[3].as_str()).collect();
    let t150 = (T0 + 150).to_string();
    let t200 = (T0 + 200).to_string();
    assert_eq!(
        unix,
        [t150.as_str(), t200.as_str(), t200.as_str()],
        "{text}"
    );
    let states: Vec<&str> = stats_rows.iter().map(|l| l[5].as_str()).collect();
    assert_eq!(states, ["consented", "consented", "withdrawn"], "{text}");
    let enroll_row = lines(&text)
        .into_iter()
        .find(|l| l.get(4).map(String::as_str) == Some("ENROLL"))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        enroll_row[5..],
        [
            s("consented"),
            s("1"),
            s("0"),
            s("client"),
            f.v1.to_string(),
            format!("({})", &terms::sha256_hex(V1)[..12])
        ],
        "{text}"
    );
    // Current state section: STATSEXPORT withdrawn.
    assert!(
        lines(&text)
            .iter()
            .any(|l| l.len() >= 2 && l[0] == "STATSEXPORT" && l[1] == "withdrawn"),
        "{text}"
    );

    assert!(h["notes"].as_array().unwrap().len() >= 3, "{h:#}");

    // Text from clients can't drive the terminal: control characters are
    // shown escaped (the JSON keeps them exactly).
    let mut c = db.conn().await;
    let stats = type_id(&mut c, "STATSEXPORT").await;
    consent(
        &mut c,
        f.users[0],
        stats,
        T0 + 500,
        false,
        false,
        "evil\x1b[2J\nsrc",
        None,
    )
    .await;
    let o = cli(
        &db,
        &["consent", "history", "--user", &f.users[0].to_string()],
    )
    .await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(!out(&o).contains('\x1b'), "{}", out(&o));
    assert!(out(&o).contains("evil\\u{1b}[2J\\nsrc"), "{}", out(&o));
    let h0 = json(
        &cli(
            &db,
            &[
                "consent",
                "history",
                "--user",
                &f.users[0].to_string(),
                "--json",
            ],
        )
        .await,
    );
    assert_eq!(h0["consents"][2]["source"], "evil\x1b[2J\nsrc");

    // Not-required (account manager) and no-consent accounts.
    let h3 = json(
        &cli(
            &db,
            &[
                "consent",
                "history",
                "--user",
                &f.users[3].to_string(),
                "--json",
            ],
        )
        .await,
    );
    assert_eq!(h3["consents"][0]["state"], "not required");
    assert_eq!(h3["consents"][0]["consent_not_required"], 1);
    assert_eq!(h3["terms_versions"], serde_json::json!([]));
    let o = cli(
        &db,
        &["consent", "history", "--user", &f.users[5].to_string()],
    )
    .await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("No consent recorded"), "{}", out(&o));

    // The library agrees.
    let lib = ConsentOps::new(db.pool())
        .user_history(&UserRef::Id(u1))
        .await
        .unwrap();
    assert_eq!(lib.consents.len(), 4);
    assert_eq!(lib.consents[3].state, "withdrawn");
}

#[tokio::test]
async fn consent_history_unknown_user_is_refused_with_exit_2() {
    let db = TestDb::new().await;
    let f = fixture(&db).await;
    let o = cli(&db, &["consent", "history", "--user", "987654321"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains("no account with id 987654321"),
        "{}",
        err(&o)
    );
    assert!(out(&o).is_empty());
    let o = cli(
        &db,
        &[
            "consent",
            "history",
            "--email",
            "nobody@example.org",
            "--json",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains("no account has that email address"),
        "{}",
        err(&o)
    );
    assert!(!err(&o).contains("nobody@"), "email echoed: {}", err(&o));
    assert!(out(&o).is_empty());
    // An address the account used before an email change: pointed to, not exported.
    let mut c = db.conn().await;
    c.exec_drop(
        "UPDATE user SET previous_email_addr = 'old@example.org' WHERE id = ?",
        (f.users[2],),
    )
    .await
    .unwrap();
    let o = cli(&db, &["consent", "history", "--email", "old@example.org"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains(&format!("--user {}", f.users[2])),
        "{}",
        err(&o)
    );
    assert!(out(&o).is_empty());
    // Neither --email nor --user: a usage error.
    let o = cli(&db, &["consent", "history"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    // A deleted account's history is still there (by id).
    let h6 = json(
        &cli(
            &db,
            &[
                "consent",
                "history",
                "--user",
                &f.users[6].to_string(),
                "--json",
            ],
        )
        .await,
    );
    assert_eq!(h6["consents"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn consent_terms_lists_versions_and_prints_exact_text() {
    let db = TestDb::new().await;
    let o = cli(&db, &["consent", "terms"]).await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).contains("no terms versions recorded yet"),
        "{}",
        out(&o)
    );
    let f = fixture(&db).await;
    let list = json(&cli(&db, &["consent", "terms", "--json"]).await);
    let rows: Vec<(i64, String, i64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_i64().unwrap(),
                t["sha256"].as_str().unwrap().to_owned(),
                t["consent_rows"].as_i64().unwrap(),
            )
        })
        .collect();
    // v1: u0, u1 and the deleted u6
    assert_eq!(
        rows,
        vec![
            (f.v1, terms::sha256_hex(V1), 3),
            (f.v2, terms::sha256_hex(V2), 1)
        ]
    );
    let o = cli(&db, &["consent", "terms"]).await;
    assert!(
        has_line(
            &out(&o),
            &[
                &f.v2.to_string(),
                &day(T0 + 86_400),
                "22:13:20",
                "UTC",
                "1",
                &terms::sha256_hex(V2)
            ]
        ),
        "{}",
        out(&o)
    );
    let o = cli(&db, &["consent", "terms", &f.v1.to_string()]).await;
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), format!("{V1}\n"));
    let doc = json(&cli(&db, &["consent", "terms", &f.v2.to_string(), "--json"]).await);
    assert_eq!(doc["text"], V2);
    let o = cli(&db, &["consent", "terms", "424242"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains("no terms version with id 424242"),
        "{}",
        err(&o)
    );
}

fn row<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<tr id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no row {id} in {html}"));
    let end = html[start..].find("</tr>").unwrap() + start;
    &html[start..end]
}

/// Load the ops page until it shows the background report (each load
/// answers at once, "computing" until the report is ready).
async fn page_with_report(s: &Server) -> String {
    let t = std::time::Instant::now();
    loop {
        let r = client()
            .get(format!("{}/", s.base))
            .basic_auth(USER, Some(PASS))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        if html.contains("id=\"consent-report\"") {
            return html;
        }
        assert!(html.contains("id=\"report-pending\""), "{html}");
        assert!(
            t.elapsed().as_secs() < 60,
            "no report after a minute: {html}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn ops_page_shows_consent_report_also_read_only() {
    for read_only in [false, true] {
        let db = TestDb::new().await;
        let f = fixture(&db).await;
        let s = start_on(db, read_only).await;
        // Computed in the background: the page shows it once it is ready.
        let html = page_with_report(&s).await;
        assert!(html.contains("id=\"consent-records\""), "{html}");
        assert!(
            html.contains("id=\"report-accounts\">6</span> accounts"),
            "{html}"
        );
        let e = row(&html, "report-ENROLL");
        for cell in [
            "<td class=\"enabled\">yes</td>",
            "<td class=\"consented\">4 (66.7%)</td>",
            "<td class=\"withdrawn\">0 (0.0%)</td>",
            "<td class=\"not-required\">1 (16.7%)</td>",
            "<td class=\"never-asked\">1 (16.7%)</td>",
        ] {
            assert!(e.contains(cell), "{cell} not in {e}");
        }
        let st = row(&html, "report-STATSEXPORT");
        for cell in [
            "<td class=\"enabled\">no</td>",
            "<td class=\"consented\">2 (33.3%)</td>",
            "<td class=\"withdrawn\">1 (16.7%)</td>",
            "<td class=\"not-required\">0 (0.0%)</td>",
            "<td class=\"never-asked\">3 (50.0%)</td>",
        ] {
            assert!(st.contains(cell), "{cell} not in {st}");
        }
        let v1 = row(&html, &format!("terms-version-{}", f.v1));
        assert!(v1.contains(&terms::sha256_hex(V1)[..12]), "{v1}");
        assert!(v1.contains("<td class=\"accounts\">2 (50.0%)</td>"), "{v1}");
        assert!(v1.contains(&day(T0)), "{v1}");
        let v2 = row(&html, &format!("terms-version-{}", f.v2));
        assert!(v2.contains("<td class=\"accounts\">1 (25.0%)</td>"), "{v2}");
        let un = row(&html, "terms-version-unversioned");
        assert!(un.contains("<td class=\"accounts\">1 (25.0%)</td>"), "{un}");
        // No account data on the page: counts only.
        assert!(!html.contains("user1@example.org"));
        assert!(!html.contains("Zoë"));
        assert_eq!(html.contains("id=\"add-form\""), !read_only);
    }
}

#[tokio::test]
async fn consent_report_marks_the_current_terms_file() {
    let db = TestDb::new().await;
    let f = fixture(&db).await;
    let dir = tempfile::tempdir().unwrap();
    // Served (and so hashed) trimmed: the file's white space doesn't matter.
    let cfg = db.write_project(dir.path(), "", Some(&format!("\n  {V2}\n\n")));
    let r = json(&cli_with(&db, &cfg, &["consent", "report", "--json"]).await);
    assert_eq!(
        r["current_terms"],
        serde_json::json!({"sha256": terms::sha256_hex(V2), "terms_version_id": f.v2})
    );
    let by = &r["consent_types"][0]["by_terms_version"];
    assert_eq!(
        (&by[0]["current"], &by[1]["current"], &by[2]["current"]),
        (&Value::Bool(false), &Value::Bool(true), &Value::Bool(false))
    );
    let o = cli_with(&db, &cfg, &["consent", "report"]).await;
    let v2 = f.v2.to_string();
    assert!(
        lines(&out(&o))
            .iter()
            .any(|l| l.len() > 2 && l[0] == v2 && l[1] == "(current)"),
        "{}",
        out(&o)
    );
    let o = cli_with(&db, &cfg, &["consent", "terms"]).await;
    assert!(
        lines(&out(&o))
            .iter()
            .any(|l| l.len() > 2 && l[0] == v2 && l[1] == "(current)"),
        "{}",
        out(&o)
    );

    // The ops page marks it too.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let terms_path = dir.path().join("terms_of_use.txt");
    let ops = ConsentOps::new(db.pool()).with_terms_file(terms_path.clone());
    let server = tokio::spawn(boinc_ops::serve(
        listener,
        ops,
        boinc_ops::ServeOptions {
            read_only: true,
            credentials: Some(creds()),
            ..Default::default()
        },
    ));
    let page = || async {
        client()
            .get(format!("{base}/"))
            .basic_auth(USER, Some(PASS))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let html = page().await;
    assert!(
        row(&html, &format!("terms-version-{v2}")).contains("current"),
        "{html}"
    );
    assert!(!row(&html, &format!("terms-version-{}", f.v1)).contains("current"));
    assert!(!html.contains("id=\"current-terms-new\""));

    // New terms nobody has accepted yet: said so, nothing marked.
    std::fs::write(&terms_path, "Terms v3.").unwrap();
    let r = json(&cli_with(&db, &cfg, &["consent", "report", "--json"]).await);
    assert_eq!(r["current_terms"]["terms_version_id"], Value::Null);
    assert_eq!(r["current_terms"]["sha256"], terms::sha256_hex("Terms v3."));
    let o = cli_with(&db, &cfg, &["consent", "report"]).await;
    assert!(
        out(&o).contains("has not been accepted by anyone yet"),
        "{}",
        out(&o)
    );
    assert!(!out(&o).contains("(current)"), "{}", out(&o));
    // The page reuses its report for a minute (it shows its time), but the
    // terms file and the enabled flags are read fresh on every view.
    let mut c = db.conn().await;
    c.query_drop("UPDATE consent_type SET enabled = 1 WHERE shortname = 'STATSEXPORT'")
        .await
        .unwrap();
    let html = page().await;
    assert!(html.contains("id=\"current-terms-new\""), "{html}");
    assert!(!html.contains("badge current"), "{html}");
    assert!(
        row(&html, "report-STATSEXPORT").contains("<td class=\"enabled\">yes</td>"),
        "{html}"
    );
    server.abort();
}

/// Consented means consent_flag = 1 only (as db_dump exports it): a latest
/// row with flag 2 or -1 counts as withdrawn (or not required), in the
/// report, the ENROLL version breakdown and a user's history.
#[tokio::test]
async fn odd_flag_values_are_not_consent() {
    let db = TestDb::new().await;
    let f = fixture(&db).await;
    let mut c = db.conn().await;
    let stats = type_id(&mut c, "STATSEXPORT").await;
    let enroll = type_id(&mut c, "ENROLL").await;
    let odd = |user: i64, ct: i64, flag: i64, nr: i64| {
        (user, ct, T0 + 500_000, flag, nr, "odd".to_owned())
    };
    // u0 (STATSEXPORT consented) now has flag 2; u2 (consented) flag -1;
    // u0's ENROLL (v1) is superseded by a flag-2 not-required row.
    for row in [
        odd(f.users[0], stats, 2, 0),
        odd(f.users[2], stats, -1, 0),
        odd(f.users[0], enroll, 2, 1),
    ] {
        c.exec_drop(
            "INSERT INTO consent (userid, consent_type_id, consent_time, consent_flag, \
             consent_not_required, source) VALUES (?, ?, ?, ?, ?, ?)",
            row,
        )
        .await
        .unwrap();
    }
    let r = json(&cli(&db, &["consent", "report", "--json"]).await);
    let t = |name: &str| {
        r["consent_types"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["shortname"] == name)
            .unwrap()
            .clone()
    };
    let st = t("STATSEXPORT");
    assert_eq!(
        (
            &st["consented"],
            &st["withdrawn"],
            &st["not_required"],
            &st["never_asked"]
        ),
        (
            &Value::from(0),
            &Value::from(3),
            &Value::from(0),
            &Value::from(3)
        ),
        "{st:#}"
    );
    let en = t("ENROLL");
    assert_eq!(
        (&en["consented"], &en["not_required"]),
        (&Value::from(3), &Value::from(2)),
        "{en:#}"
    );
    let v1 = en["by_terms_version"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["terms_version_id"] == f.v1)
        .unwrap()
        .clone();
    assert_eq!(v1["users"], 1, "{v1:#}");

    let h = json(
        &cli(
            &db,
            &[
                "consent",
                "history",
                "--user",
                &f.users[2].to_string(),
                "--json",
            ],
        )
        .await,
    );
    let current = h["current"].as_array().unwrap();
    let se = current
        .iter()
        .find(|c| c["consent_type"] == "STATSEXPORT")
        .unwrap();
    assert_eq!(se["state"], "withdrawn", "{h:#}");
    let last = h["consents"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["consent_flag"], &last["state"]),
        (&Value::from(-1), &Value::from("withdrawn"))
    );
}
