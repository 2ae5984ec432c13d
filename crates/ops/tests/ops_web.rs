//! The ops page over real HTTP, served in-process against a real MariaDB:
//! login, CSRF, escaping, headers, read-only mode, and that nothing can
//! delete a consent type.

mod common;

use boinc_db::testing::TestDb;
use boinc_ops::{ConsentOps, ServeError, ServeOptions};
use common::*;

type Form<'a> = Vec<(&'a str, &'a str)>;

/// What the admin is told on a refused request: the page's error line
/// (its HTML entities undone) when the refusal is a page, else the plain
/// text reply.
async fn told(r: reqwest::Response) -> String {
    let body = r.text().await.unwrap();
    let key = "<p class=\"error\" id=\"error\" role=\"alert\">";
    match body.find(key) {
        Some(i) => {
            let rest = &body[i + key.len()..];
            rest[..rest.find("</p>").expect("error line closed")]
                .replace("&#34;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        }
        None => {
            assert!(
                !body.contains("<html"),
                "a page without an error line: {body}"
            );
            body.trim_end().to_owned()
        }
    }
}

const STALE_FORM: &str =
    "missing or stale form token (reload the page and try again); nothing was changed";

#[tokio::test]
async fn ops_web_refuses_to_start_without_credentials() {
    let db = TestDb::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let r = boinc_ops::serve(
        listener,
        ConsentOps::new(db.pool()),
        ServeOptions::default(),
    )
    .await;
    assert!(matches!(r, Err(ServeError::NoCredentials)), "{r:?}");
    // Half-configured or malformed credentials are refused as well.
    assert!(boinc_ops::Credentials::new("admin", "").is_err());
    assert!(boinc_ops::Credentials::new("", "$2y$04$abcdefghijklmnopqrstuu").is_err());
    assert!(boinc_ops::Credentials::new("admin", "plaintext-password").is_err());
    let cfg = boinc_db::ProjectConfig::from_pairs(".".into(), &[("ops_user", "admin")]);
    assert!(matches!(
        boinc_ops::Credentials::from_config(&cfg),
        Err(ServeError::NoCredentials)
    ));
}

#[tokio::test]
async fn ops_web_wrong_credentials_get_401() {
    let s = start(false).await;
    let c = client();
    let none = c.get(format!("{}/", s.base)).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    assert_eq!(none.headers()["x-frame-options"], "DENY");
    for (u, p) in [(USER, "wrong"), ("root", PASS), ("", ""), (USER, "")] {
        let r = c
            .get(format!("{}/", s.base))
            .basic_auth(u, Some(p))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{u}:{p}");
        assert!(!r.text().await.unwrap().contains("ENROLL"));
    }
    let garbage = c
        .get(format!("{}/", s.base))
        .header("authorization", "Basic !!!notbase64")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 401);
    // A POST without credentials changes nothing.
    let snap = snapshot(&s.db).await;
    let r = c
        .post(format!("{}/set", s.base))
        .form(&[
            ("shortname", "ENROLL"),
            ("field", "enabled"),
            ("value", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(snapshot(&s.db).await, snap);
}

#[tokio::test]
async fn ops_web_repeated_wrong_logins_are_throttled() {
    let s = start(false).await;
    let c = client();
    let get = |u: &'static str, p: &'static str| {
        c.get(format!("{}/", s.base)).basic_auth(u, Some(p)).send()
    };
    // A login verified before the attack keeps working.
    assert_eq!(get(USER, PASS).await.unwrap().status(), 200);
    for _ in 0..10 {
        assert_eq!(get(USER, "guess").await.unwrap().status(), 401);
    }
    let r = get(USER, "guess").await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "60");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert_eq!(get(USER, PASS).await.unwrap().status(), 200);
}

#[tokio::test]
async fn ops_web_page_has_table_forms_explanation_and_headers() {
    let s = start(false).await;
    let r = client()
        .get(format!("{}/", s.base))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'self'"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let html = r.text().await.unwrap();
    for needle in [
        "ENROLL",
        "STATSEXPORT",
        "General terms-of-use for this BOINC project.",
        "Project-specific",
        "Privacy preference",
        "id=\"enabled-ENROLL\"",
        "id=\"privacypref-STATSEXPORT\"",
        "id=\"add-form\"",
        "Why can't I delete consent types?",
        "legally",
        "name=\"csrf\"",
    ] {
        assert!(html.contains(needle), "page lacks {needle:?}");
    }
    let css = client()
        .get(format!("{}/static/ops.css", s.base))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert!(css.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
}

#[tokio::test]
async fn ops_web_add_enable_privacypref_with_csrf_are_audited() {
    let s = start(false).await;
    let sess = open_session(&s).await;
    let r = post(
        &s,
        Some(&sess.cookie),
        "/add",
        &[
            ("csrf", &sess.csrf),
            ("shortname", "WEB_TYPE"),
            ("description", "Added on the web"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let t = get_type(&s.db, "WEB_TYPE").await.expect("type added");
    assert_eq!((t.enabled, t.project_specific, t.privacypref), (0, 1, 0));

    for (field, value) in [
        ("enabled", "on"),
        ("privacypref", "on"),
        ("privacypref", "off"),
    ] {
        let r = post(
            &s,
            Some(&sess.cookie),
            "/set",
            &[
                ("csrf", &sess.csrf),
                ("shortname", "WEB_TYPE"),
                ("field", field),
                ("value", value),
            ],
        )
        .await;
        assert_eq!(r.status(), 303, "{field}={value}");
    }
    let t = get_type(&s.db, "WEB_TYPE").await.unwrap();
    assert_eq!((t.enabled, t.privacypref), (1, 0));
    let a = audit(&s.db).await;
    let actions: Vec<&str> = a.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["privacypref_off", "privacypref_on", "enable", "add"]
    );
    assert!(a
        .iter()
        .all(|e| e.actor == USER && e.shortname == "WEB_TYPE"));

    // The redirect target shows the outcome and the history.
    let page = client()
        .get(format!("{}/?done=enable&type=WEB_TYPE", s.base))
        .basic_auth(USER, Some(PASS))
        .header("cookie", &sess.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Enabled WEB_TYPE."));
    assert!(page.contains("privacypref_off"));
    assert!(page.contains("id=\"enabled-WEB_TYPE\">Disable<"));
}

#[tokio::test]
async fn ops_web_post_without_or_with_stale_csrf_is_403_and_changes_nothing() {
    let s = start(false).await;
    let sess = open_session(&s).await;
    let other = open_session(&s).await;
    // A token from a server run that has since restarted (new key).
    let old_server = start_on(TestDb::new().await, false).await;
    let old = open_session(&old_server).await;
    let snap = snapshot(&s.db).await;
    let set = |csrf: &'static str| {
        vec![
            ("csrf", csrf),
            ("shortname", "ENROLL"),
            ("field", "enabled"),
            ("value", "on"),
        ]
    };
    let cases: Vec<(Option<&str>, Form)> = vec![
        // No token at all.
        (Some(&sess.cookie), set("")[1..].to_vec()),
        // Empty and garbage tokens.
        (Some(&sess.cookie), set("")),
        (Some(&sess.cookie), set("zz-not-hex")),
        // Right token, no session cookie.
        (
            None,
            vec![
                ("csrf", &sess.csrf),
                ("shortname", "ENROLL"),
                ("field", "enabled"),
                ("value", "on"),
            ],
        ),
        // Another session's token.
        (
            Some(&sess.cookie),
            vec![
                ("csrf", &other.csrf),
                ("shortname", "ENROLL"),
                ("field", "enabled"),
                ("value", "on"),
            ],
        ),
        // Stale token from an earlier server run, with its cookie.
        (
            Some(&old.cookie),
            vec![
                ("csrf", &old.csrf),
                ("shortname", "ENROLL"),
                ("field", "enabled"),
                ("value", "on"),
            ],
        ),
    ];
    for (cookie, form) in &cases {
        let r = post(&s, *cookie, "/set", form).await;
        assert_eq!(r.status(), 403, "{cookie:?} {form:?}");
        assert_eq!(told(r).await, STALE_FORM, "{cookie:?} {form:?}");
        let r = post(
            &s,
            *cookie,
            "/add",
            &[
                ("csrf", form[0].1),
                ("shortname", "SNEAKY"),
                ("description", "x"),
            ],
        )
        .await;
        assert_eq!(r.status(), 403);
        assert_eq!(told(r).await, STALE_FORM, "{cookie:?} /add");
    }
    assert_eq!(
        snapshot(&s.db).await,
        snap,
        "a refused POST changed something"
    );
    // Sanity: the same request with the right token works.
    let r = post(
        &s,
        Some(&sess.cookie),
        "/set",
        &[
            ("csrf", &sess.csrf),
            ("shortname", "ENROLL"),
            ("field", "enabled"),
            ("value", "on"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn ops_web_cross_origin_post_is_refused() {
    let s = start(false).await;
    let sess = open_session(&s).await;
    let snap = snapshot(&s.db).await;
    let r = client()
        .post(format!("{}/set", s.base))
        .basic_auth(USER, Some(PASS))
        .header("cookie", &sess.cookie)
        .header("origin", "http://evil.example")
        .form(&[
            ("csrf", sess.csrf.as_str()),
            ("shortname", "ENROLL"),
            ("field", "enabled"),
            ("value", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(told(r).await, "cross-origin request refused");
    let r = client()
        .post(format!("{}/set", s.base))
        .basic_auth(USER, Some(PASS))
        .header("cookie", &sess.cookie)
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("csrf", sess.csrf.as_str()),
            ("shortname", "ENROLL"),
            ("field", "enabled"),
            ("value", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(told(r).await, "cross-origin request refused");
    assert_eq!(snapshot(&s.db).await, snap);
}

#[tokio::test]
async fn ops_web_script_in_description_is_escaped() {
    let s = start(false).await;
    let ops = ConsentOps::new(s.db.pool());
    ops.add("a", "XSS", "<script>alert('x')</script> & \"quotes\"")
        .await
        .unwrap();
    let sess = open_session(&s).await;
    assert!(!sess.html.contains("<script>"), "unescaped script in page");
    // askama writes numeric entities; accept the named ones too.
    assert!(
        sess.html.contains("&#60;script&#62;alert(") || sess.html.contains("&lt;script&gt;alert("),
        "escaped description missing"
    );
    assert!(sess.html.contains("&#38;") || sess.html.contains("&amp;"));
    assert!(!sess.html.contains("\"quotes\""));
    // Refilled form values after an error are escaped too.
    let r = post(
        &s,
        Some(&sess.cookie),
        "/add",
        &[
            ("csrf", &sess.csrf),
            ("shortname", "bad name"),
            ("description", "\"><script>x</script>"),
        ],
    )
    .await;
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script>"));
    assert!(html.contains("invalid short name"));
    // Reflected query values are not echoed unless they are valid names.
    let page = client()
        .get(format!("{}/?done=added&type=%3Cscript%3E", s.base))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<script>"));
}

#[tokio::test]
async fn ops_web_refusals_are_reported() {
    let s = start(false).await;
    let sess = open_session(&s).await;
    let snap = snapshot(&s.db).await;
    let long = "A".repeat(192);
    let cases: Vec<(&str, Form, u16, String)> = vec![
        (
            "/add",
            vec![("shortname", "ENROLL"), ("description", "dup")],
            409,
            "a consent type named ENROLL already exists".into(),
        ),
        (
            "/add",
            vec![("shortname", "lower"), ("description", "d")],
            400,
            "invalid short name \"lower\": use only capital letters A-Z, digits and _ \
             (for example MY_CONSENT)"
                .into(),
        ),
        (
            "/add",
            vec![("shortname", "HAS SPACE"), ("description", "d")],
            400,
            "invalid short name \"HAS SPACE\": it must not contain spaces".into(),
        ),
        (
            "/add",
            vec![("shortname", ""), ("description", "d")],
            400,
            "invalid short name \"\": it is empty".into(),
        ),
        (
            "/add",
            vec![("shortname", "OK_NAME"), ("description", "  ")],
            400,
            "invalid description: it is empty".into(),
        ),
        (
            "/set",
            vec![("shortname", "NOPE"), ("field", "enabled"), ("value", "on")],
            404,
            "no consent type named \"NOPE\"".into(),
        ),
        (
            "/set",
            vec![
                ("shortname", "ENROLL"),
                ("field", "deleted"),
                ("value", "on"),
            ],
            400,
            "field must be enabled or privacypref".into(),
        ),
        (
            "/set",
            vec![
                ("shortname", "ENROLL"),
                ("field", "enabled"),
                ("value", "maybe"),
            ],
            400,
            "value must be on or off".into(),
        ),
        (
            "/add",
            vec![("shortname", long.as_str()), ("description", "d")],
            400,
            format!("invalid short name \"{long}\": it is longer than 191 characters"),
        ),
    ];
    for (path, fields, want, says) in &cases {
        let mut form = vec![("csrf", sess.csrf.as_str())];
        form.extend(fields.iter().cloned());
        let r = post(&s, Some(&sess.cookie), path, &form).await;
        assert_eq!(r.status().as_u16(), *want, "{path} {fields:?}");
        assert_eq!(&told(r).await, says, "{path} {fields:?}");
    }
    assert_eq!(snapshot(&s.db).await, snap);
}

#[tokio::test]
async fn ops_web_has_no_way_to_delete() {
    let s = start(false).await;
    let sess = open_session(&s).await;
    let snap = snapshot(&s.db).await;
    for path in [
        "/delete",
        "/consent-types/ENROLL/delete",
        "/remove",
        "/set/delete",
        "/add/ENROLL",
    ] {
        let r = post(
            &s,
            Some(&sess.cookie),
            path,
            &[("csrf", &sess.csrf), ("shortname", "ENROLL"), ("id", "1")],
        )
        .await;
        assert_eq!(r.status(), 404, "{path}");
        // Told that no such operation exists, and why.
        let text = told(r).await;
        assert!(
            text.starts_with("no such operation. ") && text.contains("delete"),
            "{path}: {text}"
        );
    }
    for method in ["DELETE", "PUT", "PATCH"] {
        let r = client()
            .request(method.parse().unwrap(), format!("{}/", s.base))
            .basic_auth(USER, Some(PASS))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{method}: {}", r.status());
    }
    // Even a "delete" value smuggled into the set form does nothing.
    let r = post(
        &s,
        Some(&sess.cookie),
        "/set",
        &[
            ("csrf", &sess.csrf),
            ("shortname", "ENROLL"),
            ("field", "enabled"),
            ("value", "delete"),
        ],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(told(r).await, "value must be on or off");
    assert_eq!(snapshot(&s.db).await, snap);
}

#[tokio::test]
async fn ops_web_read_only_has_no_forms_and_refuses_post() {
    let s = start(true).await;
    let r = client()
        .get(format!("{}/", s.base))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("ENROLL") && html.contains("read-only"));
    assert!(html.contains("Why can't I delete consent types?"));
    assert!(!html.contains("<form"), "read-only page has a form");
    assert!(!html.contains("<button"));
    let snap = snapshot(&s.db).await;
    // Even with a valid-looking session there is no way to change anything.
    let cookie = "ops_session=0123456789abcdef0123456789abcdef";
    for (path, form) in [
        (
            "/set",
            vec![
                ("shortname", "ENROLL"),
                ("field", "enabled"),
                ("value", "on"),
            ],
        ),
        ("/add", vec![("shortname", "RO"), ("description", "d")]),
    ] {
        let r = post(&s, Some(cookie), path, &form).await;
        assert_eq!(r.status(), 403, "{path}");
        assert_eq!(
            told(r).await,
            "the ops page is in read-only mode; nothing was changed",
            "{path}"
        );
    }
    assert_eq!(snapshot(&s.db).await, snap);
    // Read-only still needs the login.
    let r = client().get(format!("{}/", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 401);
}
