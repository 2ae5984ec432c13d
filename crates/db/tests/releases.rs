//! The schema of every upstream server release since consent existed
//! (`testing::releases`), in utf8mb4 and latin1 tables: the shape is read
//! right, and `db upgrade` adds our objects, leaves the release's own as
//! they are (a release before 1.6 may hold duplicate user names) and is
//! idempotent. The binaries on these databases: tests/tests/releases.rs.

use boinc_db::schema;
use boinc_db::schema::shape::{HostDetails, Shape};
use boinc_db::testing::releases::Release;
use boinc_db::testing::TestDb;
use boinc_db::text::charset::Charset;
use mysql_async::prelude::*;

async fn check(release: Release, cs: Charset) {
    let db = TestDb::release(release, cs).await;
    let mut c = db.conn().await;
    // Two accounts of the same name, as releases before 1.6 allow.
    let dup_name = !release.has_host_misc();
    for (i, name) in [(1, "Twin"), (2, if dup_name { "Twin" } else { "Other" })] {
        c.exec_drop(
            "INSERT INTO user (create_time, email_addr, name, authenticator, total_credit, \
             expavg_credit, expavg_time, teamid, venue, send_email, show_hosts, posts, seti_id, \
             seti_nresults, seti_last_result_time, seti_total_cpu, has_profile, cross_project_id, \
             passwd_hash, email_validated, donated) \
             VALUES (1, ?, ?, ?, 0, 0, 0, 0, '', 1, 1, 0, 0, 0, 0, 0, 0, 'x', 'h', 0, 0)",
            (format!("twin{i}@example.com"), name, format!("auth{i}")),
        )
        .await
        .unwrap();
    }

    let shape = Shape::probe(&mut c).await.unwrap();
    let what = format!("{} {cs:?}", release.name());
    assert_eq!(
        shape.host_details(),
        if release.has_host_misc() {
            HostDetails::Misc
        } else {
            HostDetails::Serialnum
        },
        "{what}"
    );
    assert_eq!(shape.transactional("team"), !release.myisam(), "{what}");
    assert_eq!(shape.transactional("post"), !release.myisam(), "{what}");
    assert!(shape.transactional("user"), "{what}");
    assert!(shape.has_table("consent_type") && !shape.has_table("latest_consent"));
    assert_eq!(
        shape.release(),
        match release {
            Release::R1_0_4 | Release::R1_2_1 =>
                "1.0 to 1.2 (host.serialnum, MyISAM team and forum tables)",
            Release::R1_3_0 | Release::R1_4_7 => "1.3 to 1.4 (host.serialnum)",
            Release::R1_6_2 | Release::Master => "1.6 or later",
        },
        "{what}"
    );

    let report = schema::upgrade(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(report.release, shape.release());
    assert!(!report.needs_attention(), "{what}: {:?}", report.warnings());
    // Our objects are there.
    let applied = report.applied.join(", ");
    for ours in [
        "consent_type consent_name_unique",
        "consent_type consent_type_no_delete",
    ] {
        assert!(
            report.applied.iter().any(|a| a == ours),
            "{what}: {applied}"
        );
    }
    // user.name: unique from 1.6 on (present already); before, the
    // release's plain index stays and the duplicates with it.
    let unique_name: Option<i64> = c
        .query_first(
            "SELECT MIN(NON_UNIQUE) FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'user' AND COLUMN_NAME = 'name'",
        )
        .await
        .unwrap();
    if release.has_host_misc() {
        assert_eq!(unique_name, Some(0), "{what}");
        assert!(report.kept_release_indexes.is_empty(), "{what}");
    } else {
        assert_eq!(unique_name, Some(1), "{what}");
        assert_eq!(report.kept_release_indexes, vec!["user name"], "{what}");
    }
    // The release's engines and columns are left alone.
    let engine: String = c
        .query_first(
            "SELECT ENGINE FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'team'",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(engine, if release.myisam() { "MyISAM" } else { "InnoDB" });
    let after = Shape::probe(&mut c).await.unwrap();
    assert_eq!(after.host_details(), shape.host_details(), "{what}");
    // The tie-safe view replaced the release's.
    let view: String = c
        .query_first(
            "SELECT VIEW_DEFINITION FROM information_schema.VIEWS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'latest_consent'",
        )
        .await
        .unwrap()
        .unwrap();
    assert!(view.contains("`id`"), "{what}: {view}");

    // Idempotent.
    let again = schema::upgrade(&mut c).await.unwrap();
    assert!(again.applied.is_empty(), "{what}: {:?}", again.applied);
    assert_eq!(again.kept_release_indexes, report.kept_release_indexes);
    c.disconnect().await.ok();
}

macro_rules! matrix {
    ($($name:ident: $r:ident, $cs:ident;)*) => {$(
        #[tokio::test]
        async fn $name() {
            check(Release::$r, Charset::$cs).await;
        }
    )*};
}

matrix! {
    r1_0_4_utf8mb4: R1_0_4, Utf8mb4;
    r1_0_4_latin1: R1_0_4, Latin1;
    r1_2_1_utf8mb4: R1_2_1, Utf8mb4;
    r1_2_1_latin1: R1_2_1, Latin1;
    r1_3_0_utf8mb4: R1_3_0, Utf8mb4;
    r1_3_0_latin1: R1_3_0, Latin1;
    r1_4_7_utf8mb4: R1_4_7, Utf8mb4;
    r1_4_7_latin1: R1_4_7, Latin1;
    r1_6_2_utf8mb4: R1_6_2, Utf8mb4;
    r1_6_2_latin1: R1_6_2, Latin1;
    master_utf8mb4: Master, Utf8mb4;
    master_latin1: Master, Latin1;
}
