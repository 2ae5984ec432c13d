//! Issue 9 as an attacker tries it, against real MariaDB: look-alike
//! consent-type names and email addresses (under the collations a BOINC
//! database may use), over-long fields, countries off BOINC's list, and a
//! blank terms file.

mod common;
mod robust;

use common::*;
use mysql_async::prelude::*;

use boinc_db::testing::{look_alikes, NAME_COLLATIONS as COLLATIONS};

async fn collate(h: &Harness, coll: &str) {
    h.db.collate_names(coll).await;
}

async fn type_id(h: &Harness, name: &str) -> i64 {
    let mut c = h.conn().await;
    c.exec_first(
        "SELECT id FROM consent_type WHERE CAST(shortname AS BINARY) = CAST(? AS BINARY)",
        (name,),
    )
    .await
    .unwrap()
    .unwrap()
}

async fn consent_rows(h: &Harness) -> Vec<(i64, i64, i64, i64, String)> {
    let mut c = h.conn().await;
    c.query(
        "SELECT userid, consent_type_id, consent_flag, consent_not_required, source \
         FROM consent ORDER BY id",
    )
    .await
    .unwrap()
}

fn set_consent<'a>(auth: &'a str, name: &'a str, flag: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("account_key", auth),
        ("consent_name", name),
        ("consent_flag", flag),
        ("consent_not_required", "0"),
        ("consent_source", "x"),
    ]
}

// ---------------------------------------------------------------- item 1

#[tokio::test]
async fn look_alike_consent_names_are_unknown_types_and_write_nothing() {
    let h = Harness::consent_project("").await;
    h.set_type_enabled("STATSEXPORT", true).await;
    let auth = h
        .new_account(
            "v@example.com",
            "Volunteer",
            &[("consent_flag", "1"), ("source", "client")],
        )
        .await;
    let (enroll_id, stats_id) = (
        type_id(&h, "ENROLL").await,
        type_id(&h, "STATSEXPORT").await,
    );
    for coll in COLLATIONS {
        collate(&h, coll).await;
        for (real, flag) in [("ENROLL", "0"), ("ENROLL", "1"), ("STATSEXPORT", "1")] {
            for name in look_alikes(real) {
                let before = consent_rows(&h).await;
                let body = h
                    .post("am_set_info.php", &set_consent(&auth, &name, flag))
                    .await;
                assert!(
                    body.contains("<success/>"),
                    "{coll}: {name:?} flag {flag}: {body}"
                );
                let w = tag(&body, "consent_warning")
                    .unwrap_or_else(|| panic!("{coll}: {name:?}: no warning: {body}"));
                assert!(w.contains("does not exist"), "{coll}: {name:?}: {w}");
                assert_eq!(consent_rows(&h).await, before, "{coll}: {name:?} wrote");
            }
        }
        // The exact names still work: withdrawal of ENROLL is refused, a
        // STATSEXPORT flip is recorded.
        let body = h
            .post("am_set_info.php", &set_consent(&auth, "ENROLL", "0"))
            .await;
        assert_error(&body, -1);
        assert!(body.contains("ENROLL"), "{body}");
        let before = consent_rows(&h).await.len();
        let latest_stats = consent_rows(&h)
            .await
            .iter()
            .rev()
            .find(|r| r.1 == stats_id)
            .map(|r| r.2);
        let flip = if latest_stats == Some(1) { "0" } else { "1" };
        let body = h
            .post("am_set_info.php", &set_consent(&auth, "STATSEXPORT", flip))
            .await;
        assert!(
            body.contains("<success/>") && !body.contains("warning"),
            "{body}"
        );
        assert_eq!(consent_rows(&h).await.len(), before + 1, "{coll}");
    }
    // ENROLL was never withdrawn: one row, consent given.
    let enroll: Vec<_> = consent_rows(&h)
        .await
        .into_iter()
        .filter(|r| r.1 == enroll_id)
        .collect();
    assert_eq!(enroll.len(), 1, "{enroll:?}");
    assert_eq!(enroll[0].2, 1);
}

// ---------------------------------------------------------------- item 2

