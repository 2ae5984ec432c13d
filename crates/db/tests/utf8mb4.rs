//! `db convert-utf8mb4` on latin1 databases holding what PHP wrote over
//! its latin1 connection (CJK, emoji: UTF-8 bytes) and what a genuinely
//! latin1 client wrote (single bytes such as F6 for ö): every name reads
//! the same before (through our decoding) and after (plain utf8mb4), the
//! tables end as upstream's own conversion leaves them (its statements,
//! run afterwards, change nothing), a concurrent writer loses nothing,
//! and a run that cannot fit or would merge values changes nothing.

use std::collections::BTreeMap;

use boinc_db::schema::utf8mb4::{self, Method};
use boinc_db::testing::releases::Release;
use boinc_db::testing::TestDb;
use boinc_db::text::charset::{decode, Charset};
use mysql_async::prelude::*;
use mysql_async::Conn;

/// (id, name bytes as stored).
fn names() -> Vec<(i64, Vec<u8>)> {
    vec![
        (1, "李小龍".as_bytes().to_vec()),
        (2, "🚀 Rocket 👩‍🚀".as_bytes().to_vec()),
        (3, b"J\xF6rg M\xFCller".to_vec()),
        (4, b"\xE6\x9D\x8E J\xF6rg".to_vec()),
        (5, b"plain".to_vec()),
        (6, "Zoë".as_bytes().to_vec()),
        (7, b"\x80uro \x9D".to_vec()),
    ]
}

async fn raw(db: &TestDb) -> Conn {
    let mut c = db.conn().await;
    c.query_drop("SET NAMES binary").await.unwrap();
    c
}

async fn fill(db: &TestDb, extra_users: usize) {
    let mut c = raw(db).await;
    for (id, name) in names() {
        c.exec_drop(
            "INSERT INTO user (id, create_time, email_addr, name, authenticator, total_credit, \
             expavg_credit, expavg_time, teamid, venue, send_email, show_hosts, posts, seti_id, \
             seti_nresults, seti_last_result_time, seti_total_cpu, has_profile, cross_project_id, \
             passwd_hash, email_validated, donated, country) \
             VALUES (?, 1, ?, ?, ?, 1, 0, 0, 0, '', 1, 1, 0, 0, 0, 0, 0, 0, 'x', 'h', 0, 0, ?)",
            (
                id,
                format!("u{id}@example.com"),
                name.clone(),
                format!("auth{id}"),
                name.clone(),
            ),
        )
        .await
        .unwrap();
        c.exec_drop(
            "INSERT INTO team (id, create_time, userid, name, name_lc, url, type, name_html, \
             description, nusers, country, total_credit, expavg_credit, expavg_time) \
             VALUES (?, 1, ?, ?, '', '', 1, '', ?, 1, '', 0, 0, 0)",
            (id, id, name.clone(), name.clone()),
        )
        .await
        .unwrap();
        c.exec_drop(
            "INSERT INTO consent (userid, consent_type_id, consent_time, consent_flag, \
             consent_not_required, source) SELECT ?, id, 1, 1, 0, ? FROM consent_type \
             WHERE shortname = 'ENROLL'",
            (id, name.clone()),
        )
        .await
        .unwrap();
    }
    if extra_users > 0 {
        c.query_drop(format!(
            "INSERT INTO user (id, create_time, email_addr, name, authenticator, total_credit, \
             expavg_credit, expavg_time, teamid, venue, send_email, show_hosts, posts, seti_id, \
             seti_nresults, seti_last_result_time, seti_total_cpu, has_profile, cross_project_id, \
             passwd_hash, email_validated, donated) \
             SELECT 100 + seq, 1, CONCAT('bulk', seq, '@example.com'), \
             CONCAT(X'E69D8E', ' bulk ', seq), CONCAT('bulkauth', seq), 0, 0, 0, 0, '', 1, 1, 0, 0, \
             0, 0, 0, 0, 'x', 'h', 0, 0 FROM seq_1_to_{extra_users}"
        ))
        .await
        .unwrap();
    }
    c.disconnect().await.ok();
}

