//! create_account against real MariaDB: every rule of SPEC section 3.

mod common;

use common::*;
use mysql_async::prelude::*;

#[tokio::test]
async fn legacy_client_gets_account_without_consent_row() {
    let h = Harness::consent_project("").await;
    let body = h
        .create("Legacy@Example.com", "pw123456", "Legacy User", &[])
        .await;
    assert!(body.starts_with(HEADER), "{body}");
    let auth = tag(&body, "authenticator").expect("authenticator");
    assert_eq!(
        body,
        format!(
            "{HEADER} <account_out>\n   <authenticator>{auth}</authenticator>\n</account_out>\n"
        )
    );
    let u = h
        .user("legacy@example.com")
        .await
        .expect("user row, email lower-cased");
    assert_eq!(u.authenticator, auth);
    assert_eq!(auth.len(), 32);
    assert!(u.passwd_hash.starts_with("$2y$10$"), "{}", u.passwd_hash);
    assert!(h.consents(u.id).await.is_empty());
}

#[tokio::test]
async fn consent_flag_1_records_enroll_at_create_time() {
    let h = Harness::consent_project("").await;
    h.new_account(
        "c1@example.com",
        "Consenting",
        &[("consent_flag", "1"), ("source", "client")],
    )
    .await;
    let u = h.user("c1@example.com").await.unwrap();
    let rows = h.consents(u.id).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (t, flag, nr, source, time) = &rows[0];
    assert_eq!(
        (t.as_str(), *flag, *nr, source.as_str()),
        ("ENROLL", 1, 0, "client")
    );
    assert_eq!(*time, u.create_time, "consent_time == user.create_time");
    // The accepted terms text is linked (issue 6's terms versioning).
    let mut c = h.conn().await;
    let text: Option<String> = c
        .exec_first(
            "SELECT v.terms FROM consent_terms ct JOIN terms_version v ON v.id = ct.terms_version_id \
             JOIN consent c ON c.id = ct.consent_id WHERE c.userid = ?",
            (u.id,),
        )
        .await
        .unwrap();
    assert_eq!(text.as_deref(), Some(TERMS));
}

#[tokio::test]
async fn consent_flag_0_records_not_required() {
    let h = Harness::consent_project("").await;
    h.new_account(
        "am@example.com",
        "Via AM",
        &[("consent_flag", "0"), ("source", "AM")],
    )
    .await;
    let u = h.user("am@example.com").await.unwrap();
    let rows = h.consents(u.id).await;
    assert_eq!(rows.len(), 1);
    let (t, flag, nr, source, time) = &rows[0];
    assert_eq!(
        (t.as_str(), *flag, *nr, source.as_str()),
        ("ENROLL", 0, 1, "AM")
    );
    assert_eq!(*time, u.create_time);
}

#[tokio::test]
async fn no_consent_row_when_enroll_disabled() {
    let h = Harness::new("", Some(TERMS)).await; // ENROLL stays disabled
    h.new_account(
        "d@example.com",
        "Dis",
        &[("consent_flag", "1"), ("source", "client")],
    )
    .await;
    let u = h.user("d@example.com").await.unwrap();
    assert!(h.consents(u.id).await.is_empty());
}

#[tokio::test]
async fn no_consent_row_when_terms_file_missing() {
    let h = Harness::new("", None).await;
    h.set_type_enabled("ENROLL", true).await;
    h.new_account(
        "t@example.com",
        "NoTerms",
        &[("consent_flag", "1"), ("source", "client")],
    )
    .await;
    let u = h.user("t@example.com").await.unwrap();
    assert!(h.consents(u.id).await.is_empty());
}

/// `source` missing and `source` empty are the same: the account is made,
/// with no consent row (SPEC section 3, step 7).
#[tokio::test]
async fn no_consent_row_without_source() {
    let h = Harness::consent_project("").await;
    let cases: [(&str, &[(&str, &str)]); 2] = [
        ("missing", &[("consent_flag", "1")]),
        ("empty", &[("consent_flag", "1"), ("source", "")]),
    ];
    for (n, (case, params)) in cases.into_iter().enumerate() {
        let email = format!("s{n}@example.com");
        h.new_account(&email, &format!("NoSource {n}"), params)
            .await;
        let u = h.user(&email).await.unwrap();
        assert!(h.consents(u.id).await.is_empty(), "source {case}");
    }
    // With a source, the same call records consent (the project is one
    // that would).
    h.new_account(
        "s9@example.com",
        "WithSource",
        &[("consent_flag", "1"), ("source", "client")],
    )
    .await;
    let u = h.user("s9@example.com").await.unwrap();
    assert_eq!(h.consents(u.id).await.len(), 1);
}