#[tokio::test]
async fn look_alike_emails_select_no_account() {
    let h = Harness::consent_project(
        "<rpc_failed_logins_per_ip>1000000</rpc_failed_logins_per_ip>\
         <rpc_create_account_per_ip_per_hour>0</rpc_create_account_per_ip_per_hour>",
    )
    .await;
    // `nk`: the Kelvin sign (U+212A) lower-cases to a real `k` in Unicode.
    let email = "nk@x.org";
    let auth = h.new_account(email, "Owner", &[]).await;
    let hash = passwd_hash("secret", email);
    let mut probes = look_alikes(email);
    probes.push("n\u{212a}@x.org".into());
    probes.push("N\u{212a}@X.ORG".into());
    for coll in COLLATIONS {
        collate(&h, coll).await;
        let users = h.user_count().await;
        for probe in &probes {
            for sent in [Some(hash.as_str()), None] {
                let mut p = vec![("email_addr", probe.as_str())];
                if let Some(s) = sent {
                    p.push(("passwd_hash", s));
                }
                let body = h.post("lookup_account.php", &p).await;
                assert!(!body.contains(&auth), "{coll}: {probe:?}: {body}");
                assert_error(&body, -136);
            }
            // A sign-up with the look-alike and the owner's password never
            // returns the owner's account; the address is refused.
            let body = h
                .post(
                    "create_account.php",
                    &[
                        ("email_addr", probe.as_str()),
                        ("passwd_hash", hash.as_str()),
                        ("user_name", "Copycat"),
                    ],
                )
                .await;
            assert!(!body.contains(&auth), "{coll}: {probe:?}: {body}");
            assert_error(&body, -205);
        }
        assert_eq!(h.user_count().await, users, "{coll}");
        // ASCII case is the one difference that still matches.
        let body = h
            .post(
                "lookup_account.php",
                &[("email_addr", "NK@X.Org"), ("passwd_hash", hash.as_str())],
            )
            .await;
        assert_eq!(tag(&body, "authenticator").as_deref(), Some(auth.as_str()));
    }
}

/// A stored address that is a look-alike of the one given (an old row
/// written by other software): never selected, and a sign-up that collides
/// with it under the column's collation is -137, not the old account.
#[tokio::test]
async fn stored_look_alike_is_another_account() {
    let h = Harness::consent_project(
        "<rpc_failed_logins_per_ip>1000000</rpc_failed_logins_per_ip>\
         <rpc_create_account_per_ip_per_hour>0</rpc_create_account_per_ip_per_hour>\
         <am_set_info_allow_credentials/>",
    )
    .await;
    let legacy_auth = h.new_account("legacy@x.org", "Legacy", &[]).await;
    let other_auth = h.new_account("other@x.org", "Other", &[]).await;
    let mut c = h.conn().await;
    for coll in COLLATIONS {
        collate(&h, coll).await;
        for stored in [
            "legacy@x.org ",
            "legacy@x.org\u{200b}",
            "LEGACY@x.org\u{a0}",
        ] {
            c.exec_drop(
                "UPDATE user SET email_addr = ? WHERE authenticator = ?",
                (stored, &legacy_auth),
            )
            .await
            .unwrap();
            let hash = passwd_hash("secret", "legacy@x.org");
            let before = robust::fingerprint(&mut c).await;
            let body = h
                .post(
                    "lookup_account.php",
                    &[("email_addr", "legacy@x.org"), ("passwd_hash", &hash)],
                )
                .await;
            assert_error(&body, -136);
            // The same password: on main this returned the old account.
            let body = h
                .post(
                    "create_account.php",
                    &[
                        ("email_addr", "legacy@x.org"),
                        ("passwd_hash", &hash),
                        ("user_name", "Newcomer"),
                    ],
                )
                .await;
            assert!(!body.contains(&legacy_auth), "{coll} {stored:?}: {body}");
            let collides = collation_equal(&mut c, coll, stored, "legacy@x.org").await;
            if collides {
                assert_error(&body, -137);
                // Another account moving onto the address: refused too.
                let b = h
                    .post(
                        "am_set_info.php",
                        &[
                            ("account_key", other_auth.as_str()),
                            ("email_addr", "legacy@x.org"),
                        ],
                    )
                    .await;
                assert_error(&b, -137);
                assert!(b.contains("already an account"), "{b}");
                assert_eq!(
                    robust::fingerprint(&mut c).await,
                    before,
                    "{coll} {stored:?}"
                );
            } else {
                // Not equal under this collation: a new, separate account.
                let new_auth = tag(&body, "authenticator")
                    .unwrap_or_else(|| panic!("{coll} {stored:?}: {body}"));
                assert_ne!(new_auth, legacy_auth);
                c.exec_drop("DELETE FROM user WHERE authenticator = ?", (&new_auth,))
                    .await
                    .unwrap();
            }
        }
    }
}

