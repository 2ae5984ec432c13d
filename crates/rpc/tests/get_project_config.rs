//! get_project_config: reply bytes, the terms rule, live updates, and
//! answering while the database is unreachable.

mod common;

use std::time::{Duration, Instant};

use common::proxy::{test_server_addr, DbProxy};
use common::*;
use mysql_async::prelude::*;

fn expected(h: &Harness, terms: Option<&str>) -> String {
    let terms = terms
        .map(|t| {
            format!(
                "    <terms_of_use>\n{}\n</terms_of_use>\n",
                boinc_db::xml::escape(t)
            )
        })
        .unwrap_or_default();
    let _ = h;
    format!(
        "{HEADER}<project_config>\n    <name>Test Project</name>\n    \
         <master_url>http://127.0.0.1/test/</master_url>\n    \
         <web_rpc_url_base>http://127.0.0.1/test/</web_rpc_url_base>\n    \
         <web_stopped>0</web_stopped>\n    <min_passwd_length>6</min_passwd_length>\n    \
         <sched_stopped>0</sched_stopped>\n    <platforms>\n    </platforms>\n{terms}</project_config>"
    )
}

/// Poll until `f(body)` holds (at most `within`), returning the body.
async fn eventually(h: &Harness, within: Duration, f: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let body = h.get("get_project_config.php").await;
        if f(&body) {
            return body;
        }
        assert!(
            start.elapsed() < within,
            "condition not met within {within:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn reply_bytes_and_headers() {
    let h = Harness::consent_project("").await;
    let r = h
        .client
        .get(h.url("get_project_config.php"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("content-type").unwrap().to_str().unwrap(),
        "text/xml;charset=UTF-8"
    );
    let body = eventually(&h, Duration::from_secs(2), |b| b.contains("<terms_of_use>")).await;
    assert_eq!(body, expected(&h, Some(TERMS)));
    assert!(body.contains("Be nice &amp; share &lt;CPU&gt; time."));
}

#[tokio::test]
async fn terms_only_when_file_nonempty_and_enroll_enabled() {
    // Terms present, ENROLL disabled: no terms.
    let h = Harness::new("", Some(TERMS)).await;
    assert_eq!(h.get("get_project_config.php").await, expected(&h, None));
    // ENROLL enabled: terms appear within 2 s, with no restart.
    h.set_type_enabled("ENROLL", true).await;
    eventually(&h, Duration::from_secs(2), |b| b.contains("<terms_of_use>")).await;
    // Edited file: new text within 2 s.
    let terms_path = h.dir.path().join("terms_of_use.txt");
    std::fs::write(&terms_path, "  New terms v2\n\n").unwrap();
    let body = eventually(&h, Duration::from_secs(2), |b| b.contains("New terms v2")).await;
    assert_eq!(body, expected(&h, Some("New terms v2")));
    // Whitespace only counts as empty.
    std::fs::write(&terms_path, " \n\t\n").unwrap();
    eventually(&h, Duration::from_secs(2), |b| {
        !b.contains("<terms_of_use>")
    })
    .await;
    std::fs::write(&terms_path, "back").unwrap();
    eventually(&h, Duration::from_secs(2), |b| {
        b.contains("<terms_of_use>\nback\n")
    })
    .await;
    // Removed file: no terms.
    std::fs::remove_file(&terms_path).unwrap();
    eventually(&h, Duration::from_secs(2), |b| {
        !b.contains("<terms_of_use>")
    })
    .await;
    // ENROLL disabled again: none even with a file.
    std::fs::write(&terms_path, "again").unwrap();
    eventually(&h, Duration::from_secs(2), |b| b.contains("again")).await;
    h.set_type_enabled("ENROLL", false).await;
    eventually(&h, Duration::from_secs(2), |b| {
        !b.contains("<terms_of_use>")
    })
    .await;
}

#[tokio::test]
async fn default_refresh_shows_changes_within_two_seconds() {
    let h = Harness::with("", Some(TERMS), boinc_rpc::Options::default()).await;
    h.get("get_project_config.php").await;
    h.set_type_enabled("ENROLL", true).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let body = h.get("get_project_config.php").await;
    assert!(body.contains("<terms_of_use>"), "{body}");
    std::fs::write(h.dir.path().join("terms_of_use.txt"), "edited").unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let body = h.get("get_project_config.php").await;
    assert!(
        body.contains("<terms_of_use>\nedited\n</terms_of_use>"),
        "{body}"
    );
}

#[tokio::test]
async fn config_flags_and_stop_files() {
    let h = Harness::new(
        "<account_manager/><disable_account_creation>1</disable_account_creation>\
         <min_passwd_length>10</min_passwd_length>",
        None,
    )
    .await;
    let body = h.get("get_project_config").await;
    assert!(body.contains("    <account_manager/>\n"), "{body}");
    assert!(
        body.contains("    <account_creation_disabled/>\n"),
        "{body}"
    );
    assert!(
        body.contains("<min_passwd_length>10</min_passwd_length>"),
        "{body}"
    );
    // Marker files take effect without a restart (within the refresh).
    std::fs::write(h.dir.path().join("stop_sched"), "").unwrap();
    eventually(&h, Duration::from_secs(2), |b| {
        b.contains("<sched_stopped>1</sched_stopped>")
    })
    .await;
    std::fs::write(h.dir.path().join("stop_web"), "").unwrap();
    let body = eventually(&h, Duration::from_secs(2), |b| {
        b.contains("<web_stopped>1</web_stopped>")
    })
    .await;
    assert!(body.contains("<error_num>-183</error_num>"), "{body}");
    // Other RPCs say the project is down.
    assert_error(&h.create("x@example.com", "pw", "X", &[]).await, -183);
    assert_error(
        &h.call("lookup_account.php", &[("email_addr", "x@example.com")])
            .await,
        -183,
    );

    let h = Harness::new("<account_manager>0</account_manager>", None).await;
    let body = h.get("get_project_config").await;
    assert!(!body.contains("account_manager"), "{body}");
    assert!(!body.contains("account_creation_disabled"), "{body}");
}

#[tokio::test]
async fn platforms_are_listed() {
    let h = Harness::new("", None).await;
    let mut c = h.conn().await;
    c.query_drop(
        "INSERT INTO platform (id, create_time, name, user_friendly_name) VALUES \
         (1, 1, 'x86_64-pc-linux-gnu', 'Linux on x86_64'), (2, 1, 'windows_x86_64', 'Windows')",
    )
    .await
    .unwrap();
    c.query_drop(
        "INSERT INTO app (id, create_time, name, user_friendly_name) VALUES (1, 1, 'app', 'App')",
    )
    .await
    .unwrap();
    c.query_drop(
        "INSERT INTO app_version (create_time, appid, version_num, platformid, plan_class, deprecated) VALUES \
         (1, 1, 100, 1, '', 0), (1, 1, 100, 1, 'cuda', 0), (1, 1, 100, 2, '', 1)",
    )
    .await
    .unwrap();
    let body = eventually(&h, Duration::from_secs(2), |b| b.contains("<platform>")).await;
    let want = "    <platforms>\n            <platform>\n                <platform_name>x86_64-pc-linux-gnu</platform_name>\n                <user_friendly_name>Linux on x86_64</user_friendly_name>\n            </platform>\n            <platform>\n                <platform_name>x86_64-pc-linux-gnu</platform_name>\n                <user_friendly_name>Linux on x86_64</user_friendly_name>\n                <plan_class>cuda</plan_class>\n\n            </platform>\n    </platforms>\n";
    assert!(body.contains(want), "{body}");
    assert!(
        !body.contains("windows"),
        "deprecated versions are not listed: {body}"
    );
}

#[tokio::test]
async fn answers_from_cache_while_database_is_unreachable_and_recovers() {
    let mut proxy = DbProxy::start(test_server_addr()).await;
    let h = Harness::build("", Some(TERMS), test_options(), Some(proxy.port)).await;
    h.set_type_enabled("ENROLL", true).await;
    let warm = eventually(&h, Duration::from_secs(2), |b| b.contains("<terms_of_use>")).await;
    let auth = h.new_account("o@example.com", "Outage", &[]).await;

    // Outage: refused connections.
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let t = Instant::now();
        assert_eq!(h.get("get_project_config.php").await, warm);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "prompt from cache"
        );
    }
    let t = Instant::now();
    assert_error(&h.create("n@example.com", "pw", "New", &[]).await, -138);
    assert_error(
        &h.call("am_get_info.php", &[("account_key", auth.as_str())])
            .await,
        -138,
    );
    assert_error(
        &h.call("lookup_account.php", &[("email_addr", "o@example.com")])
            .await,
        -138,
    );
    assert_error(
        &h.call("am_set_info.php", &[("account_key", auth.as_str())])
            .await,
        -138,
    );
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "prompt -138: {:?}",
        t.elapsed()
    );

    // Stalled database (accepts, never answers): still prompt.
    proxy.stall().await;
    let t = Instant::now();
    assert_eq!(h.get("get_project_config.php").await, warm);
    assert!(t.elapsed() < Duration::from_millis(500));
    let t = Instant::now();
    assert_error(
        &h.call("am_get_info.php", &[("account_key", auth.as_str())])
            .await,
        -138,
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // Terms edits still show while the database hangs.
    std::fs::write(h.dir.path().join("terms_of_use.txt"), "during outage").unwrap();
    eventually(&h, Duration::from_secs(2), |b| b.contains("during outage")).await;

    // Back: the pool recovers by itself.
    proxy.restore().await;
    let start = Instant::now();
    loop {
        let body = h
            .call("am_get_info.php", &[("account_key", auth.as_str())])
            .await;
        if body.contains("<success/>") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no recovery: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    h.new_account("after@example.com", "After", &[]).await;
}

#[tokio::test]
async fn starts_and_answers_with_database_down_from_the_start() {
    let mut proxy = DbProxy::start(test_server_addr()).await;
    proxy.cut();
    let h = Harness::build(
        "<long_name>Down</long_name>",
        Some(TERMS),
        test_options(),
        Some(proxy.port),
    )
    .await;
    let body = h.get("get_project_config.php").await;
    assert!(body.contains("<project_config>"), "{body}");
    assert!(body.contains("<web_stopped>0</web_stopped>"), "{body}");
    assert_error(&h.create("n@example.com", "pw", "New", &[]).await, -138);
}