#[tokio::test]
async fn require_consent_refuses_without_params_and_writes_nothing() {
    let h = Harness::consent_project("<account_creation_rpc_require_consent/>").await;
    let body = h.create("r@example.com", "pw", "Req", &[]).await;
    assert_error(&body, -242);
    assert!(body.contains("update your BOINC software"), "{body}");
    let body = h
        .create("r@example.com", "pw", "Req", &[("consent_flag", "1")])
        .await;
    assert_error(&body, -242);
    let body = h
        .create("r@example.com", "pw", "Req", &[("source", "client")])
        .await;
    assert_error(&body, -242);
    // An empty source counts as missing.
    let body = h
        .create(
            "r@example.com",
            "pw",
            "Req",
            &[("consent_flag", "1"), ("source", "")],
        )
        .await;
    assert_error(&body, -242);
    assert_eq!(h.user_count().await, 0);
    // With both, it works.
    h.new_account(
        "r@example.com",
        "Req",
        &[("consent_flag", "1"), ("source", "client")],
    )
    .await;
    assert_eq!(h.user_count().await, 1);
}

/// ENROLL disabled and no terms file: the project still refuses accounts
/// without consent, and the log says what is wrong with its configuration
/// (one WARN per misconfiguration, per refused call). The real binary, for
/// its log.
#[tokio::test]
async fn require_consent_even_when_misconfigured() {
    use common::real::{lines_at, RealServer};
    let db = boinc_db::testing::TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let config = db.write_project(
        dir.path(),
        "<account_creation_rpc_require_consent>1</account_creation_rpc_require_consent>",
        None,
    );
    let mut server = RealServer::start(&config).await;
    let warned = |log: &str| {
        let warns = lines_at(log, "WARN");
        let terms = warns
            .iter()
            .filter(|l| {
                l.contains(
                    "account_creation_rpc_require_consent is set but the terms of use file \
                     is missing or empty",
                )
            })
            .count();
        let enroll = warns
            .iter()
            .filter(|l| {
                l.contains(
                    "account_creation_rpc_require_consent is set but the ENROLL consent \
                     type is disabled or missing",
                )
            })
            .count();
        (terms, enroll)
    };
    assert_eq!(warned(&server.log()), (0, 0), "{}", server.log());
    let email = "m@example.com";
    let body = reqwest::get(server.url(&format!(
        "create_account.php?email_addr={email}&passwd_hash={}&user_name=Mis",
        passwd_hash("pw", email)
    )))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert_error(&body, -242);
    assert!(server.stop().success());
    let log = server.log();
    assert_eq!(warned(&log), (1, 1), "{log}");
    let mut c = db.conn().await;
    let users: i64 = c
        .query_first("SELECT COUNT(*) FROM user")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(users, 0);
}

#[tokio::test]
async fn existing_email_same_password_is_idempotent_other_password_refused() {
    let h = Harness::consent_project("").await;
    let auth = h.new_account("same@example.com", "Same", &[]).await;
    let again = h
        .create("SAME@example.com", "secret", "Other Name", &[])
        .await;
    assert_eq!(
        tag(&again, "authenticator").as_deref(),
        Some(auth.as_str()),
        "{again}"
    );
    let wrong = h.create("same@example.com", "wrong", "Same", &[]).await;
    assert_error(&wrong, -137);
    assert_eq!(h.user_count().await, 1);
}

#[tokio::test]
async fn existing_legacy_md5_row_is_idempotent() {
    let h = Harness::new("", None).await;
    let hash = passwd_hash("old", "legacy@example.com");
    let mut c = h.conn().await;
    c.exec_drop(
        "INSERT INTO user (create_time, email_addr, name, authenticator, country, postal_code, \
         total_credit, expavg_credit, expavg_time, teamid, venue, send_email, show_hosts, posts, \
         seti_id, seti_nresults, seti_last_result_time, seti_total_cpu, has_profile, \
         cross_project_id, passwd_hash, email_validated, donated) VALUES \
         (1, 'legacy@example.com', 'Old', 'legacyauth0000000000000000000000', '', '', 0, 0, 0, 0, '', 1, 1, 0, \
         0, 0, 0, 0, 0, 'x', ?, 0, 0)",
        (&hash,),
    )
    .await
    .unwrap();
    let body = h.create("legacy@example.com", "old", "Old", &[]).await;
    assert_eq!(
        tag(&body, "authenticator").as_deref(),
        Some("legacyauth0000000000000000000000")
    );
}