async fn collation_equal(c: &mut mysql_async::Conn, coll: &str, a: &str, b: &str) -> bool {
    let eq: Option<i64> = c
        .exec_first(
            format!(
                "SELECT CONVERT(? USING utf8mb4) COLLATE {coll} = CONVERT(? USING utf8mb4) \
                 COLLATE {coll}"
            ),
            (a, b),
        )
        .await
        .unwrap();
    eq == Some(1)
}

/// Previous-email checks (create_account step 3, am_set_info's reuse
/// check) match exactly too: the real previous address is refused, a
/// look-alike of it is a different address.
#[tokio::test]
async fn previous_email_checks_are_exact() {
    let h = Harness::consent_project(
        "<rpc_create_account_per_ip_per_hour>0</rpc_create_account_per_ip_per_hour>\
         <am_set_info_allow_credentials/>",
    )
    .await;
    let _a = h.new_account("a@x.org", "A", &[]).await;
    let b = h.new_account("b@x.org", "B", &[]).await;
    let mut c = h.conn().await;
    c.exec_drop(
        "UPDATE user SET previous_email_addr = 'gone@x.org' WHERE email_addr = 'a@x.org'",
        (),
    )
    .await
    .unwrap();
    let body = h.create("gone@x.org", "secret", "Gone", &[]).await;
    assert_error(&body, -137);
    let body = h
        .post(
            "am_set_info.php",
            &[("account_key", b.as_str()), ("email_addr", "GONE@x.org")],
        )
        .await;
    assert_error(&body, -137);
    assert!(body.contains("already in use"), "{body}");
    // A's previous address stored as a look-alike: not the same address.
    c.exec_drop(
        "UPDATE user SET previous_email_addr = 'prev@x.org ' WHERE email_addr = 'a@x.org'",
        (),
    )
    .await
    .unwrap();
    let body = h.create("prev@x.org", "secret", "Prev", &[]).await;
    assert!(tag(&body, "authenticator").is_some(), "{body}");
}

// ---------------------------------------------------------------- item 7

/// POST an am_set_info that must fail naming `field`, and check nothing
/// changed.
async fn refused(h: &Harness, form: &[(&str, &str)], field: &str, num: i32) {
    let mut c = h.conn().await;
    let before = robust::fingerprint(&mut c).await;
    let body = h.post("am_set_info.php", form).await;
    assert_error(&body, num);
    let msg = tag(&body, "error_msg").unwrap();
    assert!(
        msg.starts_with(&format!("{field} is too long")),
        "{field}: {msg}"
    );
    assert_eq!(robust::fingerprint(&mut c).await, before, "{field} wrote");
}

