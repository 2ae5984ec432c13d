//! The `boinc-ops` binary against a real MariaDB: schema tool, each
//! consent-type command and refusal, delete refused, serve refusing to
//! start without credentials.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use boinc_db::testing::TestDb;
use common::{audit, cli_as, err, get_type, out, snapshot, BIN};

/// Run the binary with a config.xml naming `db`, as the admin `cli-tester`.
async fn run(config: &Path, args: &[&str]) -> Output {
    cli_as("cli-tester", config, args).await
}

async fn project(extra: &str) -> (TestDb, tempfile::TempDir, std::path::PathBuf) {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = db.write_project(dir.path(), extra, None);
    (db, dir, cfg)
}

#[tokio::test]
async fn ops_cli_db_init_and_upgrade_are_idempotent() {
    let db = TestDb::empty().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = db.write_project(dir.path(), "", None);
    let o = run(&cfg, &["db", "init"]).await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("applied"), "{}", out(&o));
    assert!(get_type(&db, "ENROLL").await.is_some());
    let o = run(&cfg, &["db", "upgrade"]).await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("up to date"), "{}", out(&o));
    let o = run(&cfg, &["db", "init"]).await;
    assert!(o.status.success());
    assert!(out(&o).contains("up to date"), "{}", out(&o));
    // BOINC_DATABASE_URL alone is enough when there is no config file.
    let o = tokio::task::spawn_blocking({
        let url = db.url();
        move || {
            Command::new(BIN)
                .args(["--config", "/nonexistent/config.xml", "db", "upgrade"])
                .env("BOINC_DATABASE_URL", url)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", err(&o));
}

#[tokio::test]
async fn ops_cli_add_enable_privacypref_list_history() {
    let (db, _dir, cfg) = project("").await;
    let o = run(
        &cfg,
        &[
            "consent-type",
            "add",
            "NEWSLETTER",
            "Send me the newsletter",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", err(&o));
    let t = get_type(&db, "NEWSLETTER").await.unwrap();
    assert_eq!((t.enabled, t.project_specific, t.privacypref), (0, 1, 0));

    for args in [
        &["consent-type", "enable", "NEWSLETTER"][..],
        &["consent-type", "privacypref", "NEWSLETTER", "on"],
        &["consent-type", "disable", "NEWSLETTER"],
        &["consent-type", "enable", "NEWSLETTER"],
        &["consent-type", "privacypref", "NEWSLETTER", "off"],
    ] {
        let o = run(&cfg, args).await;
        assert!(o.status.success(), "{args:?}: {}", err(&o));
    }
    let t = get_type(&db, "NEWSLETTER").await.unwrap();
    assert_eq!((t.enabled, t.privacypref), (1, 0));
    // A no-op says so and writes no audit row.
    let n = audit(&db).await.len();
    let o = run(&cfg, &["consent-type", "enable", "NEWSLETTER"]).await;
    assert!(o.status.success());
    assert!(out(&o).contains("nothing changed"));
    assert_eq!(audit(&db).await.len(), n);

    let a = audit(&db).await;
    assert_eq!(a.len(), 6);
    assert!(a.iter().all(|e| e.actor == "cli-tester"), "{a:?}");

    let o = run(&cfg, &["consent-type", "list"]).await;
    assert!(o.status.success());
    let text = out(&o);
    assert!(text.starts_with("ID"), "{text}");
    for needle in [
        "ENROLL",
        "STATSEXPORT",
        "NEWSLETTER",
        "PRIVACYPREF",
        "Send me the newsletter",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    let o = run(&cfg, &["consent-type", "list", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let nl = v
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["shortname"] == "NEWSLETTER")
        .unwrap();
    assert_eq!(nl["enabled"], 1);
    assert_eq!(nl["project_specific"], 1);
    assert_eq!(nl["privacypref"], 0);

    let o = run(&cfg, &["consent-type", "history", "NEWSLETTER"]).await;
    assert!(o.status.success());
    let text = out(&o);
    assert!(
        text.contains("cli-tester") && text.contains("privacypref_off") && text.contains("UTC")
    );
    let o = run(&cfg, &["consent-type", "history", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v.as_array().unwrap().len(), 6);
    assert_eq!(v[0]["action"], "privacypref_off");
}

#[tokio::test]
async fn ops_cli_refusals_exit_nonzero_and_change_nothing() {
    let (db, _dir, cfg) = project("").await;
    let o = run(&cfg, &["consent-type", "add", "DUP", "first"]).await;
    assert!(o.status.success());
    let snap = snapshot(&db).await;
    let long = "A".repeat(192);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["add", "DUP", "again"], "already exists"),
        (vec!["add", "ENROLL", "again"], "already exists"),
        (vec!["add", "lowercase", "d"], "capital letters"),
        (vec!["add", "HAS SPACE", "d"], "spaces"),
        (vec!["add", "", "d"], "empty"),
        (vec!["add", &long, "d"], "191"),
        (vec!["add", "GOOD", ""], "description"),
        (vec!["add", "GOOD", "   "], "description"),
        (vec!["enable", "NOPE"], "no consent type"),
        (vec!["disable", "NOPE"], "no consent type"),
        (vec!["privacypref", "NOPE", "on"], "no consent type"),
        (vec!["history", "NOPE"], "no consent type"),
    ];
    for (args, msg) in &cases {
        let mut full = vec!["consent-type"];
        full.extend(args.iter().copied());
        let o = run(&cfg, &full).await;
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", err(&o));
        assert!(err(&o).contains(msg), "{args:?}: {}", err(&o));
    }
    // clap refuses values it doesn't know.
    let o = run(&cfg, &["consent-type", "privacypref", "ENROLL", "maybe"]).await;
    assert!(!o.status.success());
    assert_eq!(snapshot(&db).await, snap);
}

#[tokio::test]
async fn ops_cli_delete_is_refused_with_explanation() {
    let (db, _dir, cfg) = project("").await;
    let snap = snapshot(&db).await;
    for args in [
        &["consent-type", "delete", "ENROLL"][..],
        &["consent-type", "delete"],
        &["consent-type", "rm", "STATSEXPORT", "--force"],
        &["consent-type", "remove", "ENROLL"],
    ] {
        let o = run(&cfg, args).await;
        assert!(!o.status.success(), "{args:?} succeeded");
        let e = err(&o);
        assert!(e.contains("cannot be deleted"), "{e}");
        assert!(e.contains("legally"), "{e}");
        assert!(e.contains("consent-type disable"), "{e}");
    }
    assert_eq!(snapshot(&db).await, snap);
}

#[tokio::test]
async fn ops_cli_serve_refuses_to_start_without_credentials() {
    for extra in [
        "",
        "<ops_user>admin</ops_user>",
        "<ops_password_hash>$2y$04$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0</ops_password_hash>",
        "<ops_user>admin</ops_user><ops_password_hash>not-a-hash</ops_password_hash>",
    ] {
        let (_db, _dir, cfg) = project(extra).await;
        let cfg2 = cfg.clone();
        let o = tokio::task::spawn_blocking(move || {
            // If it wrongly started it would never exit: bound it.
            Command::new("timeout")
                .args(["20", BIN, "--config"])
                .arg(&cfg2)
                .args(["serve", "--listen", "127.0.0.1:0"])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert_eq!(o.status.code(), Some(1), "{extra}: {}", err(&o));
        assert!(err(&o).contains("refusing to start"), "{extra}: {}", err(&o));
    }
}

#[tokio::test]
async fn ops_cli_hash_password_makes_a_usable_hash() {
    let o = tokio::task::spawn_blocking(|| {
        use std::io::Write;
        let mut c = Command::new(BIN)
            .arg("hash-password")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(b"s3cret-pass\n").unwrap();
        c.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(o.status.success());
    let hash = out(&o).trim().to_owned();
    assert!(hash.starts_with("$2y$12$"), "{hash}");
    assert!(bcrypt::verify("s3cret-pass", &hash).unwrap());
    assert!(boinc_ops::Credentials::new("admin", &hash).is_ok());
}

#[tokio::test]
async fn ops_cli_output_into_a_closed_pipe_ends_quietly() {
    use boinc_db::mysql_async::prelude::*;
    let (db, _dir, cfg) = project("").await;
    // Enough output (~300 KB) that the pipe fills after `head` has gone.
    let mut conn = db.conn().await;
    for chunk in 0..10 {
        let values: Vec<String> = (0..100)
            .map(|i| format!("('T{chunk}_{i}', '{}', 0, 1, 0)", "d".repeat(250)))
            .collect();
        conn.query_drop(format!(
            "INSERT INTO consent_type (shortname, description, enabled, project_specific, privacypref) VALUES {}",
            values.join(",")
        ))
        .await
        .unwrap();
    }
    let cfg = cfg.clone();
    let o = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -o pipefail; '{BIN}' --config '{}' consent-type list | head -c 10 >/dev/null; echo \"status=${{PIPESTATUS[0]}}\" >&2",
                cfg.display()
            ))
            .env_remove("BOINC_DATABASE_URL")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let e = err(&o);
    assert!(!e.contains("panicked"), "{e}");
    assert!(!e.contains("Broken pipe"), "{e}");
    // Killed by SIGPIPE (128+13), as `cat` would be.
    assert!(e.contains("status=141"), "{e}");
}
