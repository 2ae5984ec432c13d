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
                boinc_db::text::xml::escape(t)
            )
        })
        .unwrap_or_default();
    let _ = h;
    format!(
        "{HEADER}<project_config>\n    <name>Test Project</name>\n    \
         <master_url>http://127.0.0.1/test/</master_url>\n    \
         <web_rpc_url_base>http://127.0.0.1/test/</web_rpc_url_base>\n\
         <server_version>1.6.2</server_version>\n    \
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

/// get_project_config answers `want` from its cache while a call that
/// needs the database (`am_get_info` with `key`) is still waiting for it:
/// it waits for nothing the database does. The pending call's reply.
async fn answers_before_a_database_call(h: &Harness, key: &str, want: &str) -> String {
    let pending = {
        let (client, url) = (h.client.clone(), h.url("am_get_info.php"));
        let key = key.to_owned();
        tokio::spawn(async move {
            client
                .get(url)
                .query(&[("account_key", key)])
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    // Let it reach the pool and wait there (db_timeout: 2 s).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !pending.is_finished(),
        "the database call did not wait: {}",
        pending.await.unwrap()
    );
    let asks = h.pool_asks().await;
    for _ in 0..3 {
        assert_eq!(h.get("get_project_config.php").await, want);
    }
    assert!(
        !pending.is_finished(),
        "get_project_config answered only after the database call gave up"
    );
    assert_eq!(
        h.pool_asks().await,
        asks,
        "get_project_config asked the pool"
    );
    pending.await.unwrap()
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

    // Outage: refused connections. The cached reply, with no database
    // connection asked for.
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asks = h.pool_asks().await;
    for _ in 0..3 {
        assert_eq!(h.get("get_project_config.php").await, warm);
    }
    assert_eq!(
        h.pool_asks().await,
        asks,
        "get_project_config asked the pool"
    );
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

    // Stalled database (accepts, never answers): answered while a call
    // that needs the database is still waiting for it.
    proxy.stall().await;
    let pending = answers_before_a_database_call(&h, &auth, &warm).await;
    assert_error(&pending, -138);
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

// ---- The elements upstream sends beyond name/URLs/state/terms: one test
// ---- each, in upstream's place in the reply.

/// The part of `body` between the end of `after` and the start of `before`.
fn between<'a>(body: &'a str, after: &str, before: &str) -> &'a str {
    let start = body
        .find(after)
        .unwrap_or_else(|| panic!("no {after}: {body}"))
        + after.len();
    let end = body[start..]
        .find(before)
        .unwrap_or_else(|| panic!("no {before} after {after}: {body}"))
        + start;
    &body[start..end]
}

#[tokio::test]
async fn web_rpc_url_base_is_the_secure_url_when_configured() {
    let h = Harness::new(
        "<secure_url_base>https://secure.example.org/test</secure_url_base>",
        None,
    )
    .await;
    let body = h.get("get_project_config.php").await;
    assert!(
        body.contains(
            "    <master_url>http://127.0.0.1/test/</master_url>\n    \
             <web_rpc_url_base>https://secure.example.org/test/</web_rpc_url_base>\n"
        ),
        "{body}"
    );
    // Without it: master_url (see `expected`).
    let h = Harness::new("<secure_url_base></secure_url_base>", None).await;
    let body = h.get("get_project_config.php").await;
    assert!(
        body.contains("<web_rpc_url_base>http://127.0.0.1/test/</web_rpc_url_base>"),
        "{body}"
    );
}

#[tokio::test]
async fn server_version_follows_web_rpc_url_base() {
    let h = Harness::new("<account_manager/>", None).await;
    let body = h.get("get_project_config.php").await;
    assert_eq!(
        between(&body, "</web_rpc_url_base>\n", "    <account_manager/>"),
        "<server_version>1.6.2</server_version>\n"
    );
}

#[tokio::test]
async fn min_client_version_from_min_core_client_version() {
    let h = Harness::new(
        "<min_core_client_version>71600</min_core_client_version>",
        None,
    )
    .await;
    let body = h.get("get_project_config.php").await;
    assert_eq!(
        between(
            &body,
            "<sched_stopped>0</sched_stopped>\n",
            "    <platforms>"
        ),
        "<min_client_version>71600</min_client_version>\n"
    );
    // Absent, empty or 0 (PHP-false): no element.
    for extra in [
        "",
        "<min_core_client_version></min_core_client_version>",
        "<min_core_client_version>0</min_core_client_version>",
    ] {
        let h = Harness::new(extra, None).await;
        let body = h.get("get_project_config.php").await;
        assert!(!body.contains("min_client_version"), "{extra}: {body}");
    }
}

#[tokio::test]
async fn local_revision_from_the_project_file_live() {
    let h = Harness::new("<account_manager/>", None).await;
    let path = h.dir.path().join("local.revision");
    assert!(!h
        .get("get_project_config.php")
        .await
        .contains("local_revision"));
    std::fs::write(&path, "  4711\n").unwrap();
    let body = eventually(&h, Duration::from_secs(2), |b| {
        b.contains("<local_revision>")
    })
    .await;
    assert_eq!(
        between(&body, "    <account_manager/>\n", "    <web_stopped>"),
        "<local_revision>4711</local_revision>\n"
    );
    // "0" is false to PHP: no element; removed file: none either.
    std::fs::write(&path, "0\n").unwrap();
    eventually(&h, Duration::from_secs(2), |b| {
        !b.contains("<local_revision>")
    })
    .await;
    std::fs::write(&path, "a<b").unwrap();
    eventually(&h, Duration::from_secs(2), |b| {
        b.contains("<local_revision>a&lt;b</local_revision>")
    })
    .await;
    std::fs::remove_file(&path).unwrap();
    eventually(&h, Duration::from_secs(2), |b| {
        !b.contains("<local_revision>")
    })
    .await;
}

#[tokio::test]
async fn ldap_auth_when_an_ldap_host_is_configured() {
    let h = Harness::consent_project("<ldap_host>ldap.example.org</ldap_host>").await;
    let body = eventually(&h, Duration::from_secs(2), |b| b.contains("<terms_of_use>")).await;
    assert!(
        body.ends_with("</terms_of_use>\n<ldap_auth/>\n</project_config>"),
        "{body}"
    );
    let h = Harness::new("<ldap_host></ldap_host>", None).await;
    assert!(!h.get("get_project_config.php").await.contains("ldap_auth"));
}

const KEYWORDS: &str =
    "<keywords>\n    <keyword>\n        <id>1</id>\n    </keyword>\n</keywords>\n";

#[tokio::test]
async fn project_keywords_file_contents_live() {
    let h = Harness::new("<ldap_host>l</ldap_host>", None).await;
    let path = h.dir.path().join("project_keywords.xml");
    std::fs::write(&path, KEYWORDS).unwrap();
    let body = eventually(&h, Duration::from_secs(2), |b| b.contains("<keywords>")).await;
    assert!(
        body.ends_with(&format!("<ldap_auth/>\n{KEYWORDS}</project_config>")),
        "{body}"
    );
    std::fs::write(&path, "<keywords>\n</keywords>\n").unwrap();
    eventually(&h, Duration::from_secs(2), |b| {
        b.ends_with("<ldap_auth/>\n<keywords>\n</keywords>\n</project_config>")
    })
    .await;
    std::fs::remove_file(&path).unwrap();
    eventually(&h, Duration::from_secs(2), |b| !b.contains("<keywords>")).await;
}

#[tokio::test]
async fn account_ownership_public_key_base64_from_key_dir_live() {
    let h = Harness::new("<key_dir>keys</key_dir>", None).await;
    let keys = h.dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(h.dir.path().join("project_keywords.xml"), KEYWORDS).unwrap();
    let pem = "-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAK==\n-----END PUBLIC KEY-----\n";
    std::fs::write(keys.join("account_ownership_public.pem"), pem).unwrap();
    let body = eventually(&h, Duration::from_secs(2), |b| {
        b.contains("<account_ownership_public_key>")
    })
    .await;
    // PHP's base64_encode of the file: standard alphabet, padded, one line.
    let want = "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0KTUZ3d0RRWUpLb1pJaHZjTkFRRUJCUUFEU3dBd1NBSkJBSz09Ci0tLS0tRU5EIFBVQkxJQyBLRVktLS0tLQo=";
    assert!(
        body.ends_with(&format!(
            "{KEYWORDS}    <account_ownership_public_key>{want}</account_ownership_public_key>\n</project_config>"
        )),
        "{body}"
    );
    std::fs::remove_file(keys.join("account_ownership_public.pem")).unwrap();
    eventually(&h, Duration::from_secs(2), |b| {
        !b.contains("account_ownership_public_key")
    })
    .await;
    // No key_dir configured: never sent (upstream reads "/account_ownership_public.pem").
    let h = Harness::new("", None).await;
    std::fs::create_dir_all(h.dir.path().join("keys")).unwrap();
    std::fs::write(h.dir.path().join("keys/account_ownership_public.pem"), pem).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!h
        .get("get_project_config.php")
        .await
        .contains("account_ownership_public_key"));
}

/// Every element at once, in upstream's order, and the files' edits still
/// showing while the database is unreachable.
#[tokio::test]
async fn all_elements_in_upstream_order_and_file_edits_during_an_outage() {
    let mut proxy = DbProxy::start(test_server_addr()).await;
    let h = Harness::build(
        "<secure_url_base>https://s.example.org/t/</secure_url_base><account_manager/>\
         <disable_account_creation/><min_core_client_version>70000</min_core_client_version>\
         <ldap_host>l</ldap_host><key_dir>keys</key_dir>",
        Some(TERMS),
        test_options(),
        Some(proxy.port),
    )
    .await;
    h.set_type_enabled("ENROLL", true).await;
    std::fs::write(h.dir.path().join("local.revision"), "12").unwrap();
    std::fs::write(h.dir.path().join("project_keywords.xml"), KEYWORDS).unwrap();
    std::fs::create_dir_all(h.dir.path().join("keys")).unwrap();
    std::fs::write(h.dir.path().join("keys/account_ownership_public.pem"), "k").unwrap();
    let body = eventually(&h, Duration::from_secs(2), |b| {
        b.contains("<terms_of_use>") && b.contains("<account_ownership_public_key>")
    })
    .await;
    let want = format!(
        "{HEADER}<project_config>\n    <name>Test Project</name>\n    \
         <master_url>http://127.0.0.1/test/</master_url>\n    \
         <web_rpc_url_base>https://s.example.org/t/</web_rpc_url_base>\n\
         <server_version>1.6.2</server_version>\n    <account_manager/>\n\
         <local_revision>12</local_revision>\n    <web_stopped>0</web_stopped>\n    \
         <account_creation_disabled/>\n    <min_passwd_length>6</min_passwd_length>\n    \
         <sched_stopped>0</sched_stopped>\n<min_client_version>70000</min_client_version>\n    \
         <platforms>\n    </platforms>\n    <terms_of_use>\n{}\n</terms_of_use>\n<ldap_auth/>\n\
         {KEYWORDS}    <account_ownership_public_key>aw==</account_ownership_public_key>\n\
         </project_config>",
        boinc_db::text::xml::escape(TERMS)
    );
    assert_eq!(body, want);

    // Database unreachable: the cached reply (no connection asked for),
    // and file edits still show.
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asks = h.pool_asks().await;
    assert_eq!(h.get("get_project_config.php").await, want);
    assert_eq!(
        h.pool_asks().await,
        asks,
        "get_project_config asked the pool"
    );
    std::fs::write(h.dir.path().join("local.revision"), "13").unwrap();
    std::fs::write(h.dir.path().join("keys/account_ownership_public.pem"), "kk").unwrap();
    let body = eventually(&h, Duration::from_secs(2), |b| {
        b.contains("<local_revision>13</local_revision>") && b.contains(">a2s=<")
    })
    .await;
    assert!(
        body.contains("<terms_of_use>"),
        "ENROLL state from the cache: {body}"
    );
}
