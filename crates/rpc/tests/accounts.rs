//! lookup_account and am_get_info: happy and error paths, legacy md5 rows,
//! PHP password_verify compatibility, per-IP failure limits.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use mysql_async::prelude::*;

async fn insert_legacy_user(h: &Harness, email: &str, passwd_hash: &str, auth: &str) {
    let mut c = h.conn().await;
    c.exec_drop(
        "INSERT INTO user (create_time, email_addr, name, authenticator, country, postal_code, \
         total_credit, expavg_credit, expavg_time, teamid, venue, send_email, show_hosts, posts, \
         seti_id, seti_nresults, seti_last_result_time, seti_total_cpu, has_profile, \
         cross_project_id, passwd_hash, email_validated, donated) VALUES \
         (1000, ?, 'Legacy', ?, '', '', 0, 0, 0, 0, '', 1, 1, 0, 0, 0, 0, 0, 0, 'xpid', ?, 0, 0)",
        (email, auth, passwd_hash),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn lookup_account_paths() {
    let h = Harness::new("", None).await;
    let auth = h.new_account("look@example.com", "Looker", &[]).await;
    let hash = passwd_hash("secret", "look@example.com");

    let body = h
        .call(
            "lookup_account.php",
            &[("email_addr", "look@example.com"), ("passwd_hash", &hash)],
        )
        .await;
    assert_eq!(
        body,
        format!("{HEADER}<account_out>\n<authenticator>{auth}</authenticator>\n</account_out>\n")
    );
    // Email matched case-insensitively.
    let body = h
        .call(
            "lookup_account.php",
            &[("email_addr", "LOOK@Example.COM"), ("passwd_hash", &hash)],
        )
        .await;
    assert_eq!(tag(&body, "authenticator").as_deref(), Some(auth.as_str()));
    // No hash: existence check.
    let body = h
        .call("lookup_account.php", &[("email_addr", "look@example.com")])
        .await;
    assert_eq!(
        body,
        format!("{HEADER}<account_out>\n   <success/>\n</account_out>\n")
    );
    assert!(!body.contains(&auth));
    // md5(authenticator . email) is accepted.
    let auth_hash = boinc_db::password::md5_hex(&format!("{auth}look@example.com"));
    let body = h
        .call(
            "lookup_account.php",
            &[
                ("email_addr", "look@example.com"),
                ("passwd_hash", &auth_hash),
            ],
        )
        .await;
    assert_eq!(tag(&body, "authenticator").as_deref(), Some(auth.as_str()));
    // Errors.
    let wrong = passwd_hash("wrong", "look@example.com");
    assert_error(
        &h.call(
            "lookup_account.php",
            &[("email_addr", "look@example.com"), ("passwd_hash", &wrong)],
        )
        .await,
        -206,
    );
    assert_error(
        &h.call(
            "lookup_account.php",
            &[("email_addr", "nobody@example.com"), ("passwd_hash", &hash)],
        )
        .await,
        -136,
    );
    assert_error(
        &h.call("lookup_account.php", &[("passwd_hash", &hash)])
            .await,
        -1,
    );
}

#[tokio::test]
async fn legacy_md5_row_logs_in() {
    let h = Harness::new("", None).await;
    let hash = passwd_hash("oldpass", "old@example.com");
    insert_legacy_user(
        &h,
        "old@example.com",
        &hash,
        "legacyauthenticator0000000000000",
    )
    .await;
    let body = h
        .call(
            "lookup_account.php",
            &[("email_addr", "old@example.com"), ("passwd_hash", &hash)],
        )
        .await;
    assert_eq!(
        tag(&body, "authenticator").as_deref(),
        Some("legacyauthenticator0000000000000"),
        "{body}"
    );
    let wrong = passwd_hash("nope", "old@example.com");
    assert_error(
        &h.call(
            "lookup_account.php",
            &[("email_addr", "old@example.com"), ("passwd_hash", &wrong)],
        )
        .await,
        -206,
    );
}

#[tokio::test]
async fn php_password_verify_accepts_our_hash() {
    let h = Harness::new("", None).await;
    h.new_account("php@example.com", "Php", &[]).await;
    let stored = h.user("php@example.com").await.unwrap().passwd_hash;
    assert!(stored.starts_with("$2y$10$"), "{stored}");
    let input = passwd_hash("secret", "php@example.com");
    let php = |candidate: &str| {
        Command::new("php")
            .args(["-r", "exit(password_verify($argv[1], $argv[2]) ? 0 : 1);"])
            .args([candidate, stored.as_str()])
            .status()
            .expect("php (Debian package php-cli) must be installed for this test")
    };
    assert!(
        php(&input).success(),
        "PHP's password_verify rejected our hash"
    );
    assert!(!php(&passwd_hash("other", "php@example.com")).success());
}

#[tokio::test]
async fn am_get_info_reply() {
    let h = Harness::new("", None).await;
    let auth = h.new_account("info@example.com", "Info User", &[]).await;
    let mut c = h.conn().await;
    let u = h.user("info@example.com").await.unwrap();
    c.exec_drop(
        "INSERT INTO team (create_time, userid, name, type, nusers, expavg_time, joinable) VALUES (1, ?, 'Mine', 1, 1, 0, 1)",
        (u.id,),
    )
    .await
    .unwrap();
    let tid: i64 = c
        .query_first("SELECT LAST_INSERT_ID()")
        .await
        .unwrap()
        .unwrap();
    c.exec_drop(
        "UPDATE user SET teamid = ?, url = 'http://x.org/a b', global_prefs = '<global_preferences>\n</global_preferences>', \
         project_prefs = '', venue = 'home' WHERE id = ?",
        (tid, u.id),
    )
    .await
    .unwrap();
    let u = h.user("info@example.com").await.unwrap();
    let cross: String = c
        .exec_first("SELECT cross_project_id FROM user WHERE id = ?", (u.id,))
        .await
        .unwrap()
        .unwrap();
    let weak = format!(
        "{}_{}",
        u.id,
        boinc_db::password::md5_hex(&format!("{}{}", auth, u.passwd_hash))
    );
    let cpid = boinc_db::password::md5_hex(&format!("{cross}info@example.com"));
    let body = h
        .call("am_get_info.php", &[("account_key", auth.as_str())])
        .await;
    let want = format!(
        "{HEADER}<am_get_info_reply>\n    <success/>\n    <id>{id}</id>\n<name>Info+User</name>\n\
         <country>International</country>\n<weak_auth>{weak}</weak_auth>\n<cpid>{cpid}</cpid>\n\
         <has_profile>0</has_profile>\n<create_time>{ct}</create_time>\n<global_prefs>\n\
         <global_preferences>\n</global_preferences>\n</global_prefs>\n<project_prefs>\n\n\
         </project_prefs>\n<url>http%3A%2F%2Fx.org%2Fa+b</url>\n<send_email>1</send_email>\n\
         <show_hosts>1</show_hosts>\n<teamid>{tid}</teamid>\n<venue>home</venue><teamfounder/>\n\
         \n</am_get_info_reply>\n",
        id = u.id,
        ct = u.create_time,
    );
    assert_eq!(body, want);
    assert_error(
        &h.call("am_get_info.php", &[("account_key", "bogus")]).await,
        -136,
    );
    assert_error(&h.call("am_get_info.php", &[]).await, -1);
}

#[tokio::test]
async fn repeated_failures_from_one_address_are_limited() {
    let options = boinc_rpc::Options {
        fail_limit: 3,
        fail_window: Duration::from_secs(60),
        // One hashing thread, which the test can hold (below).
        hash_threads: Some(1),
        ..test_options()
    };
    let h = Harness::with("", None, options).await;
    h.new_account("lim@example.com", "Lim", &[]).await;
    let wrong = passwd_hash("guess", "lim@example.com");
    for _ in 0..3 {
        assert_error(
            &h.call(
                "lookup_account.php",
                &[("email_addr", "lim@example.com"), ("passwd_hash", &wrong)],
            )
            .await,
            -206,
        );
    }
    // Now even the right password is refused from this address, before
    // any password check: it is answered while the only hashing thread is
    // held by the test, so no bcrypt could have run for it.
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = tokio::spawn(boinc_rpc::hashing::hash_pool().run(move || {
        started_tx.send(()).unwrap();
        let _ = release_rx.recv();
    }));
    tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
        .await
        .unwrap();
    let right = passwd_hash("secret", "lim@example.com");
    let body = tokio::time::timeout(
        Duration::from_secs(20),
        h.call(
            "lookup_account.php",
            &[("email_addr", "lim@example.com"), ("passwd_hash", &right)],
        ),
    )
    .await
    .expect("refused without waiting for a password check");
    assert_error(&body, -1);
    assert!(body.contains("too many failed attempts"), "{body}");
    assert!(!holder.is_finished(), "the hashing thread was let go early");
    release_tx.send(()).unwrap();
    holder.await.unwrap().unwrap();
    // create_account's wrong-password path is limited as well.
    assert_error(&h.create("lim@example.com", "secret", "Lim", &[]).await, -1);
}

/// No failure is made slower on purpose: an unknown address and a wrong
/// password (the case upstream's PHP sleeps on) answer as fast as the
/// same account's success, which does the same work (the lookup and one
/// bcrypt check). Compared with that success rather than with a fixed
/// bound, so a loaded machine slows both alike; the fastest failure of a
/// few must come within a second of the slowest success, which any sleep
/// upstream-style (seconds) would exceed every time.
#[tokio::test]
async fn failures_do_not_sleep() {
    let h = Harness::new("", None).await;
    h.new_account("s@example.com", "Sleeper", &[]).await;
    let right = passwd_hash("secret", "s@example.com");
    let wrong = passwd_hash("guess", "s@example.com");
    let timed = |params: Vec<(&'static str, String)>, num: Option<i32>| {
        let h = &h;
        async move {
            let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let t = std::time::Instant::now();
            let body = h.call("lookup_account.php", &p).await;
            let took = t.elapsed();
            match num {
                Some(n) => assert_error(&body, n),
                None => assert!(body.contains("<authenticator>"), "{body}"),
            }
            took
        }
    };
    let mut success = Duration::ZERO;
    let (mut unknown, mut bad) = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        let ok = vec![
            ("email_addr", "s@example.com".to_owned()),
            ("passwd_hash", right.clone()),
        ];
        success = success.max(timed(ok, None).await);
        let none = vec![("email_addr", "none@example.com".to_owned())];
        unknown = unknown.min(timed(none, Some(-136)).await);
        let wrong = vec![
            ("email_addr", "s@example.com".to_owned()),
            ("passwd_hash", wrong.clone()),
        ];
        bad = bad.min(timed(wrong, Some(-206)).await);
    }
    let margin = Duration::from_secs(1);
    assert!(
        unknown < success + margin,
        "unknown address: {unknown:?}, success: {success:?}"
    );
    assert!(
        bad < success + margin,
        "wrong password: {bad:?}, success: {success:?}"
    );
}
