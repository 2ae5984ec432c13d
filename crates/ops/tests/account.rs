//! Data-subject requests against a real MariaDB: the export (compared with
//! a hand-built fixture, never containing credentials) and the
//! `boinc-ops account` / `retention` commands run as the binary.

use std::path::Path;
use std::process::{Command, Output};

use boinc_db::mysql_async::prelude::*;
use boinc_db::mysql_async::Conn;
use boinc_db::testing::TestDb;
use boinc_ops::account;
use boinc_ops::consent_records::UserRef;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_boinc-ops");
const PASSWD_HASH: &str = "$2y$10$abcdefghijklmnopqrstuuSECRETHASHSECRETHASHSECRETHASH";
const AUTH: &str = "f00dfeedf00dfeedf00dfeedf00dfeed";
const LOGIN_TOKEN: &str = "logintokenlogintokenlogintoken12";
const TERMS: &str = "Terms v1: be nice & share <CPU> time.";

/// One account with everything an export covers. Ids are fixed so the
/// fixture below can name them.
async fn setup(c: &mut Conn) {
    c.exec_drop(
        "INSERT INTO user SET id = 42, create_time = 1600000000, \
         email_addr = 'fiona@example.org', name = 'Fiona <F>', authenticator = ?, \
         country = 'Norway', postal_code = '0150', total_credit = 250.5, \
         expavg_credit = 3.25, expavg_time = 1700000000.5, \
         global_prefs = '<global_preferences><run_on_batteries>0</run_on_batteries></global_preferences>', \
         project_prefs = '<project_preferences/>', teamid = 5, venue = 'home', \
         url = 'https://fiona.example', send_email = 1, show_hosts = 0, posts = 3, \
         seti_id = 0, seti_nresults = 0, seti_last_result_time = 0, seti_total_cpu = 0, \
         signature = 'Fiona', has_profile = 0, cross_project_id = 'cpidfiona', \
         passwd_hash = ?, email_validated = 1, donated = 0, login_token = ?, \
         previous_email_addr = 'fi@example.org', email_addr_change_time = 1650000000",
        (AUTH, PASSWD_HASH, LOGIN_TOKEN),
    )
    .await
    .unwrap();
    c.query_drop(
        "INSERT INTO team (id, create_time, userid, name, name_lc, type, nusers, expavg_time) \
         VALUES (5, 1, 42, 'Fjord Crunchers', 'fjord crunchers', 1, 1, 0), \
                (6, 1, 42, 'Old Team', 'old team', 1, 0, 0), \
                (7, 1, 1, 'Other', 'other', 1, 0, 0)",
    )
    .await
    .unwrap();
    c.query_drop(
        "INSERT INTO host SET id = 9, create_time = 1610000000, userid = 42, rpc_seqno = 0, \
         rpc_time = 1700000100, total_credit = 200.25, expavg_credit = 2.5, expavg_time = 0, \
         timezone = 3600, domain_name = 'fiona-pc', serialnum = '', \
         last_ip_addr = '192.0.2.9', external_ip_addr = '198.51.100.9', nsame_ip_addr = 0, \
         on_frac = 1, connected_frac = 1, active_frac = 1, cpu_efficiency = 1, \
         duration_correction_factor = 1, p_ncpus = 8, p_vendor = 'AuthenticAMD', \
         p_model = 'Ryzen', p_fpops = 0, p_iops = 0, p_membw = 0, os_name = 'Linux', \
         os_version = '6.1', m_nbytes = 17179869184, m_cache = 0, m_swap = 0, \
         d_total = 500000000000, d_free = 0, d_boinc_used_total = 0, \
         d_boinc_used_project = 0, d_boinc_max = 0, n_bwup = 0, n_bwdown = 0, \
         credit_per_cpu_sec = 0, venue = '', nresults_today = 0, avg_turnaround = 0, \
         host_cpid = 'hostcpid9', max_results_day = 0, product_name = '', \
         gpu_active_frac = 0, p_ngpus = 1, p_gpu_fpops = 0",
    )
    .await
    .unwrap();
    c.query_drop(
        "INSERT INTO credit_user (userid, appid, njobs, total, expavg, expavg_time, \
         credit_type) VALUES (42, 1, 12, 250.5, 3.25, 0, 0)",
    )
    .await
    .unwrap();
    let v = boinc_db::terms::ensure_terms_version(c, TERMS, 1590000000)
        .await
        .unwrap();
    c.query_drop(
        "INSERT INTO consent (id, userid, consent_type_id, consent_time, consent_flag, \
         consent_not_required, source) \
         SELECT 1, 42, id, 1600000000, 1, 0, 'create_account' FROM consent_type \
          WHERE shortname = 'ENROLL'",
    )
    .await
    .unwrap();
    c.query_drop(
        "INSERT INTO consent (id, userid, consent_type_id, consent_time, consent_flag, \
         consent_not_required, source) \
         SELECT 2, 42, id, 1600000500, 0, 0, 'am_set_info' FROM consent_type \
          WHERE shortname = 'STATSEXPORT'",
    )
    .await
    .unwrap();
    boinc_db::terms::link_consent_terms(c, 1, v).await.unwrap();
}

