//! The ops page's account pages over HTTP against a real MariaDB: exact
//! find with escaped results, CSRF and confirmation guarding delete and
//! export, read-only mode, and every action in the shown audit.

mod common;

use boinc_db::mysql_async::prelude::*;
use common::{client, csrf_in, post, start, start_on, Server, PASS, USER};

async fn add_user(s: &Server, id: i64, name: &str, email: &str) {
    let mut c = s.db.conn().await;
    c.exec_drop(
        "INSERT INTO user SET id = ?, create_time = 1600000000, email_addr = ?, name = ?, \
         authenticator = ?, country = '', postal_code = '', total_credit = 0, \
         expavg_credit = 0, expavg_time = 0, teamid = 0, venue = '', url = '', send_email = 1, \
         show_hosts = 1, posts = 0, seti_id = 0, seti_nresults = 0, seti_last_result_time = 0, \
         seti_total_cpu = 0, has_profile = 0, cross_project_id = 'x', passwd_hash = 'h', \
         email_validated = 1, donated = 0",
        (id, email, name, format!("auth{id}")),
    )
    .await
    .unwrap();
}

/// What a browser sends when the admin follows a link of this site.
const SAME_ORIGIN_NAVIGATION: &[(&str, &str)] = &[
    ("sec-fetch-site", "same-origin"),
    ("sec-fetch-mode", "navigate"),
    ("sec-fetch-dest", "document"),
    ("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
];

async fn get(s: &Server, path: &str, cookie: Option<&str>) -> (u16, String, Option<String>) {
    get_with(s, path, cookie, SAME_ORIGIN_NAVIGATION).await
}

async fn get_with(
    s: &Server,
    path: &str,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, String, Option<String>) {
    let mut rb = client()
        .get(format!("{}{}", s.base, path))
        .basic_auth(USER, Some(PASS));
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    if let Some(c) = cookie {
        rb = rb.header("cookie", c);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let cookie = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    (status, r.text().await.unwrap(), cookie)
}

async fn user_row(s: &Server, id: i64) -> Option<(String, String)> {
    let mut c = s.db.conn().await;
    c.exec_first(
        "SELECT email_addr, authenticator FROM user WHERE id = ?",
        (id,),
    )
    .await
    .unwrap()
}

async fn actions(s: &Server, id: i64) -> Vec<String> {
    let mut c = s.db.conn().await;
    c.exec(
        "SELECT action FROM account_audit WHERE userid = ? ORDER BY id",
        (id,),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn account_find_is_exact_and_escaped() {
    let s = start(false).await;
    add_user(&s, 5, "<b>Bold</b> & co", "bold@example.org").await;
    let (st, html, _) = get(&s, "/accounts?by=email&q=BOLD%40example.org", None).await;
    assert_eq!(st, 200);
    assert!(html.contains("id=\"result-5\""), "{html}");
    assert!(
        html.contains("&#60;b&#62;Bold&#60;/b&#62; &#38; co")
            || html.contains("&lt;b&gt;Bold&lt;/b&gt; &amp; co"),
        "{html}"
    );
    assert!(!html.contains("<b>Bold</b>"));
    // Look-alikes and partial names find nothing.
    for q in ["bold%40example.org%20", "bold", "%3Cb%3EBold", "%25"] {
        let (_, html, _) = get(&s, &format!("/accounts?by=email&q={q}"), None).await;
        assert!(html.contains("id=\"no-results\""), "{q}");
    }
    let (_, html, _) = get(
        &s,
        "/accounts?by=name&q=%3Cb%3EBold%3C%2Fb%3E%20%26%20co",
        None,
    )
    .await;
    assert!(html.contains("id=\"result-5\""));
    let (_, html, _) = get(&s, "/accounts?by=id&q=5", None).await;
    assert!(html.contains("id=\"result-5\""));
    let (st, _, _) = get(&s, "/accounts?by=id&q=five", None).await;
    assert_eq!(st, 400);
    // Finding is not an action on an account: nothing audited.
    assert!(actions(&s, 5).await.is_empty());
}

#[tokio::test]
async fn account_delete_needs_csrf_and_typed_id_and_is_audited() {
    let s = start(false).await;
    add_user(&s, 8, "Eight", "eight@example.org").await;
    let before = user_row(&s, 8).await;
    let (st, html, cookie) = get(&s, "/account?id=8", None).await;
    assert_eq!(st, 200);
    let cookie = cookie.expect("session cookie");
    let csrf = csrf_in(&html).expect("csrf");

    // No or a stale token: refused, nothing changed.
    for token in ["", "00"] {
        let r = post(
            &s,
            Some(&cookie),
            "/account-delete",
            &[
                ("csrf", token),
                ("id", "8"),
                ("mode", "wipe"),
                ("confirm", "8"),
            ],
        )
        .await;
        assert_eq!(r.status(), 403);
    }
    // Wrong or missing confirmation, bad mode: refused.
    for (mode, confirm) in [("wipe", "9"), ("wipe", ""), ("shred", "8")] {
        let r = post(
            &s,
            Some(&cookie),
            "/account-delete",
            &[
                ("csrf", &csrf),
                ("id", "8"),
                ("mode", mode),
                ("confirm", confirm),
            ],
        )
        .await;
        assert_eq!(r.status(), 400, "{mode} {confirm}");
    }
    assert_eq!(user_row(&s, 8).await, before);
    // Export without a token: refused.
    let r = post(&s, Some(&cookie), "/account-export", &[("id", "8")]).await;
    assert_eq!(r.status(), 403);

    let r = post(
        &s,
        Some(&cookie),
        "/account-export",
        &[("csrf", &csrf), ("id", "8")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"account-8.json\""
    );
    let doc: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(doc["account"]["id"], 8);

    let r = post(
        &s,
        Some(&cookie),
        "/account-delete",
        &[
            ("csrf", &csrf),
            ("id", "8"),
            ("mode", "wipe"),
            ("confirm", " 8 "),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "account?id=8&done=wipe");
    assert_eq!(user_row(&s, 8).await, None);
    let (st, html, _) = get(&s, "/account?id=8&done=wipe", Some(&cookie)).await;
    assert_eq!(st, 200);
    assert!(html.contains("Account deleted (wiped)") && html.contains("id=\"gone\""));
    // The trail survives the account and is shown.
    assert!(
        html.contains("<td class=\"action\">delete</td><td class=\"mode\">wipe</td>"),
        "{html}"
    );
    let a = actions(&s, 8).await;
    // The first view, three refused deletes (each shows the page again), export, delete.
    assert_eq!(a, ["view", "view", "view", "view", "export", "delete"]);
    let (_, html, _) = get(&s, "/accounts", None).await;
    assert!(html.contains(">wipe<"), "recent actions list: {html}");
}

#[tokio::test]
async fn account_pages_read_only_show_no_forms_and_refuse_posts() {
    let db = boinc_db::testing::TestDb::new().await;
    let s = start_on(db, true).await;
    add_user(&s, 3, "Three", "three@example.org").await;
    let (st, html, cookie) = get(&s, "/account?id=3", None).await;
    assert_eq!(st, 200);
    assert!(!html.contains("delete-form") && !html.contains("export-form"));
    let r = post(
        &s,
        cookie.as_deref(),
        "/account-delete",
        &[("id", "3"), ("mode", "wipe"), ("confirm", "3")],
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(user_row(&s, 3).await.is_some());
}

/// Only the admin opening the page counts as a view: an image tag, a frame
/// or a script on another site (the browser sends the saved login along)
/// writes nothing into the person's audit trail and sees nothing of them.
#[tokio::test]
async fn only_a_page_view_of_this_site_is_audited_as_a_view() {
    let s = start(false).await;
    add_user(&s, 21, "Private Person", "private@example.org").await;
    let shown =
        |html: &str| html.contains("Private Person") || html.contains("private@example.org");
    let fm = |site: &'static str, mode: &'static str, dest: &'static str| {
        vec![
            ("sec-fetch-site", site),
            ("sec-fetch-mode", mode),
            ("sec-fetch-dest", dest),
        ]
    };
    // Subresources, from anywhere (also this site: a forum post's [img]).
    for h in [
        fm("cross-site", "no-cors", "image"),
        fm("same-origin", "no-cors", "image"),
        fm("cross-site", "navigate", "iframe"),
        fm("cross-site", "no-cors", "script"),
        fm("same-site", "cors", "empty"),
        vec![("accept", "image/avif,image/webp,*/*")],
        vec![],
    ] {
        let (st, html, _) = get_with(&s, "/account?id=21", None, &h).await;
        assert_eq!(st, 403, "{h:?}");
        assert!(!shown(&html), "{h:?}: {html}");
        assert_eq!(
            html,
            "an account is shown only as a page of this site (not an image, frame or script)\n"
        );
    }
    assert_eq!(actions(&s, 21).await, Vec::<String>::new());
    // Another site's link: a page with a link of ours, nothing shown.
    let mut nav = fm("cross-site", "navigate", "document");
    nav.push(("accept", "text/html"));
    for h in [nav.clone(), vec![("accept", "text/html")]] {
        let (st, html, cookie) = get_with(&s, "/account?id=21", None, &h).await;
        assert_eq!(st, 200, "{h:?}");
        assert!(!shown(&html), "{h:?}: {html}");
        assert!(html.contains("id=\"open-account\"") && html.contains("href=\"account?id=21\""));
        assert!(cookie.is_some(), "the link page starts a session");
    }
    assert_eq!(actions(&s, 21).await, Vec::<String>::new());
    // The admin's own navigation: shown and audited, each time.
    let (st, html, cookie) = get(&s, "/account?id=21", None).await;
    assert_eq!(st, 200);
    assert!(shown(&html), "{html}");
    let typed = [
        ("sec-fetch-site", "none"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-dest", "document"),
    ];
    let (st, html, _) = get_with(&s, "/account?id=21", None, &typed).await;
    assert_eq!(st, 200);
    assert!(shown(&html));
    // No Fetch Metadata (plain http): the SameSite=Strict session cookie
    // and a request for HTML make it a view; the cookie alone does not.
    let cookie = cookie.expect("session cookie");
    let (st, html, _) = get_with(
        &s,
        "/account?id=21",
        Some(&cookie),
        &[("accept", "text/html")],
    )
    .await;
    assert_eq!(st, 200);
    assert!(shown(&html));
    let (st, _, _) = get_with(
        &s,
        "/account?id=21",
        Some(&cookie),
        &[("accept", "image/*")],
    )
    .await;
    assert_eq!(st, 403);
    // Metadata saying cross-site wins over a cookie.
    let (st, html, _) = get_with(&s, "/account?id=21", Some(&cookie), &nav).await;
    assert_eq!(st, 200);
    assert!(!shown(&html));
    assert_eq!(actions(&s, 21).await, ["view", "view", "view"]);
}