/// Every text value of the tables that hold the test's names, as text.
async fn texts(c: &mut Conn) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (t, cols) in [
        ("user", "id, name, country, email_addr"),
        ("team", "id, name, description"),
        ("consent", "userid, source"),
    ] {
        let rows: Vec<mysql_async::Row> = c
            .query(format!("SELECT {cols} FROM {t} ORDER BY 1"))
            .await
            .unwrap();
        for r in rows {
            let id: i64 = r.get(0).unwrap();
            for i in 1..r.len() {
                let v: Option<Vec<u8>> = r.get(i).unwrap();
                out.insert(
                    format!("{t}.{}#{id}", r.columns_ref()[i].name_str()),
                    v.map(|b| decode(&b).into_owned()).unwrap_or_default(),
                );
            }
        }
    }
    out
}

async fn collations(c: &mut Conn) -> Vec<(String, String)> {
    c.query(
        "SELECT CONCAT(TABLE_NAME, '.', COLUMN_NAME), COLLATION_NAME FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND COLLATION_NAME IS NOT NULL ORDER BY 1",
    )
    .await
    .unwrap()
}

async fn definitions(c: &mut Conn) -> BTreeMap<String, String> {
    let tables: Vec<String> = c
        .query(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_TYPE = 'BASE TABLE'",
        )
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for t in tables {
        let (_, def): (String, String) = c
            .query_first(format!("SHOW CREATE TABLE `{t}`"))
            .await
            .unwrap()
            .unwrap();
        let sum: Option<(String, Option<i64>)> = c
            .query_first(format!("CHECKSUM TABLE `{t}`"))
            .await
            .unwrap();
        out.insert(t, format!("{def}\n{:?}", sum.map(|s| s.1)));
    }
    out
}