fn terms_sha() -> String {
    boinc_db::terms::sha256_hex(TERMS)
}

/// The export of account 42 at time 1700000000 by "fixture-admin", built
/// by hand from `setup`.
fn fixture() -> serde_json::Value {
    let parts: Vec<serde_json::Value> = account::EXPORT_PARTS
        .iter()
        .map(|(p, c)| json!({"part": p, "contents": c}))
        .collect();
    json!({
        "about": {
            "document": account::EXPORT_DOCUMENT,
            "generated_at": 1700000000,
            "generated_at_utc": "2023-11-14 22:13:20 UTC",
            "not_included": account::EXPORT_NOT_INCLUDED,
            "parts": parts,
        },
        "account": {
            "id": 42,
            "create_time": 1600000000,
            "email_addr": "fiona@example.org",
            "name": "Fiona <F>",
            "country": "Norway",
            "postal_code": "0150",
            "total_credit": 250.5,
            "expavg_credit": 3.25,
            "expavg_time": 1700000000.5,
            "global_prefs": "<global_preferences><run_on_batteries>0</run_on_batteries></global_preferences>",
            "project_prefs": "<project_preferences/>",
            "teamid": 5,
            "venue": "home",
            "url": "https://fiona.example",
            "send_email": 1,
            "show_hosts": 0,
            "posts": 3,
            "signature": "Fiona",
            "has_profile": 0,
            "cross_project_id": "cpidfiona",
            "email_validated": 1,
            "donated": 0,
            "previous_email_addr": "fi@example.org",
            "email_addr_change_time": 1650000000.0,
        },
        "hosts": [{
            "id": 9,
            "create_time": 1610000000,
            "rpc_time": 1700000100,
            "domain_name": "fiona-pc",
            "last_ip_addr": "192.0.2.9",
            "external_ip_addr": "198.51.100.9",
            "timezone": 3600,
            "os_name": "Linux",
            "os_version": "6.1",
            "p_vendor": "AuthenticAMD",
            "p_model": "Ryzen",
            "p_ncpus": 8,
            "p_ngpus": 1,
            "m_nbytes": 17179869184.0,
            "d_total": 500000000000.0,
            "product_name": "",
            "venue": "",
            "host_cpid": "hostcpid9",
            "total_credit": 200.25,
            "expavg_credit": 2.5,
        }],
        "teams": [
            {"id": 5, "name": "Fjord Crunchers", "founder": true},
            {"id": 6, "name": "Old Team", "founder": true},
        ],
        "credit_by_app": [
            {"appid": 1, "credit_type": 0, "njobs": 12, "total": 250.5, "expavg": 3.25}
        ],
        "consent": {
            "records": [
                {
                    "consent_id": 1,
                    "consent_type": "ENROLL",
                    "state": "consented",
                    "consent_flag": 1,
                    "consent_not_required": 0,
                    "source": "create_account",
                    "consent_time": 1600000000,
                    "consent_time_utc": "2020-09-13 12:26:40 UTC",
                    "terms_version_id": 1,
                    "terms_sha256": terms_sha(),
                },
                {
                    "consent_id": 2,
                    "consent_type": "STATSEXPORT",
                    "state": "withdrawn",
                    "consent_flag": 0,
                    "consent_not_required": 0,
                    "source": "am_set_info",
                    "consent_time": 1600000500,
                    "consent_time_utc": "2020-09-13 12:35:00 UTC",
                    "terms_version_id": null,
                    "terms_sha256": null,
                },
            ],
            "current": [
                {
                    "consent_type": "ENROLL",
                    "state": "consented",
                    "since": 1600000000,
                    "since_utc": "2020-09-13 12:26:40 UTC",
                    "terms_version_id": 1,
                },
                {
                    "consent_type": "STATSEXPORT",
                    "state": "withdrawn",
                    "since": 1600000500,
                    "since_utc": "2020-09-13 12:35:00 UTC",
                    "terms_version_id": null,
                },
            ],
            "terms_versions": [{
                "id": 1,
                "sha256": terms_sha(),
                "first_seen": 1590000000,
                "first_seen_utc": "2020-05-20 18:40:00 UTC",
                "text": TERMS,
            }],
            "notes": boinc_ops::consent_records::HISTORY_NOTES,
        },
        "audit_trail": [{
            "id": 1,
            "action_time": 1700000000,
            "actor": "fixture-admin",
            "userid": 42,
            "action": "export",
            "mode": "",
        }],
    })
}

