//! Issue 9 items 1 and 2 as an attacker tries them, against real MariaDB:
//! look-alike consent-type names and email addresses, under the collations
//! a BOINC database may use. Look-alikes select nothing.

mod common;
mod robust;

use common::*;
use mysql_async::prelude::*;

use boinc_db::testing::{look_alikes, NAME_COLLATIONS as COLLATIONS};

async fn collate(h: &Harness, coll: &str) {
    h.db.collate_names(coll).await;
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
    let (enroll_id, stats_id) = (h.type_id("ENROLL").await, h.type_id("STATSEXPORT").await);
    for coll in COLLATIONS {
        collate(&h, coll).await;
        for (real, flag) in [("ENROLL", "0"), ("ENROLL", "1"), ("STATSEXPORT", "1")] {
            for name in look_alikes(real) {
                let before = consent_rows(&h).await;
                let body = h
                    .post("am_set_info.php", &set_consent(&auth, &name, flag))
                    .await;
                if name.contains('\0') {
                    // No text at all: refused by name before any lookup.
                    assert_error(&body, -1);
                    assert!(body.contains("consent_name contains a NUL byte"), "{body}");
                    assert_eq!(consent_rows(&h).await, before, "{coll}: {name:?} wrote");
                    continue;
                }
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
            if probe.contains('\0') {
                // No text at all: refused by name before any lookup.
                for rpc in ["lookup_account.php", "create_account.php"] {
                    let body = h
                        .post(
                            rpc,
                            &[
                                ("email_addr", probe.as_str()),
                                ("passwd_hash", hash.as_str()),
                                ("user_name", "Copycat"),
                            ],
                        )
                        .await;
                    assert_error(&body, -1);
                    assert!(body.contains("email_addr contains a NUL byte"), "{body}");
                }
                continue;
            }
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