#[tokio::test]
async fn over_long_am_set_info_fields_name_the_field_and_write_nothing() {
    let h = Harness::consent_project("<am_set_info_allow_credentials/>").await;
    h.set_type_enabled("STATSEXPORT", true).await;
    let auth = h.new_account("long@x.org", "Long", &[]).await;
    let id = h.user("long@x.org").await.unwrap().id;
    let a = auth.as_str();
    // Multi-byte characters: the limits count characters, as the columns.
    let s = |n: usize| "ü".repeat(n);
    for (field, max, num) in [
        ("postal_code", 254, -1),
        ("url", 254, -1),
        ("venue", 254, -1),
        ("country", 254, -1),
        ("name", 191, -188),
    ] {
        let long = s(max + 1);
        refused(&h, &[("account_key", a), (field, &long)], field, num).await;
        // Valid fields in the same call are not written either.
        refused(
            &h,
            &[("account_key", a), ("venue", "home"), (field, &long)],
            field,
            num,
        )
        .await;
    }
    let long_email = format!("{}@x.org", "e".repeat(186));
    refused(
        &h,
        &[("account_key", a), ("email_addr", &long_email)],
        "email_addr",
        -205,
    )
    .await;
    let long_source = s(256);
    let mut form = set_consent(a, "STATSEXPORT", "1");
    form.retain(|p| p.0 != "consent_source");
    form.push(("consent_source", &long_source));
    refused(&h, &form, "consent_source", -1).await;
    // Blobs count bytes: 65536 bytes of prefs is one too many.
    let prefs = |tag: &str, total: usize| {
        let open = format!("<{tag}>\n");
        let close = format!("</{tag}>");
        format!(
            "{open}{}{close}",
            "x".repeat(total - open.len() - close.len())
        )
    };
    let g = prefs("global_preferences", 65536);
    refused(
        &h,
        &[("account_key", a), ("global_prefs", &g)],
        "global_prefs",
        -1,
    )
    .await;
    let p = prefs("project_preferences", 65536);
    refused(
        &h,
        &[("account_key", a), ("project_prefs", &p)],
        "project_prefs",
        -1,
    )
    .await;

    // At the limit, everything is stored as sent.
    let name = format!("N{}", s(190));
    let (postal, url, venue, source) = (s(254), s(254), s(254), s(255));
    let g = prefs("global_preferences", 65535);
    let mut form = set_consent(a, "STATSEXPORT", "1");
    form.retain(|p| p.0 != "consent_source");
    form.extend([
        ("consent_source", source.as_str()),
        ("name", name.as_str()),
        ("postal_code", postal.as_str()),
        ("url", url.as_str()),
        ("venue", venue.as_str()),
        ("global_prefs", g.as_str()),
    ]);
    let body = h.post("am_set_info.php", &form).await;
    assert!(body.contains("<success/>"), "{body}");
    let u = h.user("long@x.org").await.unwrap();
    assert_eq!(
        (u.name, u.url, u.venue, u.global_prefs.len()),
        (name, url, venue, 65535)
    );
    let rows = h.consents(id).await;
    assert_eq!(rows.last().unwrap().3, source);

    // The kept project-specific block can push project_prefs past the
    // column: refused, nothing written.
    let mut c = h.conn().await;
    let stored = format!(
        "<project_preferences>\n<project_specific>{}</project_specific>\n</project_preferences>",
        "k".repeat(40_000)
    );
    c.exec_drop(
        "UPDATE user SET project_prefs = ? WHERE id = ?",
        (&stored, id),
    )
    .await
    .unwrap();
    let p = prefs("project_preferences", 30_000);
    refused(
        &h,
        &[("account_key", a), ("project_prefs", &p)],
        "project_prefs",
        -1,
    )
    .await;
}

#[tokio::test]
async fn over_long_create_account_fields_name_the_field_and_write_nothing() {
    let h = Harness::consent_project("").await;
    let mut c = h.conn().await;
    let before = robust::fingerprint(&mut c).await;
    let long_source = "ß".repeat(256);
    let long_name = "ß".repeat(192);
    // 191 characters, each label within the syntax rules.
    let domain = format!(
        "{}.{}.{}.org",
        "a".repeat(61),
        "b".repeat(61),
        "c".repeat(61)
    );
    let long_email = format!("ee@{domain}");
    for (email, name, source, field, num) in [
        ("s@x.org", "S", long_source.as_str(), "source", -1),
        ("n@x.org", long_name.as_str(), "client", "user_name", -188),
        (long_email.as_str(), "E", "client", "email_addr", -205),
    ] {
        let body = h
            .create(
                email,
                "secret",
                name,
                &[("consent_flag", "1"), ("source", source)],
            )
            .await;
        assert_error(&body, num);
        let msg = tag(&body, "error_msg").unwrap();
        assert!(msg.starts_with(&format!("{field} is too long")), "{msg}");
    }
    assert_eq!(robust::fingerprint(&mut c).await, before);
    // At the limit: created, consent recorded with the whole source.
    let source = "ß".repeat(255);
    let name = "ß".repeat(191);
    let email = format!("e@{domain}");
    assert_eq!(email.len(), 191);
    let body = h
        .create(
            &email,
            "secret",
            &name,
            &[("consent_flag", "1"), ("source", &source)],
        )
        .await;
    assert!(tag(&body, "authenticator").is_some(), "{body}");
    let u = h.user(&email).await.unwrap();
    assert_eq!(u.name, name);
    assert_eq!(h.consents(u.id).await[0].3, source);
}

// ---------------------------------------------------------------- item 8