#[tokio::test]
async fn export_matches_the_hand_built_fixture_and_holds_no_credentials() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    setup(&mut c).await;
    let pool = db.pool();
    let doc = account::export(
        &pool,
        &UserRef::Email("FIONA@example.org".into()),
        "fixture-admin",
        1_700_000_000,
    )
    .await
    .unwrap();
    let got = serde_json::to_value(&doc).unwrap();
    let want = fixture();
    for key in want.as_object().unwrap().keys() {
        assert_eq!(got[key], want[key], "part {key}");
    }
    assert_eq!(got, want);
    let text = serde_json::to_string(&doc).unwrap();
    for secret in [
        PASSWD_HASH,
        AUTH,
        LOGIN_TOKEN,
        "\"passwd_hash\"",
        "\"authenticator\"",
        "\"login_token\"",
    ] {
        assert!(!text.contains(secret), "export contains {secret}");
    }
    // The export itself is in the trail (and stays there).
    let trail = account::audit_trail(&pool, 42).await.unwrap();
    assert_eq!(trail.len(), 1);
    // A look-alike address is no account; nothing audited for it.
    let e = account::export(&pool, &UserRef::Email("fiona@example.org ".into()), "x", 1)
        .await
        .unwrap_err();
    assert!(matches!(e, account::AccountError::UnknownEmail), "{e}");
    let e = account::export(&pool, &UserRef::Email("fi@example.org".into()), "x", 1)
        .await
        .unwrap_err();
    assert!(matches!(e, account::AccountError::PreviousEmail(42)), "{e}");
    assert_eq!(account::audit_trail(&pool, 42).await.unwrap().len(), 1);
    pool.disconnect().await.ok();
}

async fn run(config: &Path, args: &[&str]) -> Output {
    let config = config.to_owned();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .args(&args)
            .env_remove("BOINC_DATABASE_URL")
            .env_remove("SUDO_USER")
            .env("USER", "cli-admin")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run boinc-ops")
    })
    .await
    .unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn user_state(c: &mut Conn) -> Vec<(i64, String, String)> {
    c.query("SELECT id, email_addr, authenticator FROM user ORDER BY id")
        .await
        .unwrap()
}