#[tokio::test]
async fn previous_email_cannot_be_reused() {
    let h = Harness::new("", None).await;
    let mut c = h.conn().await;
    h.new_account("now@example.com", "Mover", &[]).await;
    c.query_drop("UPDATE user SET previous_email_addr = 'before@example.com'")
        .await
        .unwrap();
    assert_error(
        &h.create("before@example.com", "pw", "Newcomer", &[]).await,
        -137,
    );
    assert_eq!(h.user_count().await, 1);
}

#[tokio::test]
async fn bad_email_is_205() {
    let h = Harness::new("", None).await;
    for e in ["not-an-email", "a@b", "a b@example.com", "@example.com"] {
        assert_error(&h.create(e, "pw", "Name", &[]).await, -205);
    }
    assert_eq!(h.user_count().await, 0);
}

#[tokio::test]
async fn bad_user_names_are_188_with_their_own_messages() {
    let h = Harness::new("", None).await;
    let cases = [
        (" lead", "leading or trailing white space"),
        ("trail ", "leading or trailing white space"),
        ("a<b", "special characters"),
        ("a&b", "special characters"),
        ("tab\there", "special characters"),
        ("quote'd", "special characters"),
        ("12345", "may not be a number"),
        ("1.5e3", "may not be a number"),
    ];
    for (i, (name, msg)) in cases.iter().enumerate() {
        let body = h
            .create(&format!("n{i}@example.com"), "pw", name, &[])
            .await;
        assert_error(&body, -188);
        assert!(body.contains(msg), "{name:?}: {body}");
    }
    // Present but empty is a bad name (SPEC section 3), GET or POST;
    // only an absent user_name is a missing parameter.
    let empty = format!(
        "{HEADER}<error>\n    <error_num>-188</error_num>\n    <error_msg>user name must be nonempty</error_msg>\n</error>\n"
    );
    let hash = passwd_hash("pw", "e@example.com");
    let form = [
        ("email_addr", "e@example.com"),
        ("passwd_hash", hash.as_str()),
        ("user_name", ""),
    ];
    assert_eq!(h.create("e@example.com", "pw", "", &[]).await, empty);
    assert_eq!(h.post("create_account.php", &form).await, empty);
    assert_eq!(
        h.get(&format!(
            "create_account.php?email_addr=e%40example.com&passwd_hash={hash}&user_name"
        ))
        .await,
        empty,
        "a name without '=' is present and empty too"
    );
    assert_eq!(
        h.call("create_account.php", &form[..2]).await,
        format!(
            "{HEADER}<error>\n    <error_num>-1</error_num>\n    <error_msg>missing or bad parameter: user_name</error_msg>\n</error>\n"
        )
    );
    // A taken name is -188, not a 500.
    h.new_account("first@example.com", "Taken Name", &[]).await;
    let body = h
        .create("second@example.com", "pw", "Taken Name", &[])
        .await;
    assert_error(&body, -188);
    assert!(body.contains("user name is already taken"), "{body}");
    assert_eq!(h.user_count().await, 1);
}

#[tokio::test]
async fn short_hash_and_missing_params_are_minus_1() {
    let h = Harness::new("", None).await;
    let body = h
        .call(
            "create_account.php",
            &[
                ("email_addr", "h@example.com"),
                ("passwd_hash", "abc"),
                ("user_name", "H"),
            ],
        )
        .await;
    assert_error(&body, -1);
    assert!(body.contains("password hash length not 32"), "{body}");
    let body = h
        .call(
            "create_account.php",
            &[("passwd_hash", "abc"), ("user_name", "H")],
        )
        .await;
    assert_error(&body, -1);
    assert!(
        body.contains("missing or bad parameter: email_addr"),
        "{body}"
    );
    assert_eq!(h.user_count().await, 0);
}

#[tokio::test]
async fn consent_flag_must_be_0_or_1() {
    let h = Harness::consent_project("").await;
    for bad in ["", "yes", "2", " 1"] {
        let body = h
            .create(
                "f@example.com",
                "pw",
                "Flag",
                &[("consent_flag", bad), ("source", "client")],
            )
            .await;
        assert_error(&body, -1);
        assert!(body.contains("consent_flag must be 0 or 1"), "{body}");
    }
    assert_eq!(h.user_count().await, 0);
    assert_eq!(h.consent_total().await, 0);
}

