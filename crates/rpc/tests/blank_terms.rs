//! Issue 9 item 9, against real MariaDB: create_account records ENROLL
//! consent only when get_project_config offers terms (the same rule:
//! ENROLL enabled and a terms file with text after trimming).

mod common;

use common::*;
use mysql_async::prelude::*;

async fn terms_tables(h: &Harness) -> (i64, i64, i64) {
    let mut c = h.conn().await;
    c.query_first(
        "SELECT (SELECT COUNT(*) FROM consent), (SELECT COUNT(*) FROM terms_version), \
         (SELECT COUNT(*) FROM consent_terms)",
    )
    .await
    .unwrap()
    .unwrap()
}

#[tokio::test]
async fn blank_terms_file_offers_nothing_and_records_no_enroll() {
    for blank in ["", " ", "\n\n", " \t\r\n \u{b}\0 "] {
        let h = Harness::new("", Some(blank)).await;
        h.set_type_enabled("ENROLL", true).await;
        let cfg = h.get("get_project_config.php").await;
        assert!(!cfg.contains("terms_of_use"), "{blank:?}: {cfg}");
        let body = h
            .create(
                "blank@x.org",
                "secret",
                "Blank",
                &[("consent_flag", "1"), ("source", "client")],
            )
            .await;
        assert!(tag(&body, "authenticator").is_some(), "{body}");
        let id = h.user("blank@x.org").await.unwrap().id;
        assert!(h.consents(id).await.is_empty(), "{blank:?}");
        assert_eq!(terms_tables(&h).await, (0, 0, 0), "{blank:?}");
        drop(h);
    }
}

#[tokio::test]
async fn terms_file_blanked_while_running_stops_enroll_rows() {
    let h = Harness::consent_project("").await;
    let body = h
        .create(
            "before@x.org",
            "secret",
            "Before",
            &[("consent_flag", "1"), ("source", "c")],
        )
        .await;
    assert!(tag(&body, "authenticator").is_some(), "{body}");
    assert_eq!(terms_tables(&h).await, (1, 1, 1));
    terms_shown(&h, true).await;
    std::fs::write(h.dir.path().join("terms_of_use.txt"), " \n\t\n").unwrap();
    terms_shown(&h, false).await;
    let body = h
        .create(
            "after@x.org",
            "secret",
            "After",
            &[("consent_flag", "1"), ("source", "c")],
        )
        .await;
    assert!(tag(&body, "authenticator").is_some(), "{body}");
    assert_eq!(terms_tables(&h).await, (1, 1, 1));
}

/// Wait (up to 5 s) until get_project_config does (not) show terms.
async fn terms_shown(h: &Harness, want: bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while h
        .get("get_project_config.php")
        .await
        .contains("terms_of_use")
        != want
    {
        assert!(
            std::time::Instant::now() < deadline,
            "terms shown != {want}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
