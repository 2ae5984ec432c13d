//! `boinc-ops db convert-utf8mb4` through the binary: a refusal lists
//! what does not fit and changes nothing (exit 3); a dry run lists; the
//! real run converts and asks for the restart.

use std::process::Command;

use boinc_db::testing::TestDb;
use mysql_async::prelude::*;

fn run(config: &std::path::Path, args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_boinc-ops"))
        .arg("--config")
        .arg(config)
        .args(["db", "convert-utf8mb4"])
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("BOINC_DATABASE_URL")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

async fn name_collation(db: &TestDb) -> String {
    let mut c = db.conn().await;
    c.query_first(
        "SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_NAME = 'user' AND COLUMN_NAME = 'name'",
    )
    .await
    .unwrap()
    .unwrap()
}

#[tokio::test]
async fn convert_utf8mb4_cli() {
    let db = TestDb::latin1().await;
    let dir = tempfile::tempdir().unwrap();
    let config = db.write_project(dir.path(), "", None);
    let mut c = db.php_latin1_conn().await;
    for (id, name) in [(1, "李小龍".to_owned()), (2, "x".repeat(191))] {
        boinc_db::testing::insert_account(&mut c, id, &format!("auth{id}")).await;
        c.exec_drop(
            "UPDATE user SET name = ? WHERE email_addr = ?",
            (name, format!("u{id}@example.com")),
        )
        .await
        .unwrap();
    }
    // Zoë and Zoe: one name once compared as utf8mb4_unicode_ci.
    c.query_drop("UPDATE user SET name = 'Zoe' WHERE email_addr = 'u2@example.com'")
        .await
        .unwrap();
    boinc_db::testing::insert_account(&mut c, 3, "auth3").await;
    c.exec_drop(
        "UPDATE user SET name = ? WHERE email_addr = 'u3@example.com'",
        ("Zoë",),
    )
    .await
    .unwrap();

    let (code, out) = run(&config, &[]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("would collide in user's unique index name (equal as utf8mb4_unicode_ci)"),
        "{out}"
    );
    assert!(out.contains("nothing was changed"), "{out}");
    assert_eq!(name_collation(&db).await, "latin1_swedish_ci");

    c.query_drop("UPDATE user SET name = 'Zoe 2' WHERE email_addr = 'u2@example.com'")
        .await
        .unwrap();
    let (code, out) = run(&config, &["--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("would convert user: online"), "{out}");
    assert_eq!(name_collation(&db).await, "latin1_swedish_ci");

    let (code, out) = run(&config, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("converted user online"), "{out}");
    assert!(out.contains("RESTART boinc-rpc"), "{out}");
    assert_eq!(name_collation(&db).await, "utf8mb4_unicode_ci");
    let mut u = db.conn().await;
    let name: String = u
        .query_first("SELECT name FROM user WHERE email_addr = 'u1@example.com'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(name, "李小龍");
    let (code, out) = run(&config, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("converted "), "{out}");
}
