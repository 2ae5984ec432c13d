//! Legacy latin1 databases: each session picks its character set from the
//! database, bytes pass through as BOINC's PHP stored them, and bytes that
//! are not UTF-8 decode as the server's own latin1.

use boinc_db::queries;
use boinc_db::testing::fixtures::new_user;
use boinc_db::testing::TestDb;
use boinc_db::text::charset::{self, Charset};
use mysql_async::prelude::*;

#[tokio::test]
async fn sessions_follow_the_user_tables_character_set() {
    let legacy = TestDb::latin1().await;
    let mut c = legacy.conn().await;
    assert_eq!(
        charset::session_charset(&mut c).await.unwrap(),
        Charset::Latin1
    );
    let modern = TestDb::new().await;
    let mut c = modern.conn().await;
    assert_eq!(
        charset::session_charset(&mut c).await.unwrap(),
        Charset::Utf8mb4
    );
    // Pool connections run the same set-up.
    let pool = legacy.pool();
    let mut c = pool.get_conn().await.unwrap();
    assert_eq!(
        charset::session_charset(&mut c).await.unwrap(),
        Charset::Latin1
    );
    // A database without BOINC's tables yet (db init): utf8mb4.
    let empty = TestDb::empty().await;
    let mut c = empty.conn().await;
    assert_eq!(
        charset::session_charset(&mut c).await.unwrap(),
        Charset::Utf8mb4
    );
}

#[tokio::test]
async fn latin1_decoding_matches_the_servers_conversion() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    for b in 0x80u8..=0xFF {
        let server: String = c
            .exec_first(
                "SELECT CONVERT(UNHEX(?) USING latin1)",
                (format!("{b:02X}"),),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(server, charset::latin1_char(b).to_string(), "byte {b:#04x}");
    }
}

#[tokio::test]
async fn php_style_bytes_round_trip_through_the_models() {
    let db = TestDb::latin1().await;
    let mut php = db.php_latin1_conn().await;
    php.exec_drop(
        "INSERT INTO user SET id = 1, create_time = 1, email_addr = 'a@example.com', \
         name = ?, authenticator = 'k1', country = ?, postal_code = '', total_credit = 0, \
         expavg_credit = 0, expavg_time = 0, teamid = 0, venue = '', url = '', \
         send_email = 1, show_hosts = 1, posts = 0, seti_id = 0, seti_nresults = 0, \
         seti_last_result_time = 0, seti_total_cpu = 0, has_profile = 0, \
         cross_project_id = 'x', passwd_hash = 'x', email_validated = 1, donated = 0",
        ("Jörg 李 🚀".as_bytes().to_vec(), b"\xD6sterreich".to_vec()),
    )
    .await
    .unwrap();
    let mut c = db.conn().await;
    let u = queries::user_by_id(&mut c, 1).await.unwrap().unwrap();
    assert_eq!(u.name(), "Jörg 李 🚀");
    assert_eq!(u.country.as_deref(), Some("Österreich"));
    // Our write of the same text: PHP reads the identical bytes.
    let id = queries::insert_user(
        &mut c,
        &queries::NewUser {
            cross_project_id: "y",
            passwd_hash: "x",
            country: "Österreich",
            ..new_user(2, "b@example.com", "Zoë 王 🎉", "k2")
        },
    )
    .await
    .unwrap();
    let raw: Vec<u8> = php
        .exec_first("SELECT name FROM user WHERE id = ?", (id,))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raw, "Zoë 王 🎉".as_bytes());
    let raw: Vec<u8> = php
        .exec_first("SELECT country FROM user WHERE id = ?", (id,))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raw, "Österreich".as_bytes());
    // Names PHP stored are found by ours (same bytes compared).
    assert!(queries::user_name_taken(&mut c, "Jörg 李 🚀", id)
        .await
        .unwrap());
    assert!(!queries::user_name_taken(&mut c, "Jörg 李", id)
        .await
        .unwrap());
}
