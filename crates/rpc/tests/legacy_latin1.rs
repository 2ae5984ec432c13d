//! A legacy database (created `CHARACTER SET latin1`, as projects set up
//! on MySQL before utf8mb4 are) holding the raw UTF-8 bytes BOINC's PHP
//! wrote over a latin1 connection: the RPCs write and read the same bytes
//! PHP does, and count column sizes in bytes.

mod common;

use boinc_db::testing::TestDb;
use common::*;
use mysql_async::prelude::*;

/// `user.name` as BOINC's PHP read it over a latin1 connection: raw bytes.
async fn php_name(db: &TestDb, email: &str) -> Vec<u8> {
    let mut php = db.php_latin1_conn().await;
    let name: Option<Vec<u8>> = php
        .exec_first("SELECT name FROM user WHERE email_addr = ?", (email,))
        .await
        .unwrap();
    name.expect("user row")
}

/// BOINC's PHP writing `user.<column>` over a latin1 connection.
async fn php_set(db: &TestDb, email: &str, column: &str, value: &[u8]) {
    let mut php = db.php_latin1_conn().await;
    php.exec_drop(
        format!("UPDATE user SET {column} = ? WHERE email_addr = ?"),
        (value.to_vec(), email),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn create_account_with_non_latin_names_reads_back_byte_exact_in_php() {
    let h = Harness::latin1("", None).await;
    let mut c = h.conn().await;
    let charset: String = c
        .query_first(
            "SELECT CHARACTER_SET_NAME FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'user' AND COLUMN_NAME = 'name'",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(charset, "latin1", "the test database is a legacy one");
    for (email, name) in [
        ("jorg@example.com", "Jörg 李"),
        ("rocket@example.com", "Rocket 🚀 ユーザー"),
    ] {
        let body = h.create(email, "secret-pw", name, &[]).await;
        let auth = tag(&body, "authenticator").unwrap_or_else(|| panic!("{name}: {body}"));
        // PHP (latin1 connection) reads exactly the UTF-8 bytes.
        assert_eq!(php_name(&h.db, email).await, name.as_bytes(), "{name}");
        // Stored unconverted: a latin1 column's LENGTH is its byte count.
        let len: i64 = c
            .exec_first(
                "SELECT LENGTH(name) FROM user WHERE email_addr = ?",
                (email,),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(len as usize, name.len());
        // And our own reads give the name back.
        let info = h
            .call("am_get_info.php", &[("account_key", auth.as_str())])
            .await;
        assert!(
            info.contains(&format!(
                "<name>{}</name>",
                boinc_rpc::reply::php_urlencode(name)
            )),
            "{info}"
        );
        let looked_up = h
            .call(
                "lookup_account.php",
                &[
                    ("email_addr", email),
                    ("passwd_hash", &passwd_hash("secret-pw", email)),
                ],
            )
            .await;
        assert_eq!(
            tag(&looked_up, "authenticator").as_deref(),
            Some(auth.as_str())
        );
        // The same name again is taken (compared as PHP compares it).
        let dup = h.create(&format!("x{email}"), "pw-other", name, &[]).await;
        assert_error(&dup, -188);
    }
}

#[tokio::test]
async fn names_php_wrote_are_read_as_utf8_and_stray_latin1_bytes_as_latin1() {
    let h = Harness::latin1("", None).await;
    let auth = h.new_account("php@example.com", "placeholder", &[]).await;
    // PHP over latin1 stored the UTF-8 bytes of "Jörg 李 🚀".
    php_set(&h.db, "php@example.com", "name", "Jörg 李 🚀".as_bytes()).await;
    let info = h
        .call("am_get_info.php", &[("account_key", auth.as_str())])
        .await;
    assert!(
        info.contains("<name>J%C3%B6rg+%E6%9D%8E+%F0%9F%9A%80</name>"),
        "{info}"
    );
    // A client that really talked latin1 stored "Jörg Müller" as F6/FC.
    php_set(&h.db, "php@example.com", "name", b"J\xF6rg M\xFCller \x80").await;
    php_set(&h.db, "php@example.com", "country", b"\xD6sterreich").await;
    let info = h
        .call("am_get_info.php", &[("account_key", auth.as_str())])
        .await;
    assert!(
        info.contains("<name>J%C3%B6rg+M%C3%BCller+%E2%82%AC</name>"),
        "{info}"
    );
    assert!(
        info.contains("<country>%C3%96sterreich</country>"),
        "{info}"
    );
    // lookup by email still finds the account.
    let body = h
        .call("lookup_account.php", &[("email_addr", "php@example.com")])
        .await;
    assert!(body.contains("<success/>"), "{body}");
}

#[tokio::test]
async fn am_set_info_writes_bytes_php_reads_back() {
    let h = Harness::latin1("", None).await;
    let auth = h.new_account("set@example.com", "Before", &[]).await;
    let name = "李小龍 🐉";
    let venue = "home";
    let url = "http://例え.jp/ü";
    let body = h
        .call(
            "am_set_info.php",
            &[
                ("account_key", auth.as_str()),
                ("name", name),
                ("url", url),
                ("postal_code", "Straße 1"),
                ("venue", venue),
            ],
        )
        .await;
    assert!(body.contains("<success/>"), "{body}");
    assert_eq!(php_name(&h.db, "set@example.com").await, name.as_bytes());
    let mut php = h.db.php_latin1_conn().await;
    let (got_url, got_postal): (Vec<u8>, Vec<u8>) = php
        .exec_first(
            "SELECT url, postal_code FROM user WHERE email_addr = ?",
            ("set@example.com",),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got_url, url.as_bytes());
    assert_eq!(got_postal, "Straße 1".as_bytes());
}

#[tokio::test]
async fn column_sizes_count_bytes_on_a_latin1_database() {
    let h = Harness::latin1("", None).await;
    // 63 CJK characters = 189 bytes fit user.name (varchar(191) latin1);
    // 64 = 192 bytes do not, though 64 characters would fit on utf8mb4.
    let fits = "李".repeat(63);
    let too_long = "李".repeat(64);
    h.new_account("fits@example.com", &fits, &[]).await;
    assert_eq!(php_name(&h.db, "fits@example.com").await, fits.as_bytes());
    let body = h
        .create("long@example.com", "pw-long", &too_long, &[])
        .await;
    assert_error(&body, -188);
    assert!(
        body.contains("user_name is too long (192 bytes given, at most 191 bytes)"),
        "{body}"
    );
    assert_eq!(h.user_count().await, 1, "nothing written");

    // am_set_info: refused with the field named, nothing changed.
    let auth = h.new_account("set@example.com", "Short", &[]).await;
    let body = h
        .call(
            "am_set_info.php",
            &[
                ("account_key", auth.as_str()),
                ("name", &too_long),
                ("venue", "work"),
            ],
        )
        .await;
    assert_error(&body, -188);
    assert!(body.contains("name is too long (192 bytes given"), "{body}");
    assert_eq!(php_name(&h.db, "set@example.com").await, b"Short");

    // The same name on a utf8mb4 database is 64 characters: accepted.
    let h = Harness::new("", None).await;
    h.new_account("long@example.com", &too_long, &[]).await;
}

#[tokio::test]
async fn create_account_joins_a_team_php_named_in_utf8() {
    let h = Harness::latin1("", None).await;
    let mut php = h.db.php_latin1_conn().await;
    php.exec_drop(
        "INSERT INTO team (id, create_time, userid, name, name_lc, url, type, name_html, \
         description, nusers, country, total_credit, expavg_credit, expavg_time) VALUES \
         (7, 1, 0, ?, ?, '', 1, '', '', 0, '', 0, 0, 0)",
        (
            "Team 東京 🗼".as_bytes().to_vec(),
            "team 東京 🗼".as_bytes().to_vec(),
        ),
    )
    .await
    .unwrap();
    h.new_account(
        "member@example.com",
        "Mitglied Jörg",
        &[("team_name", "Team 東京 🗼")],
    )
    .await;
    let user = h.user("member@example.com").await.expect("user");
    assert_eq!(user.teamid, 7);
}
