//! The schema tool and the database-level guards, against real MariaDB.

use boinc_db::mysql_async::prelude::*;
use boinc_db::queries;
use boinc_db::schema;
use boinc_db::testing::fixtures::{self, new_user};
use boinc_db::testing::rows::{base_tables, table_rows};
use boinc_db::testing::TestDb;

async fn table_counts(conn: &mut boinc_db::mysql_async::Conn) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for t in ["user", "team", "host", "consent", "consent_type"] {
        let n: i64 = conn
            .query_first(format!("SELECT COUNT(*) FROM {t}"))
            .await
            .unwrap()
            .unwrap();
        out.push((t.to_owned(), n));
    }
    out
}

#[tokio::test]
async fn init_creates_predefined_types_and_upgrade_is_idempotent() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let types = queries::consent_types(&mut conn).await.unwrap();
    let names: Vec<_> = types.iter().map(|t| t.shortname.as_str()).collect();
    assert_eq!(names, ["ENROLL", "STATSEXPORT"]);
    let enroll = &types[0];
    assert_eq!(
        (enroll.enabled, enroll.project_specific, enroll.privacypref),
        (0, 0, 0)
    );
    assert_eq!(
        enroll.description,
        "General terms-of-use for this BOINC project."
    );
    let stats = &types[1];
    assert_eq!(
        (stats.enabled, stats.project_specific, stats.privacypref),
        (0, 0, 1)
    );

    // A project turned ENROLL on; an upgrade must not turn it back off.
    conn.query_drop("UPDATE consent_type SET enabled = 1 WHERE shortname = 'ENROLL'")
        .await
        .unwrap();
    let before = table_counts(&mut conn).await;
    let r1 = schema::upgrade(&mut conn).await.unwrap();
    let r2 = schema::upgrade(&mut conn).await.unwrap();
    assert!(r1.applied.is_empty(), "{:?}", r1.applied);
    assert!(r2.applied.is_empty(), "{:?}", r2.applied);
    assert_eq!(table_counts(&mut conn).await, before);
    let e = queries::consent_type_by_name(&mut conn, "ENROLL")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.enabled, 1);
}

const UPSTREAM_TABLES: &str = include_str!("fixtures/upstream_tables.sql");

/// A row in every table that has none, every column set to a value that
/// is not its default (numbers 7, times, text), so a statement that
/// rewrites a column shows.
async fn fill_every_table(conn: &mut boinc_db::mysql_async::Conn) {
    for t in base_tables(conn).await {
        let n: i64 = conn
            .query_first(format!("SELECT COUNT(*) FROM `{t}`"))
            .await
            .unwrap()
            .unwrap();
        if n > 0 {
            continue;
        }
        let cols: Vec<(String, String)> = conn
            .exec(
                "SELECT column_name, data_type FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position",
                (&t,),
            )
            .await
            .unwrap();
        let names: Vec<String> = cols.iter().map(|(c, _)| format!("`{c}`")).collect();
        let values: Vec<&str> = cols
            .iter()
            .map(|(c, ty)| match (c.as_str(), ty.as_str()) {
                // Upstream's FK from consent to consent_type (id 1: ENROLL).
                ("consent_type_id", _) => "1",
                (_, "tinyint" | "smallint" | "mediumint" | "int" | "bigint") => "7",
                (_, "float" | "double" | "decimal") => "7.5",
                (_, "date" | "datetime" | "timestamp") => "'2020-01-02 03:04:05'",
                _ => "'x7'",
            })
            .collect();
        conn.query_drop(format!(
            "INSERT INTO `{t}` ({}) VALUES ({})",
            names.join(", "),
            values.join(", ")
        ))
        .await
        .unwrap_or_else(|e| panic!("fill {t}: {e}"));
    }
}

