//! db_dump on a legacy database (created `CHARACTER SET latin1`) whose
//! text BOINC's PHP wrote as raw UTF-8 bytes over a latin1 connection: the
//! files carry that text as correct UTF-8, not double-encoded.

mod common;

use boinc_db::testing::TestDb;
use common::*;
use mysql_async::prelude::*;

#[tokio::test]
async fn php_written_utf8_dumps_as_utf8() {
    let db = TestDb::latin1().await;
    let mut php = db.php_latin1_conn().await;
    // Strings go over the latin1 connection as their UTF-8 bytes: stored
    // unconverted, exactly as PHP stored them.
    add_user(
        &mut php,
        U {
            id: 1,
            name: "Jörg 李",
            country: "Österreich",
            credit: 10.0,
            teamid: 1,
            ..U::default()
        },
    )
    .await;
    add_user(
        &mut php,
        U {
            id: 2,
            name: "Rocket 🚀 ユーザー",
            credit: 5.0,
            ..U::default()
        },
    )
    .await;
    add_user(
        &mut php,
        U {
            id: 3,
            credit: 1.0,
            ..U::default()
        },
    )
    .await;
    // A client that really spoke latin1 stored "Müller" as one byte FC.
    php.exec_drop(
        "UPDATE user SET name = ? WHERE id = 3",
        (b"M\xFCller".to_vec(),),
    )
    .await
    .unwrap();
    php.exec_drop(
        "INSERT INTO team (id, create_time, userid, name, name_lc, url, type, name_html, \
         description, nusers, country, total_credit, expavg_credit, expavg_time) VALUES \
         (1, 1500000001, 1, ?, ?, '', 1, '', '', 1, '', 10, 1, 1700000003)",
        (
            "Team 東京".as_bytes().to_vec(),
            "team 東京".as_bytes().to_vec(),
        ),
    )
    .await
    .unwrap();
    let hex: String = php
        .query_first("SELECT HEX(name) FROM user WHERE id = 1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hex, "4AC3B6726720E69D8E", "stored as PHP stores it");
    drop(php);

    let f = Fixture {
        db,
        dir: tempfile::tempdir().unwrap(),
        now: boinc_db::now(),
        statsexport: 0,
    };
    let spec = f.spec(
        "latin1.xml",
        "<enumeration><table>user</table><filename>user</filename><output><detail/></output></enumeration>\
         <enumeration><table>team</table><filename>team</filename><output/></enumeration>",
        false,
    );
    f.dump(&spec, "<user_country/>").await.expect("dump");
    let text = read_file(&f.stats_dir().join("user"));
    check_xml("user", &text, "users");
    let users = records(&text);
    assert_eq!(users.len(), 3, "{text}");
    assert_eq!(users[&1]["name"], "Jörg 李");
    assert_eq!(users[&1]["country"], "Österreich", "{text}");
    assert_eq!(users[&2]["name"], "Rocket 🚀 ユーザー");
    assert_eq!(users[&3]["name"], "Müller");
    assert!(!text.contains("Ã"), "no double encoding: {text}");
    let text = read_file(&f.stats_dir().join("team"));
    check_xml("team", &text, "teams");
    assert_eq!(records(&text)[&1]["name"], "Team 東京");
}