#[tokio::test]
async fn cli_find_export_delete() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = db.write_project(dir.path(), "", None);
    let mut c = db.conn().await;
    setup(&mut c).await;

    // find: exact only; control characters shown escaped.
    let o = run(&cfg, &["account", "find", "--name", "Fiona <F>"]).await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).contains("42") && out(&o).contains("active"),
        "{}",
        out(&o)
    );
    let o = run(&cfg, &["account", "find", "--name", "fiona <f>"]).await;
    assert!(
        out(&o).contains("no account matches exactly"),
        "{}",
        out(&o)
    );
    let o = run(
        &cfg,
        &["account", "find", "--email", "Fiona@Example.ORG", "--json"],
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v[0]["id"], 42);

    // export to a private file.
    let file = dir.path().join("fiona.json");
    let o = run(
        &cfg,
        &[
            "account",
            "export",
            "--id",
            "42",
            "--out",
            file.to_str().unwrap(),
        ],
    )
    .await;
    assert!(o.status.success(), "{}", err(&o));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(PASSWD_HASH) && !text.contains(AUTH));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["account"]["email_addr"], "fiona@example.org");
    assert_eq!(v["audit_trail"][0]["actor"], "cli-admin");

    // delete: unknown account and missing confirmation change nothing.
    let before = user_state(&mut c).await;
    let o = run(
        &cfg,
        &["account", "delete", "--id", "43", "--mode", "wipe", "--yes"],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("no account with id 43"), "{}", err(&o));
    let o = run(
        &cfg,
        &["account", "delete", "--id", "42", "--mode", "obfuscate"],
    )
    .await;
    assert_ne!(o.status.code(), Some(0));
    assert!(err(&o).contains("--yes"), "{}", err(&o));
    let o = run(
        &cfg,
        &[
            "account", "delete", "--id", "42", "--mode", "shred", "--yes",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "clap usage error: {}", err(&o));
    assert_eq!(user_state(&mut c).await, before);

    let o = run(
        &cfg,
        &[
            "account",
            "delete",
            "--email",
            "fiona@example.org",
            "--mode",
            "obfuscate",
            "--yes",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).contains("account 42 deleted (obfuscate)"),
        "{}",
        out(&o)
    );
    assert!(
        !out(&o).contains("fiona"),
        "no personal data printed: {}",
        out(&o)
    );
    let o = run(&cfg, &["account", "find", "--id", "42"]).await;
    assert!(out(&o).contains("deleted"), "{}", out(&o));
    // The old address no longer finds it; the trail shows export + delete.
    let o = run(&cfg, &["account", "export", "--email", "fiona@example.org"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    let trail: Vec<(String, String, String)> = c
        .query("SELECT actor, action, mode FROM account_audit WHERE userid = 42 ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        trail,
        vec![
            ("cli-admin".into(), "export".into(), "".into()),
            ("cli-admin".into(), "delete".into(), "obfuscate".into()),
        ]
    );
    let o = run(
        &cfg,
        &[
            "account",
            "delete",
            "--id",
            "42",
            "--mode",
            "obfuscate",
            "--yes",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("already deleted"), "{}", err(&o));
    let o = run(
        &cfg,
        &["account", "delete", "--id", "42", "--mode", "wipe", "--yes"],
    )
    .await;
    assert!(o.status.success(), "{}", err(&o));
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM user WHERE id = 42")
        .await
        .unwrap();
    assert_eq!(n, Some(0));
}

#[tokio::test]
async fn cli_retention_purge_counts_and_dry_run() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = db.write_project(dir.path(), "", None);
    let mut c = db.conn().await;
    let now = boinc_db::now();
    c.exec_drop(
        "INSERT INTO user_deleted VALUES (1, 'a', ?), (2, 'b', ?)",
        (now - 70 * 86400, now - 10 * 86400),
    )
    .await
    .unwrap();
    c.exec_drop(
        "INSERT INTO host_deleted VALUES (1, 'a', ?)",
        (now - 70 * 86400,),
    )
    .await
    .unwrap();
    c.exec_drop("INSERT INTO token VALUES ('t', 1, 'D', 0, ?)", (now - 5,))
        .await
        .unwrap();
    let o = run(&cfg, &["retention", "purge", "--dry-run"]).await;
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        "would remove: 1 user_deleted and 1 host_deleted row(s) older than 60 days, 1 expired \
         token(s)\n"
    );
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM user_deleted")
        .await
        .unwrap();
    assert_eq!(n, Some(2));
    let o = run(&cfg, &["retention", "purge", "--days", "5"]).await;
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        "removed: 2 user_deleted and 1 host_deleted row(s) older than 5 days, 1 expired \
         token(s)\n"
    );
    let o = run(&cfg, &["retention", "purge", "--days", "0"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
}

/// As BOINC's `bin/start` runs a <task>: from PROJECT/tmp_HOST, no
/// --config, config.xml found one directory up.
#[tokio::test]
async fn cli_retention_purge_runs_as_a_boinc_task() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    db.write_project(dir.path(), "", None);
    let tmp = dir.path().join("tmp_host");
    std::fs::create_dir(&tmp).unwrap();
    let o = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["retention", "purge"])
            .current_dir(&tmp)
            .env_remove("BOINC_DATABASE_URL")
            .env_remove("BOINC_PROJECT_DIR")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run boinc-ops")
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).starts_with("removed: 0 user_deleted"),
        "{}",
        out(&o)
    );
}