#[tokio::test]
async fn country_must_be_on_boincs_list() {
    let h = Harness::consent_project("").await;
    let auth = h.new_account("c@x.org", "C", &[]).await;
    let mut c = h.conn().await;
    for bad in [
        "Not A Country <b>",
        "germany",
        "Germany ",
        " Germany",
        "GERMANY",
        "Ge\u{200b}rmany",
        "Deutschland",
        "Bahamas",
    ] {
        let before = robust::fingerprint(&mut c).await;
        let body = h
            .post(
                "am_set_info.php",
                &[
                    ("account_key", auth.as_str()),
                    ("country", bad),
                    ("venue", "x"),
                ],
            )
            .await;
        assert_error(&body, -1);
        assert_eq!(tag(&body, "error_msg").as_deref(), Some("invalid country"));
        assert_eq!(robust::fingerprint(&mut c).await, before, "{bad:?}");
    }
    for good in [
        "Germany",
        "Bahamas, The",
        "Cote d'Ivoire",
        "None",
        "International",
    ] {
        let body = h
            .post(
                "am_set_info.php",
                &[("account_key", auth.as_str()), ("country", good)],
            )
            .await;
        assert!(body.contains("<success/>"), "{good}: {body}");
        assert_eq!(h.user("c@x.org").await.unwrap().country, good);
    }
    // Empty: allowed (upstream too), leaves the country alone.
    let body = h
        .post(
            "am_set_info.php",
            &[("account_key", auth.as_str()), ("country", "")],
        )
        .await;
    assert!(body.contains("<success/>"), "{body}");
    assert_eq!(h.user("c@x.org").await.unwrap().country, "International");
}

#[tokio::test]
async fn country_is_ignored_when_user_country_is_off() {
    let h = Harness::consent_project("<user_country>0</user_country>").await;
    let auth = h.new_account("c@x.org", "C", &[]).await;
    let body = h
        .post(
            "am_set_info.php",
            &[("account_key", auth.as_str()), ("country", "Not A Country")],
        )
        .await;
    assert!(body.contains("<success/>"), "{body}");
    assert_eq!(h.user("c@x.org").await.unwrap().country, "International");
}

// ---------------------------------------------------------------- item 9

async fn terms_tables(h: &Harness) -> (i64, i64, i64) {
    let mut c = h.conn().await;
    c.query_first(
        "SELECT (SELECT COUNT(*) FROM consent), (SELECT COUNT(*) FROM terms_version), \
         (SELECT COUNT(*) FROM consent_terms)",
    )
    .await
    .unwrap()
    .unwrap()
}

#[tokio::test]
async fn blank_terms_file_offers_nothing_and_records_no_enroll() {
    for blank in ["", " ", "\n\n", " \t\r\n \u{b}\0 "] {
        let h = Harness::new("", Some(blank)).await;
        h.set_type_enabled("ENROLL", true).await;
        let cfg = h.get("get_project_config.php").await;
        assert!(!cfg.contains("terms_of_use"), "{blank:?}: {cfg}");
        let body = h
            .create(
                "blank@x.org",
                "secret",
                "Blank",
                &[("consent_flag", "1"), ("source", "client")],
            )
            .await;
        assert!(tag(&body, "authenticator").is_some(), "{body}");
        let id = h.user("blank@x.org").await.unwrap().id;
        assert!(h.consents(id).await.is_empty(), "{blank:?}");
        assert_eq!(terms_tables(&h).await, (0, 0, 0), "{blank:?}");
        drop(h);
    }
}

#[tokio::test]
async fn terms_file_blanked_while_running_stops_enroll_rows() {
    let h = Harness::consent_project("").await;
    let body = h
        .create(
            "before@x.org",
            "secret",
            "Before",
            &[("consent_flag", "1"), ("source", "c")],
        )
        .await;
    assert!(tag(&body, "authenticator").is_some(), "{body}");
    assert_eq!(terms_tables(&h).await, (1, 1, 1));
    terms_shown(&h, true).await;
    std::fs::write(h.dir.path().join("terms_of_use.txt"), " \n\t\n").unwrap();
    terms_shown(&h, false).await;
    let body = h
        .create(
            "after@x.org",
            "secret",
            "After",
            &[("consent_flag", "1"), ("source", "c")],
        )
        .await;
    assert!(tag(&body, "authenticator").is_some(), "{body}");
    assert_eq!(terms_tables(&h).await, (1, 1, 1));
}

/// Wait (up to 5 s) until get_project_config does (not) show terms.
async fn terms_shown(h: &Harness, want: bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while h
        .get("get_project_config.php")
        .await
        .contains("terms_of_use")
        != want
    {
        assert!(
            std::time::Instant::now() < deadline,
            "terms shown != {want}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
