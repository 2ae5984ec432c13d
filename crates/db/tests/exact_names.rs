//! Names and addresses select rows exactly, whatever the column's
//! collation considers equal; the length table matches the live schema.

use boinc_db::consent::types::{self as consent_types, NewAudit};
use boinc_db::mysql_async::prelude::*;
use boinc_db::mysql_async::TxOpts;
use boinc_db::queries::{self, NewUser};
use boinc_db::testing::fixtures::new_user;
use boinc_db::testing::{look_alikes, TestDb, NAME_COLLATIONS};
use boinc_db::text::columns::{self, Unit};

#[tokio::test]
async fn column_limits_match_the_schema() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    for col in columns::ALL {
        let row: Option<(String, Option<i64>)> = c
            .exec_first(
                "SELECT DATA_TYPE, CHARACTER_MAXIMUM_LENGTH FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?",
                (col.table, col.column),
            )
            .await
            .unwrap();
        let (ty, max) = row.unwrap_or_else(|| panic!("{}.{} missing", col.table, col.column));
        let want_ty = match col.unit {
            Unit::Chars => "varchar",
            Unit::Bytes => "blob",
        };
        assert_eq!(ty, want_ty, "{}.{}", col.table, col.column);
        assert_eq!(
            max,
            Some(col.max as i64),
            "{}.{}: schema and boinc_db::text::columns disagree",
            col.table,
            col.column
        );
    }
}

#[tokio::test]
async fn consent_type_lookups_are_exact_under_every_collation() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    for name in ["ENROLL", "STATSEXPORT"] {
        let t = queries::consent_type_by_name(&mut c, name)
            .await
            .unwrap()
            .unwrap();
        consent_types::insert_audit(
            &mut c,
            &NewAudit {
                change_time: 1,
                actor: "t",
                consent_type_id: t.id,
                shortname: name,
                action: "enable",
                old_value: "0",
                new_value: "1",
            },
        )
        .await
        .unwrap();
    }
    for coll in NAME_COLLATIONS {
        db.collate_names(coll).await;
        for name in ["ENROLL", "STATSEXPORT"] {
            let t = queries::consent_type_by_name(&mut c, name)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{coll}: {name} not found"));
            assert_eq!(t.shortname, name);
            assert_eq!(
                consent_types::audit_history(&mut c, Some(name), 10)
                    .await
                    .unwrap()
                    .len(),
                1
            );
            for probe in look_alikes(name) {
                let found = queries::consent_type_by_name(&mut c, &probe).await.unwrap();
                assert!(found.is_none(), "{coll}: {probe:?} -> {found:?}");
                let mut tx = c.start_transaction(TxOpts::default()).await.unwrap();
                let locked = consent_types::by_name_for_update(&mut tx, &probe)
                    .await
                    .unwrap();
                assert!(locked.is_none(), "{coll}: {probe:?} -> {locked:?}");
                tx.rollback().await.unwrap();
                let audit = consent_types::audit_history(&mut c, Some(&probe), 10)
                    .await
                    .unwrap();
                assert!(audit.is_empty(), "{coll}: {probe:?} -> {audit:?}");
            }
        }
    }
}

#[tokio::test]
async fn email_and_key_lookups_are_exact_under_every_collation() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    let auth = "0123456789abcdef0123456789abcdef";
    let id = queries::insert_user(
        &mut c,
        &NewUser {
            cross_project_id: "c",
            ..new_user(1, "nk@x.org", "Owner", auth)
        },
    )
    .await
    .unwrap();
    c.exec_drop(
        "UPDATE user SET previous_email_addr = 'old@x.org' WHERE id = ?",
        (id,),
    )
    .await
    .unwrap();
    for coll in NAME_COLLATIONS {
        db.collate_names(coll).await;
        // ASCII case is ignored (as create_account lower-cases), nothing else.
        for same in ["nk@x.org", "NK@X.ORG", "Nk@x.Org"] {
            let u = queries::user_by_email(&mut c, same).await.unwrap();
            assert_eq!(u.map(|u| u.id), Some(id), "{coll}: {same}");
        }
        let u = queries::user_by_previous_email(&mut c, "OLD@x.org")
            .await
            .unwrap();
        assert_eq!(u.map(|u| u.id), Some(id), "{coll}");
        let mut probes = look_alikes("nk@x.org");
        // The Kelvin sign lower-cases to `k` under Unicode rules.
        probes.push("n\u{212a}@x.org".into());
        probes.push("N\u{212a}@X.ORG".into());
        for probe in &probes {
            let u = queries::user_by_email(&mut c, probe).await.unwrap();
            assert!(u.is_none(), "{coll}: {probe:?} selected account {id}");
        }
        for probe in look_alikes("old@x.org") {
            let u = queries::user_by_previous_email(&mut c, &probe)
                .await
                .unwrap();
            assert!(u.is_none(), "{coll}: previous {probe:?}");
        }
        assert!(queries::user_by_previous_email(&mut c, "")
            .await
            .unwrap()
            .is_none());
    }
    let u = queries::user_by_authenticator(&mut c, auth).await.unwrap();
    assert_eq!(u.map(|u| u.id), Some(id));
    for probe in [
        auth.to_ascii_uppercase(),
        format!("{auth} "),
        format!("{auth}\u{200b}"),
    ] {
        let u = queries::user_by_authenticator(&mut c, &probe)
            .await
            .unwrap();
        assert!(u.is_none(), "{probe:?}");
    }
}

/// Without the unique index on the key (older schemas), collation-equal
/// keys can both be stored: a case or trailing-space variant stored first
/// must not hide the account whose key was sent.
#[tokio::test]
async fn key_variants_stored_earlier_do_not_hide_the_exact_key() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    c.query_drop("ALTER TABLE user DROP INDEX authenticator")
        .await
        .unwrap();
    c.query_drop("ALTER TABLE user ADD INDEX authenticator (authenticator)")
        .await
        .unwrap();
    let key = "0123456789abcdef0123456789ABCDEF";
    let variants = [
        key.to_ascii_lowercase(),
        key.to_ascii_uppercase(),
        format!("{key} "),
        format!("{key}  "),
    ];
    let mut ids = Vec::new();
    for (i, k) in variants.iter().chain([&key.to_owned()]).enumerate() {
        let email = format!("v{i}@x.org");
        ids.push(
            queries::insert_user(
                &mut c,
                &NewUser {
                    cross_project_id: "c",
                    ..new_user(1, &email, &format!("Variant {i}"), k)
                },
            )
            .await
            .unwrap(),
        );
    }
    for coll in NAME_COLLATIONS {
        c.query_drop(format!(
            "ALTER TABLE user MODIFY authenticator varchar(191) \
             CHARACTER SET utf8mb4 COLLATE {coll}"
        ))
        .await
        .unwrap();
        // Each stored key finds its own account, the exact key included
        // (stored last, behind four collation-equal variants).
        for (k, id) in variants.iter().chain([&key.to_owned()]).zip(&ids) {
            let u = queries::user_by_authenticator(&mut c, k).await.unwrap();
            assert_eq!(u.map(|u| u.id), Some(*id), "{coll}: {k:?}");
        }
        let u = queries::user_by_authenticator(&mut c, &format!("{key}   "))
            .await
            .unwrap();
        assert!(u.is_none(), "{coll}: a variant no one has");
    }
}
