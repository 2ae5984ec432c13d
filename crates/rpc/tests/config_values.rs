//! Numbers in config.xml through the real boinc-rpc binary: a duration or
//! count it cannot mean (`1e30` panicked with exit 101; `-1`, NaN, text
//! were the default without a word) stops the start with exit 1 and a
//! message naming the key; BOINC's own keys are read as BOINC reads them
//! but an unparsable value is said at WARN, once, naming the key.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use boinc_db::testing::{free_port, TestDb};
use common::real::{lines_at, RealServer, BIN};

const DURATION_KEYS: &[&str] = &[
    "rpc_request_timeout",
    "rpc_db_timeout",
    "rpc_failed_login_window",
    "rpc_header_read_timeout",
    "rpc_idle_timeout",
];

/// A project whose database is on a closed port: the start must fail on
/// the value before any connection is tried.
fn project(dir: &Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("config.xml");
    std::fs::write(
        &path,
        format!(
            "<boinc>\n<config>\n<db_name>nodb</db_name>\n<db_host>127.0.0.1:{}</db_host>\n\
             <db_user>root</db_user>\n{extra}\n</config>\n</boinc>\n",
            free_port()
        ),
    )
    .unwrap();
    path
}

/// Start boinc-rpc on `config`; its exit code and output, or None when it
/// was still running (i.e. it accepted the value) after a few seconds.
fn start(config: &Path) -> (Option<i32>, String) {
    let out = config.with_file_name("out.log");
    let file = std::fs::File::create(&out).unwrap();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .env_remove("RUST_LOG")
        .env_remove("BOINC_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let t = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if t.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (code, std::fs::read_to_string(&out).unwrap_or_default())
}

#[track_caller]
fn assert_refused(key: &str, value: &str, code: Option<i32>, out: &str) {
    assert_eq!(code, Some(1), "<{key}>{value}</{key}>: {out}");
    assert!(!out.contains("panicked"), "{out}");
    let line = lines_at(out, "ERROR").concat();
    assert!(
        line.contains(&format!("config.xml <{key}>: ")),
        "<{key}>{value}</{key}> not named: {out}"
    );
}

#[test]
fn every_duration_key_refuses_what_it_cannot_mean() {
    let dir = tempfile::tempdir().unwrap();
    for key in DURATION_KEYS {
        for value in [
            "1e30", "1e400", "-1", "-0.5", "0", "1e-9", "NaN", "inf", "-inf", "soon", "10s", "",
            "700000",
        ] {
            let config = project(dir.path(), &format!("<{key}>{value}</{key}>"));
            let (code, out) = start(&config);
            assert_refused(key, value, code, &out);
            assert!(
                out.contains("is not a number of seconds from 0.001 to 604800 (7 days)"),
                "{out}"
            );
        }
    }
}

#[test]
fn every_count_key_refuses_what_it_cannot_mean() {
    let dir = tempfile::tempdir().unwrap();
    for (key, value) in [
        ("rpc_failed_logins_per_ip", "0"),
        ("rpc_failed_logins_per_ip", "20x"),
        ("rpc_failed_logins_per_ip", "1e30"),
        ("rpc_create_account_per_ip_per_hour", "-1"),
        ("rpc_create_account_per_ip_per_hour", "lots"),
        ("rpc_max_param_bytes", "0"),
        ("rpc_max_param_bytes", "64k"),
        ("rpc_max_body_bytes", "99999999999999999999"),
        ("rpc_max_connections", "-5"),
        ("rpc_hash_threads", "0"),
        ("rpc_consent_group_workers", "1000"),
        ("rpc_consent_group_workers", "two"),
    ] {
        let config = project(dir.path(), &format!("<{key}>{value}</{key}>"));
        let (code, out) = start(&config);
        assert_refused(key, value, code, &out);
        assert!(out.contains("is not a whole number from"), "{out}");
    }
}

#[tokio::test]
async fn values_in_range_start_and_lenient_keys_warn_once() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    // Every duration key at its bounds, and two keys BOINC reads too with
    // values BOINC reads as "default" / "false".
    let config = db.write_project(
        dir.path(),
        "<rpc_request_timeout>604800</rpc_request_timeout>\n\
         <rpc_db_timeout>0.5</rpc_db_timeout>\n\
         <rpc_failed_login_window>0.001</rpc_failed_login_window>\n\
         <rpc_header_read_timeout> 10 </rpc_header_read_timeout>\n\
         <rpc_idle_timeout>1.5e1</rpc_idle_timeout>\n\
         <rpc_create_account_per_ip_per_hour>0</rpc_create_account_per_ip_per_hour>\n\
         <disable_account_creation>yes</disable_account_creation>\n\
         <min_passwd_length>six</min_passwd_length>",
        None,
    );
    let mut server = RealServer::start(&config).await;
    let client = reqwest::Client::new();
    let cfg = client
        .get(server.url("get_project_config.php"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // BOINC's reading: the default length, creation not disabled.
    assert!(
        cfg.contains("<min_passwd_length>6</min_passwd_length>"),
        "{cfg}"
    );
    assert!(!cfg.contains("account_creation_disabled"), "{cfg}");
    for i in 0..3 {
        let r = client
            .get(server.url("create_account.php"))
            .query(&[
                ("email_addr", format!("w{i}@example.com").as_str()),
                ("passwd_hash", "0123456789abcdef0123456789abcdef"),
                ("user_name", &format!("W {i}")),
            ])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(r.contains("<authenticator>"), "{r}");
    }
    // Several refreshes of the cached config read min_passwd_length again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(server.stop().success());
    let log = server.log();
    let warns = lines_at(&log, "WARN");
    for key in ["disable_account_creation", "min_passwd_length"] {
        let about: Vec<_> = warns
            .iter()
            .filter(|l| l.contains(&format!("config.xml <{key}>")))
            .collect();
        assert_eq!(about.len(), 1, "<{key}>: {about:?}\n{log}");
    }
    assert!(warns
        .iter()
        .any(|l| l.contains("\"yes\" is not a number; read as false")));
    assert!(warns
        .iter()
        .any(|l| l.contains("\"six\" is not a whole number; the default applies")));
}