#[tokio::test]
async fn failed_consent_insert_leaves_no_user_row() {
    let h = Harness::consent_project("").await;
    let mut c = h.conn().await;
    c.query_drop(
        "CREATE TRIGGER fail_consent BEFORE INSERT ON consent FOR EACH ROW \
         SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'forced failure'",
    )
    .await
    .unwrap();
    let body = h
        .create(
            "tx@example.com",
            "pw",
            "Tx",
            &[("consent_flag", "1"), ("source", "client")],
        )
        .await;
    // The database refused the write: the caller is told so, nothing more.
    assert_error(&body, -1);
    assert!(
        body.contains("<error_msg>database error, please contact site administrators</error_msg>"),
        "{body}"
    );
    assert_eq!(
        h.user_count().await,
        0,
        "user row rolled back with the consent row"
    );
    // Without consent params the same project still creates accounts.
    h.new_account("tx2@example.com", "Tx2", &[]).await;
    assert_eq!(h.user_count().await, 1);
}

#[tokio::test]
async fn joins_a_joinable_team_only() {
    let h = Harness::new("", None).await;
    let mut c = h.conn().await;
    c.query_drop(
        "INSERT INTO team (create_time, userid, name, type, nusers, expavg_time, joinable) VALUES \
         (1, 0, 'Open Team', 1, 0, 0, 1), (1, 0, 'Closed Team', 1, 0, 0, 0)",
    )
    .await
    .unwrap();
    h.new_account("t1@example.com", "T1", &[("team_name", "Open Team")])
        .await;
    h.new_account("t2@example.com", "T2", &[("team_name", "Closed Team")])
        .await;
    h.new_account("t3@example.com", "T3", &[("team_name", "No Such Team")])
        .await;
    let open: i64 = c
        .query_first("SELECT id FROM team WHERE name = 'Open Team'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.user("t1@example.com").await.unwrap().teamid, open);
    assert_eq!(h.user("t2@example.com").await.unwrap().teamid, 0);
    assert_eq!(h.user("t3@example.com").await.unwrap().teamid, 0);
    let nusers: i64 = c
        .query_first("SELECT nusers FROM team WHERE name = 'Open Team'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(nusers, 1);
}

#[tokio::test]
async fn account_creation_disabled() {
    let h = Harness::new("<disable_account_creation/>", None).await;
    let body = h.create("x@example.com", "pw", "X", &[]).await;
    assert_error(&body, -208);
    assert!(body.contains("not accepting new accounts"), "{body}");
    let h = Harness::new("<disable_account_creation_rpc/>", None).await;
    let body = h.create("x@example.com", "pw", "X", &[]).await;
    assert_error(&body, -208);
    assert!(body.contains("visit the project web site"), "{body}");
    let h = Harness::new(
        "<disable_account_creation_rpc/><no_web_account_creation/>",
        None,
    )
    .await;
    let body = h.create("x@example.com", "pw", "X", &[]).await;
    assert!(body.contains("not accepting new accounts"), "{body}");
    assert_eq!(h.user_count().await, 0);
}

#[tokio::test]
async fn concurrent_creates_for_one_new_email_give_one_account() {
    let h = Harness::consent_project("").await;
    let mut calls = Vec::new();
    for i in 0..8 {
        let client = h.client.clone();
        let url = h.url("create_account.php");
        let hash = passwd_hash("secret", "race@example.com");
        calls.push(tokio::spawn(async move {
            client
                .get(url)
                .query(&[
                    ("email_addr", "race@example.com"),
                    ("passwd_hash", hash.as_str()),
                    ("user_name", &format!("Racer {i}")),
                    ("consent_flag", "1"),
                    ("source", "client"),
                ])
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }));
    }
    let mut auths = Vec::new();
    for c in calls {
        let body = c.await.unwrap();
        auths.push(tag(&body, "authenticator").unwrap_or_else(|| panic!("{body}")));
    }
    assert_eq!(h.user_count().await, 1);
    let u = h.user("race@example.com").await.unwrap();
    assert!(auths.iter().all(|a| *a == u.authenticator), "{auths:?}");
    assert_eq!(h.consents(u.id).await.len(), 1);
}

#[tokio::test]
async fn post_form_works_too() {
    let h = Harness::new("", None).await;
    let hash = passwd_hash("pw", "p@example.com");
    let body = h
        .post(
            "create_account",
            &[
                ("email_addr", "p@example.com"),
                ("passwd_hash", &hash),
                ("user_name", "Poster"),
            ],
        )
        .await;
    assert!(tag(&body, "authenticator").is_some(), "{body}");
}