#[tokio::test]
async fn export_includes_forum_posts_and_messages_where_the_tables_exist() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    setup(&mut c).await;
    for sql in [
        "CREATE TABLE post (id INT PRIMARY KEY, thread INT NOT NULL, user INT NOT NULL, \
         timestamp INT NOT NULL, content TEXT NOT NULL, modified INT NOT NULL, \
         parent_post INT NOT NULL, score DOUBLE NOT NULL, votes INT NOT NULL, \
         signature TINYINT NOT NULL DEFAULT 0, hidden INT NOT NULL)",
        "CREATE TABLE private_messages (id INT PRIMARY KEY, userid INT NOT NULL, \
         senderid INT NOT NULL, date INT NOT NULL, opened TINYINT NOT NULL, \
         subject VARCHAR(255) NOT NULL, content TEXT NOT NULL)",
        "INSERT INTO post VALUES (1, 3, 42, 100, 'Hello <all>', 0, 0, 0, 0, 0, 0), \
         (2, 3, 7, 101, 'not hers', 0, 0, 0, 0, 0, 0)",
        "INSERT INTO private_messages VALUES (1, 42, 7, 200, 0, 'Hi', 'to her'), \
         (2, 7, 42, 201, 1, 'Re', 'from her'), (3, 7, 8, 202, 0, 'x', 'not hers')",
    ] {
        c.query_drop(sql).await.unwrap();
    }
    let pool = db.pool();
    let doc = account::export(&pool, &UserRef::Id(42), "a", 1)
        .await
        .unwrap();
    let v = serde_json::to_value(&doc).unwrap();
    assert_eq!(
        v["forum_posts"],
        json!([{"id": 1, "thread": 3, "timestamp": 100, "modified": 0, "content": "Hello <all>"}])
    );
    let ids: Vec<i64> = v["private_messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![1, 2]);
    let parts: Vec<&str> = v["about"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["part"].as_str().unwrap())
        .collect();
    assert!(parts.contains(&"forum_posts") && parts.contains(&"private_messages"));
    pool.disconnect().await.ok();
}
