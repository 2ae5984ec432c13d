//! Issue 9 items 7 and 8, against real MariaDB: every stored value is
//! checked against its column's size before the database sees it (message
//! naming the field, nothing written), and `country` must be on BOINC's list.

mod common;
mod robust;

use common::*;
use mysql_async::prelude::*;

fn set_consent<'a>(auth: &'a str, name: &'a str, flag: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("account_key", auth),
        ("consent_name", name),
        ("consent_flag", flag),
        ("consent_not_required", "0"),
        ("consent_source", "x"),
    ]
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
