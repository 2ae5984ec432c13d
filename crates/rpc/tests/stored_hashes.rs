//! What a stored `user.passwd_hash` lets in, through the real boinc-rpc
//! binary on a real database: bcrypt rows verify by bcrypt, 32-hex md5
//! rows compare byte for byte, and any other stored value (another crypt
//! scheme, a word, 32 characters that are not hex) never matches, not
//! even when the client sends exactly that string. Such a row is said at
//! WARN once per account, without the value.

mod common;

use boinc_db::testing::{insert_account, TestDb};
use common::real::{lines_at, RealServer};
use common::{passwd_hash, tag, HEADER};
use mysql_async::prelude::*;

/// Sent exactly as stored, each of these logged in before.
const UNUSABLE: &[&str] = &[
    "$argon2id$v=19$m=65536,t=4,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
    "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/",
    "$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0",
    "hunter2",
    // 32 characters, not hex: create_account's retry path takes it too.
    "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
    "$2y$31$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbP0ry",
];

fn bad_password() -> String {
    format!(
        "{HEADER}<error>\n    <error_num>-206</error_num>\n    <error_msg>Invalid password</error_msg>\n</error>\n"
    )
}

fn not_unique() -> String {
    format!(
        "{HEADER}<error>\n    <error_num>-137</error_num>\n    <error_msg>Name or email address is not unique</error_msg>\n</error>\n"
    )
}

async fn account_with_hash(c: &mut mysql_async::Conn, n: usize, stored: &str) -> (i64, String) {
    let id = insert_account(c, n, &format!("auth{n:028}")).await;
    c.exec_drop("UPDATE user SET passwd_hash = ? WHERE id = ?", (stored, id))
        .await
        .unwrap();
    (id, format!("u{n}@example.com"))
}

async fn get(client: &reqwest::Client, url: String, params: &[(&str, &str)]) -> String {
    let r = client.get(url).query(params).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test]
async fn only_bcrypt_and_md5_rows_match_and_others_are_warned_once() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    // Exempt: the failures below must not run into the per-IP limit.
    let config = db.write_project(
        dir.path(),
        "<rpc_rate_limit_exempt>127.0.0.1</rpc_rate_limit_exempt>",
        None,
    );
    let mut c = db.conn().await;
    let mut unusable = Vec::new();
    for (i, stored) in UNUSABLE.iter().enumerate() {
        unusable.push((account_with_hash(&mut c, i, stored).await, *stored));
    }
    // Usable rows for contrast: lower- and upper-case md5, bcrypt.
    let md5 = passwd_hash("secret", "u100@example.com");
    let (md5_id, md5_email) = account_with_hash(&mut c, 100, &md5).await;
    let upper = passwd_hash("secret", "u101@example.com").to_uppercase();
    let (upper_id, upper_email) = account_with_hash(&mut c, 101, &upper).await;
    let sent = passwd_hash("secret", "u102@example.com");
    let bcrypt = boinc_db::password::hash_for_storage(&sent).unwrap();
    let (bcrypt_id, bcrypt_email) = account_with_hash(&mut c, 102, &bcrypt).await;

    let mut server = RealServer::start(&config).await;
    let client = reqwest::Client::new();
    let lookup = |email: String, hash: String| {
        let url = server.url("lookup_account.php");
        let client = client.clone();
        async move {
            get(
                &client,
                url,
                &[("email_addr", &email), ("passwd_hash", &hash)],
            )
            .await
        }
    };
    for ((_, email), stored) in &unusable {
        // Twice: the second attempt must not be logged again.
        for _ in 0..2 {
            let body = lookup(email.clone(), stored.to_string()).await;
            assert_eq!(body, bad_password(), "{stored:?} let its own text in");
        }
    }
    // create_account's retry path (same email, the hash sent = stored).
    let ((_, email), stored) = &unusable[4];
    let body = get(
        &client,
        server.url("create_account.php"),
        &[
            ("email_addr", email),
            ("passwd_hash", stored),
            ("user_name", "Someone Else"),
        ],
    )
    .await;
    assert_eq!(body, not_unique(), "the retry path handed out the account");

    // md5 rows: the exact bytes, case included (PHP's == on such strings).
    let auth = |n: usize| format!("auth{n:028}");
    let body = lookup(md5_email.clone(), md5.clone()).await;
    assert_eq!(tag(&body, "authenticator"), Some(auth(100)), "{body}");
    let body = lookup(md5_email.clone(), md5.to_uppercase()).await;
    assert_eq!(body, bad_password());
    let body = lookup(upper_email.clone(), upper.clone()).await;
    assert_eq!(tag(&body, "authenticator"), Some(auth(101)), "{body}");
    let body = lookup(upper_email.clone(), upper.to_lowercase()).await;
    assert_eq!(body, bad_password());
    // bcrypt rows: by bcrypt, never by comparing the text.
    let body = lookup(bcrypt_email.clone(), sent.clone()).await;
    assert_eq!(tag(&body, "authenticator"), Some(auth(102)), "{body}");
    let body = lookup(bcrypt_email.clone(), bcrypt.clone()).await;
    assert_eq!(body, bad_password());

    assert!(server.stop().success());
    let log = server.log();
    let warns = lines_at(&log, "WARN");
    for ((id, _), stored) in &unusable {
        let about: Vec<_> = warns
            .iter()
            .filter(|l| {
                l.contains(&format!("userid={id} ")) || l.ends_with(&format!("userid={id}"))
            })
            .collect();
        assert_eq!(
            about.len(),
            1,
            "account {id} ({stored:?}): {about:?}\n{log}"
        );
        assert!(about[0].contains("can never match"), "{}", about[0]);
    }
    for id in [md5_id, upper_id, bcrypt_id] {
        assert!(
            !warns.iter().any(|l| l.contains(&format!("userid={id}"))),
            "usable account {id} warned about:\n{log}"
        );
    }
    // Never the stored value, nor what was sent.
    for secret in UNUSABLE
        .iter()
        .copied()
        .chain([md5.as_str(), upper.as_str(), bcrypt.as_str()])
    {
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
    }
    assert_eq!(lines_at(&log, "ERROR"), Vec::<&str>::new(), "{log}");
}