/// A database of upstream BOINC's whole schema (its layout: non-unique
/// shortname index, FK under its own name, no trigger; plus the tie-unsafe
/// view of older releases), a row in every table: the upgrade adds what
/// it needs and leaves every row of every table it found as it was.
#[tokio::test]
async fn upgrade_brings_an_upstream_boinc_database_up_without_touching_data() {
    let db = TestDb::empty().await;
    let mut conn = db.conn().await;
    boinc_db::testing::run_sql(&mut conn, UPSTREAM_TABLES).await;
    conn.query_drop(
        "UPDATE consent_type SET enabled = 1 WHERE shortname = 'ENROLL';
         CREATE VIEW latest_consent AS SELECT userid, consent_type_id, consent_flag FROM consent;",
    )
    .await
    .unwrap();
    {
        // Non-strict, as upstream's PHP writes: a short column takes what fits.
        let mut filler = db.conn().await;
        filler
            .query_drop("SET SESSION sql_mode = ''")
            .await
            .unwrap();
        fill_every_table(&mut filler).await;
    }
    let found = base_tables(&mut conn).await;
    let mut before = Vec::new();
    for t in &found {
        let rows = table_rows(&mut conn, t).await;
        assert!(!rows.is_empty(), "{t} holds no row");
        before.push((t.clone(), rows));
    }

    let report = schema::upgrade(&mut conn).await.unwrap();
    assert!(report
        .applied
        .iter()
        .any(|a| a.contains("consent_name_unique")));
    assert!(report
        .applied
        .iter()
        .any(|a| a.contains("consent_type_no_delete")));
    assert!(
        !report.applied.iter().any(|a| a.contains("consent_type_fk")),
        "upstream's FK must be recognised: {:?}",
        report.applied
    );
    assert!(!report
        .applied
        .iter()
        .any(|a| a.contains("userid_ctid_timestamp")));

    // Every row of every table it found, as it was.
    for (t, rows) in &before {
        assert_eq!(&table_rows(&mut conn, t).await, rows, "table {t} changed");
    }
    // The tables it added hold nothing yet (boinc-rpc's shared limit
    // counters among them).
    let added: Vec<String> = base_tables(&mut conn)
        .await
        .into_iter()
        .filter(|t| !found.contains(t))
        .collect();
    assert!(added.iter().any(|t| t == "rpc_limit"), "{added:?}");
    for t in &added {
        assert_eq!(table_rows(&mut conn, t).await, Vec::<String>::new(), "{t}");
    }
    let types = queries::consent_types(&mut conn).await.unwrap();
    assert_eq!(types.len(), 2);
    assert_eq!(types[0].enabled, 1);
    let again = schema::upgrade(&mut conn).await.unwrap();
    assert!(again.applied.is_empty(), "{:?}", again.applied);
}

#[tokio::test]
async fn consent_types_cannot_be_deleted_even_without_consent_rows() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let err = conn
        .query_drop("DELETE FROM consent_type WHERE shortname = 'STATSEXPORT'")
        .await
        .expect_err("delete of an unused type must fail");
    assert!(err.to_string().contains("cannot be deleted"), "{err}");
    // and one with consent rows (FK and trigger)
    fixtures::enroll(&mut conn, 1, 1, "x").await;
    assert!(conn
        .query_drop("DELETE FROM consent_type WHERE shortname = 'ENROLL'")
        .await
        .is_err());
    assert_eq!(queries::consent_types(&mut conn).await.unwrap().len(), 2);
}

#[tokio::test]
async fn shortname_is_unique() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let err = conn
        .query_drop(
            "INSERT INTO consent_type (shortname, description, enabled, project_specific, privacypref) \
             VALUES ('ENROLL', 'dup', 0, 1, 0)",
        )
        .await
        .unwrap_err();
    assert!(boinc_db::DbError::from(err).is_duplicate_key());
}

#[tokio::test]
async fn latest_consent_view_breaks_same_second_ties_by_id() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    conn.query_drop(
        "INSERT INTO consent (userid, consent_type_id, consent_time, consent_flag, consent_not_required, source) VALUES \
         (5, 2, 100, 1, 0, 'a'), (5, 2, 200, 1, 0, 'b'), (5, 2, 200, 0, 0, 'c'), (6, 2, 50, 1, 0, 'd')",
    )
    .await
    .unwrap();
    let rows: Vec<(i64, i64, i64)> = conn
        .query("SELECT userid, consent_type_id, consent_flag FROM latest_consent ORDER BY userid")
        .await
        .unwrap();
    assert_eq!(rows, vec![(5, 2, 0), (6, 2, 1)]);
    let latest = boinc_db::consent::latest::row(&mut conn, 5, 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.source, "c");
}

#[tokio::test]
async fn email_and_name_are_unique() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let mk = |email: &'static str, name: &'static str, auth: &'static str| queries::NewUser {
        cross_project_id: "c",
        ..new_user(1, email, name, auth)
    };
    queries::insert_user(&mut conn, &mk("a@x.org", "A", "1"))
        .await
        .unwrap();
    let e = queries::insert_user(&mut conn, &mk("A@X.org", "B", "2"))
        .await
        .unwrap_err();
    assert!(e.is_duplicate_key(), "email unique, case-insensitive: {e}");
    let e = queries::insert_user(&mut conn, &mk("b@x.org", "A", "3"))
        .await
        .unwrap_err();
    assert!(e.is_duplicate_key(), "name unique: {e}");
    let u = queries::user_by_email(&mut conn, "A@x.ORG")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.name(), "A");
}

#[tokio::test]
async fn private_server_survives_stop_and_resume_and_pool_recovers() {
    let mut server = boinc_db::testing::PrivateMariaDb::start().await;
    let settings = server.settings("outage");
    boinc_db::schema::init(&settings).await.unwrap();
    let pool = boinc_db::pool(&settings);
    let mut c = pool.get_conn().await.unwrap();
    assert_eq!(queries::consent_types(&mut c).await.unwrap().len(), 2);
    drop(c);
    server.stop();
    let down = tokio::time::timeout(std::time::Duration::from_secs(5), pool.get_conn()).await;
    assert!(
        !matches!(down, Ok(Ok(_))),
        "no connection while the server is down"
    );
    server.resume().await;
    let mut c = pool.get_conn().await.unwrap();
    assert_eq!(queries::consent_types(&mut c).await.unwrap().len(), 2);
}
