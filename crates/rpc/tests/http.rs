//! HTTP surface: paths with and without .php (also below master_url's
//! path), unknown paths, methods, headers.

mod common;

use common::*;

#[tokio::test]
async fn paths_methods_and_headers() {
    let h = Harness::new("", None).await;
    // master_url is http://127.0.0.1/test/: served at the root and below /test/.
    for path in [
        "get_project_config.php",
        "get_project_config",
        "test/get_project_config.php",
        "test/get_project_config",
    ] {
        let body = h.get(path).await;
        assert!(body.contains("<project_config>"), "{path}: {body}");
    }
    for path in [
        "nope.php",
        "create_account.php/x",
        "other/create_account.php",
        "",
    ] {
        let r = h.client.get(h.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    let r = h
        .client
        .put(h.url("create_account.php"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers().get("allow").unwrap(), "GET, HEAD, POST");
    let body = r.text().await.unwrap();
    assert_error(&body, -210);
    let r = h
        .client
        .get(h.url("lookup_account.php"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("content-type").unwrap(),
        "text/xml;charset=UTF-8"
    );
    assert_eq!(
        r.text().await.unwrap(),
        format!(
            "{HEADER}<error>\n    <error_num>-1</error_num>\n    <error_msg>missing or bad parameter: email_addr</error_msg>\n</error>\n"
        )
    );
}

/// Each junk request gets the refusal its junk calls for (the SQL-looking
/// key and address find nothing: -136, as any unknown one), never a 500.
#[tokio::test]
async fn junk_input_never_breaks_the_server() {
    let h = Harness::new("", None).await;
    let error = |num: i32, msg: &str| {
        format!(
            "{HEADER}<error>\n    <error_num>{num}</error_num>\n    <error_msg>{msg}</error_msg>\n</error>\n"
        )
    };
    for (q, num, msg) in [
        (
            "create_account.php?email_addr=%FF%FE&passwd_hash=%00&user_name=%C3",
            -1,
            "email_addr is not valid UTF-8",
        ),
        (
            "create_account.php?email_addr&passwd_hash&user_name",
            -1,
            "missing or bad parameter: email_addr",
        ),
        (
            "am_set_info.php?account_key=%27%20OR%201=1%20--",
            -136,
            "Not found",
        ),
        (
            "lookup_account.php?email_addr=%27%20OR%20%271%27=%271",
            -136,
            "Not found",
        ),
        (
            "am_get_info.php?account_key[]=x",
            -1,
            "missing or bad parameter: account_key",
        ),
        (
            "create_account.php?%%%%=&&&",
            -1,
            "missing or bad parameter: email_addr",
        ),
    ] {
        assert_eq!(h.get(q).await, error(num, msg), "{q}");
    }
    let r = h
        .client
        .post(h.url("am_set_info.php"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 2 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        error(
            -1,
            "request body too large (at most 1048576 bytes) or unreadable"
        )
    );
    assert!(h
        .get("get_project_config.php")
        .await
        .contains("<project_config>"));
}
