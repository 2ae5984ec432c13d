//! Data-subject requests against a real MariaDB: finding the account to
//! export, and the `boinc-ops account` / `retention` commands run as the
//! binary. The export's contents: account_export.rs.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use boinc_db::mysql_async::prelude::*;
use boinc_db::mysql_async::Conn;
use boinc_db::testing::TestDb;
use boinc_ops::account;
use boinc_ops::consent_records::UserRef;
use common::{cli_as, err, out, BIN};

const PASSWD_HASH: &str = "$2y$10$abcdefghijklmnopqrstuuSECRETHASHSECRETHASHSECRETHASH";
const AUTH: &str = "f00dfeedf00dfeedf00dfeedf00dfeed";
const LOGIN_TOKEN: &str = "logintokenlogintokenlogintoken12";
const TERMS: &str = "Terms v1: be nice & share <CPU> time.";

/// One account with a team, a host, credit and consent. Ids are fixed so
/// the tests can name them.
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
    let v = boinc_db::consent::terms::ensure_terms_version(c, TERMS, 1590000000)
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
    boinc_db::consent::terms::link_consent_terms(c, 1, v)
        .await
        .unwrap();
}

/// Only the exact current address finds the account; a look-alike finds
/// nothing and an old address names the account without exporting it.
/// Nothing is audited for a refused export. (What the export holds is
/// tested on upstream's whole schema in account_export.rs.)
#[tokio::test]
async fn export_needs_the_exact_current_address_and_holds_no_credentials() {
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
    assert_eq!(doc.userid, 42);
    let text = serde_json::to_string(&doc).unwrap();
    assert!(text.contains(TERMS), "the accepted terms text is in it");
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
    assert_eq!(account::audit_trail(&pool, 42).await.unwrap().len(), 1);
    for look_alike in [
        "fiona@example.org ",
        " fiona@example.org",
        "fiona@example.org\n",
        "",
    ] {
        let e = account::export(&pool, &UserRef::Email(look_alike.into()), "x", 1)
            .await
            .unwrap_err();
        assert!(
            matches!(e, account::AccountError::UnknownEmail),
            "{look_alike:?}: {e}"
        );
    }
    let e = account::export(&pool, &UserRef::Email("fi@example.org".into()), "x", 1)
        .await
        .unwrap_err();
    assert!(matches!(e, account::AccountError::PreviousEmail(42)), "{e}");
    let e = account::export(&pool, &UserRef::Id(43), "x", 1)
        .await
        .unwrap_err();
    assert!(matches!(e, account::AccountError::UnknownUser(43)), "{e}");
    assert_eq!(account::audit_trail(&pool, 42).await.unwrap().len(), 1);
    pool.disconnect().await.ok();
}

/// boinc-ops run by the admin `cli-admin`.
async fn run(config: &Path, args: &[&str]) -> Output {
    cli_as("cli-admin", config, args).await
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