/// Upstream's own statements (db_update 2026-05-02 a and b, restated):
/// the shrunk columns, then CONVERT TO for the tables it converts.
async fn upstream_update(c: &mut Conn) {
    for (t, col, def, _) in utf8mb4::SHRUNK {
        c.query_drop(format!("ALTER TABLE `{t}` MODIFY `{col}` {def}"))
            .await
            .unwrap_or_else(|e| panic!("{t}.{col}: {e}"));
    }
    for t in [
        "platform",
        "app",
        "app_version",
        "user",
        "team",
        "host",
        "workunit",
        "result",
        "batch",
        "job_file",
        "msg_from_host",
        "msg_to_host",
        "profile",
        "category",
        "forum",
        "thread",
        "post",
        "forum_preferences",
        "private_messages",
        "donation_items",
        "donation_paypal",
        "friend",
        "badge",
        "token",
        "consent",
        "consent_type",
    ] {
        c.query_drop(format!(
            "ALTER TABLE `{t}` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        ))
        .await
        .unwrap_or_else(|e| panic!("{t}: {e}"));
    }
}

async fn run(db: &TestDb, dry_run: bool) -> utf8mb4::Report {
    let mut c = db.conn().await;
    let mut quiet = |_: &str| {};
    let r = utf8mb4::convert(&mut c, dry_run, &mut quiet).await.unwrap();
    c.disconnect().await.ok();
    r
}

async fn latin1_release() -> TestDb {
    let db = TestDb::release(Release::R1_4_7, Charset::Latin1).await;
    let mut c = db.conn().await;
    boinc_db::schema::upgrade(&mut c).await.unwrap();
    c.disconnect().await.ok();
    db
}

#[tokio::test]
async fn every_name_reads_the_same_and_upstream_changes_nothing_after() {
    let db = latin1_release().await;
    fill(&db, 0).await;
    let mut c = raw(&db).await;
    let before = texts(&mut c).await;
    assert_eq!(before["user.name#1"], "李小龍");
    assert_eq!(before["user.name#3"], "Jörg Müller");
    assert_eq!(before["user.name#4"], "李 Jörg");
    assert_eq!(before["user.name#7"], "€uro \u{9D}");

    // A dry run lists and changes nothing.
    let defs = definitions(&mut c).await;
    let dry = run(&db, true).await;
    assert!(dry.converted.is_empty());
    assert!(dry
        .would_convert
        .iter()
        .any(|(t, m)| t == "user" && *m == Method::Online));
    assert!(dry
        .would_convert
        .iter()
        .any(|(t, m)| t == "consent_type" && *m == Method::Alter));
    assert!(dry
        .repaired
        .iter()
        .any(|(t, col, n)| t == "user" && col == "name" && *n == 3));
    assert_eq!(
        definitions(&mut c).await,
        defs,
        "the dry run changed something"
    );

    let report = run(&db, false).await;
    assert!(!report.blocked());
    assert!(report
        .converted
        .iter()
        .any(|(t, m, _)| t == "user" && *m == Method::Online));
    assert!(report
        .converted
        .iter()
        .any(|(t, m, _)| t == "team" && *m == Method::Online));
    assert!(report
        .converted
        .iter()
        .any(|(t, m, _)| t == "consent_type" && *m == Method::Alter));

    // Read plainly as utf8mb4 now: the same text.
    let mut u = db.conn().await;
    u.query_drop("SET NAMES utf8mb4").await.unwrap();
    assert_eq!(texts(&mut u).await, before);
    for (col, coll) in collations(&mut u).await {
        assert_eq!(coll, "utf8mb4_unicode_ci", "{col}");
    }
    // The foreign key and the no-delete guard are still there.
    let fk: Option<i64> = u
        .query_first(
            "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = 'consent' \
             AND REFERENCED_TABLE_NAME = 'consent_type'",
        )
        .await
        .unwrap();
    assert_eq!(fk, Some(1));
    assert!(u
        .query_drop("DELETE FROM consent_type WHERE shortname = 'STATSEXPORT'")
        .await
        .is_err());
    // Nothing of ours is left behind.
    let left: Option<i64> = u
        .query_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME LIKE '\\_utf8mb4%'",
        )
        .await
        .unwrap();
    assert_eq!(left, Some(0));

    // Upstream's statements afterwards change nothing; nor does a re-run.
    let converted = definitions(&mut u).await;
    upstream_update(&mut u).await;
    assert_eq!(definitions(&mut u).await, converted);
    let again = run(&db, false).await;
    assert!(
        again.converted.is_empty() && again.repaired.is_empty(),
        "{again:?}"
    );
    assert_eq!(definitions(&mut u).await, converted);

    // And our binaries' sessions now talk utf8mb4.
    let mut fresh = db.conn().await;
    assert_eq!(
        boinc_db::text::charset::session_charset(&mut fresh)
            .await
            .unwrap(),
        Charset::Utf8mb4
    );
}

#[tokio::test]
async fn nothing_changes_when_values_would_not_fit_or_would_merge() {
    let db = latin1_release().await;
    fill(&db, 0).await;
    let mut c = raw(&db).await;
    // 200 characters: fine in 1.4's varchar(254), not in 191.
    let long = format!("{}{}", "é".repeat(20), "a".repeat(180));
    c.exec_drop("UPDATE user SET name = ? WHERE id = 5", (long.as_bytes(),))
        .await
        .unwrap();
    // Distinct bytes, equal under utf8mb4_unicode_ci.
    c.exec_drop("UPDATE team SET name = ? WHERE id = 5", ("Zoe".as_bytes(),))
        .await
        .unwrap();
    let defs = definitions(&mut c).await;
    let r = run(&db, false).await;
    assert!(r.blocked());
    assert_eq!(
        r.too_long,
        vec![utf8mb4::TooLong {
            table: "user".into(),
            column: "name".into(),
            row: "5".into(),
            chars: 200,
            max: 191
        }]
    );
    assert_eq!(r.collisions.len(), 1, "{:?}", r.collisions);
    assert_eq!(r.collisions[0].table, "team");
    let mut merged = r.collisions[0].values.clone();
    merged.sort();
    assert_eq!(merged, vec!["Zoe".to_owned(), "Zoë".to_owned()]);
    assert!(r.converted.is_empty() && r.repaired.is_empty());
    assert_eq!(definitions(&mut c).await, defs);
}

#[tokio::test]
async fn an_interrupted_run_is_finished_by_the_next() {
    let db = latin1_release().await;
    fill(&db, 0).await;
    let mut c = raw(&db).await;
    let before = texts(&mut c).await;
    // Interrupted mid-copy: a half-filled copy and its triggers.
    c.query_drop("CREATE TABLE _utf8mb4_new_user LIKE user")
        .await
        .unwrap();
    c.query_drop(
        "CREATE TRIGGER _utf8mb4_new_user_d AFTER DELETE ON user FOR EACH ROW \
         DELETE FROM _utf8mb4_new_user WHERE id = OLD.id",
    )
    .await
    .unwrap();
    // Interrupted between CONVERT TO and putting the bytes back (team),
    // after the repair step made its values UTF-8.
    for (id, name) in names() {
        let fixed = decode(&name).into_owned();
        c.exec_drop(
            "UPDATE team SET name = ?, description = ? WHERE id = ?",
            (fixed.as_bytes(), fixed.as_bytes(), id),
        )
        .await
        .unwrap();
    }
    c.query_drop(
        "CREATE TABLE _utf8mb4_pending (table_name VARCHAR(64) NOT NULL, \
         column_name VARCHAR(64) NOT NULL, PRIMARY KEY (table_name, column_name))",
    )
    .await
    .unwrap();
    c.query_drop(
        "INSERT INTO _utf8mb4_pending VALUES ('team', 'name'), ('team', 'description'), \
         ('team', 'name_lc'), ('team', 'url'), ('team', 'name_html'), ('team', 'country')",
    )
    .await
    .unwrap();
    c.query_drop("ALTER TABLE team CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        .await
        .unwrap();
    let r = run(&db, false).await;
    assert!(r.cleaned.contains(&"_utf8mb4_new_user".to_owned()), "{r:?}");
    let mut u = db.conn().await;
    u.query_drop("SET NAMES utf8mb4").await.unwrap();
    assert_eq!(texts(&mut u).await, before);
    let left: Option<i64> = u
        .query_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME LIKE '\\_utf8mb4%'",
        )
        .await
        .unwrap();
    assert_eq!(left, Some(0));
}

/// A writer inserting, renaming and deleting accounts all through the
/// online conversion of a table of several batches: afterwards the table
/// holds exactly what the writer left, and every converted name as text.
/// (The writer's text is ASCII: a session opened before the conversion
/// still talks latin1, so its non-ASCII text would be converted twice
/// once the table is utf8mb4; hence the restart the tool asks for.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_writer_loses_nothing() {
    let db = TestDb::latin1().await;
    fill(&db, 9000).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut w = db.php_latin1_conn().await;
        tokio::spawn(async move {
            let mut i = 0i64;
            let mut worst = std::time::Duration::ZERO;
            let mut deadlocks = 0;
            // One statement, retried if InnoDB picked it as a deadlock
            // victim (as our binaries retry): anything else fails.
            async fn exec(
                w: &mut Conn,
                sql: &str,
                p: Vec<mysql_async::Value>,
                deadlocks: &mut u32,
            ) {
                // Sent as text with the values inlined, as BOINC's PHP
                // (mysqli_query) and C++ daemons send theirs. A server-side
                // prepared statement executing at the instant of the swap
                // can fail with 1146 naming the copy (MariaDB 10.11, seen
                // only with prepared statements; it writes nothing): see
                // docs/configuration.md, "Restart boinc-rpc".
                let mut text = String::new();
                let mut values = p.iter();
                for ch in sql.chars() {
                    match ch {
                        '?' => text.push_str(&values.next().expect("a value per ?").as_sql(false)),
                        _ => text.push(ch),
                    }
                }
                loop {
                    match w.query_drop(&text).await {
                        Ok(()) => return,
                        Err(mysql_async::Error::Server(e)) if e.code == 1213 => *deadlocks += 1,
                        Err(e) => panic!("{sql}: {e}"),
                    }
                }
            }
            while (!stop.load(std::sync::atomic::Ordering::Relaxed) || i < 50) && i < 1200 {
                let t = std::time::Instant::now();
                let id = 20000 + i;
                exec(
                    &mut w,
                    "INSERT INTO user (id, create_time, email_addr, name, authenticator, \
                     total_credit, expavg_credit, expavg_time, teamid, venue, send_email, \
                     show_hosts, posts, seti_id, seti_nresults, seti_last_result_time, \
                     seti_total_cpu, has_profile, cross_project_id, passwd_hash, \
                     email_validated, donated) VALUES (?, 1, ?, ?, ?, 0, 0, 0, 0, '', 1, 1, 0, \
                     0, 0, 0, 0, 0, 'x', 'h', 0, 0)",
                    vec![
                        id.into(),
                        format!("w{i}@example.com").into(),
                        format!("new {i}").into(),
                        format!("wauth{i}").into(),
                    ],
                    &mut deadlocks,
                )
                .await;
                // Rename an early account, delete another.
                exec(
                    &mut w,
                    "UPDATE user SET name = ? WHERE id = ?",
                    vec![format!("renamed {i}").into(), (101 + i * 7).into()],
                    &mut deadlocks,
                )
                .await;
                exec(
                    &mut w,
                    "DELETE FROM user WHERE id = ?",
                    vec![(101 + i * 7 + 1).into()],
                    &mut deadlocks,
                )
                .await;
                worst = worst.max(t.elapsed());
                i += 1;
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            eprintln!("writer: {deadlocks} deadlock(s) retried");
            (i, worst)
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let report = run(&db, false).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (n, worst) = writer.await.unwrap();
    assert!(report
        .converted
        .iter()
        .any(|(t, m, _)| t == "user" && *m == Method::Online));
    eprintln!("writer: {n} rounds, longest {worst:?}");
    let mut u = db.conn().await;
    u.query_drop("SET NAMES utf8mb4").await.unwrap();
    let rows: Vec<(i64, String)> = u
        .query("SELECT id, name FROM user ORDER BY id")
        .await
        .unwrap();
    let got: BTreeMap<i64, String> = rows.into_iter().collect();
    let mut want: BTreeMap<i64, String> = BTreeMap::new();
    for (id, name) in names() {
        want.insert(id, decode(&name).into_owned());
    }
    for s in 1..=9000 {
        want.insert(100 + s, format!("李 bulk {s}"));
    }
    for i in 0..n {
        want.insert(20000 + i, format!("new {i}"));
        want.insert(101 + i * 7, format!("renamed {i}"));
        want.remove(&(101 + i * 7 + 1));
    }
    let diff: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(k) != Some(v))
        .map(|(k, v)| (k, v, got.get(k)))
        .chain(
            got.iter()
                .filter(|(k, _)| !want.contains_key(k))
                .map(|(k, v)| (k, v, None)),
        )
        .take(10)
        .collect();
    assert!(
        diff.is_empty(),
        "the converted table differs from what was written: {diff:?}"
    );
    assert_eq!(got.len(), want.len());
}

/// Every latin1 release shape converts, MyISAM tables of releases before
/// 1.3 included (by ALTER), and reads the same afterwards.
#[tokio::test]
async fn every_release_shape_converts() {
    for release in Release::ALL {
        let db = TestDb::release(release, Charset::Latin1).await;
        let mut c = db.conn().await;
        boinc_db::schema::upgrade(&mut c).await.unwrap();
        c.disconnect().await.ok();
        fill(&db, 0).await;
        let mut c = raw(&db).await;
        let before = texts(&mut c).await;
        let r = run(&db, false).await;
        assert!(!r.blocked(), "{}: {r:?}", release.name());
        if release.myisam() {
            assert!(
                r.converted
                    .iter()
                    .any(|(t, m, _)| t == "team" && *m == Method::Alter),
                "{}: {r:?}",
                release.name()
            );
        }
        let mut u = db.conn().await;
        u.query_drop("SET NAMES utf8mb4").await.unwrap();
        assert_eq!(texts(&mut u).await, before, "{}", release.name());
        for (col, coll) in collations(&mut u).await {
            assert_eq!(coll, "utf8mb4_unicode_ci", "{}: {col}", release.name());
        }
        let converted = definitions(&mut u).await;
        upstream_update(&mut u).await;
        assert_eq!(definitions(&mut u).await, converted, "{}", release.name());
    }
}
