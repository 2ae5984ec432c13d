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

async fn get(s: &Server, path: &str, cookie: Option<&str>) -> (u16, String, Option<String>) {
    let mut rb = client()
        .get(format!("{}{}", s.base, path))
        .basic_auth(USER, Some(PASS));
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
