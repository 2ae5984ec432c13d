//! Issue 9 items 10-13 against a real MariaDB: team founders, optout
//! lists, one point in time per dump, huge user ids, and the exact
//! STATSEXPORT lookup.

mod common;

use std::collections::BTreeMap;

use boinc_db::ProjectConfig;
use boinc_db_dump::snapshot::Snapshot;
use boinc_db_dump::{DumpSpec, Options};
use common::*;
use mysql_async::prelude::*;

fn teams(f: &Fixture, name: &str) -> BTreeMap<i64, BTreeMap<String, String>> {
    let text = read_file(&f.stats_dir().join(name));
    check_xml(name, &text, "teams");
    records(&text)
}

const TEAMS: &str = "<enumeration><table>team</table><filename>team</filename>\
    <output><compression>gzip</compression></output></enumeration>\
    <enumeration><table>team</table><filename>team_detail</filename>\
    <output><detail/></output></enumeration>";

#[tokio::test]
async fn team_founder_named_only_when_exported() {
    let f = fixture().await;
    let mut c = f.db.conn().await;
    // Team 1's founder becomes user 2, who withdrew; team 3's founder
    // (999) has no user row and so no consent.
    c.query_drop("UPDATE team SET userid = 2 WHERE id = 1")
        .await
        .unwrap();
    let spec = f.spec("teams.xml", TEAMS, false);
    f.dump(&spec, "").await.unwrap();
    for file in ["team.gz", "team_detail"] {
        let t = teams(&f, file);
        assert_eq!(t.keys().copied().collect::<Vec<_>>(), vec![1, 3], "{file}");
        for id in [1, 3] {
            assert!(
                !t[&id].contains_key("userid"),
                "{file} team {id}: {:?}",
                t[&id]
            );
            assert!(!t[&id].contains_key("founder_name"), "{file} team {id}");
        }
        let text = read_file(&f.stats_dir().join(file));
        assert!(!text.contains("user 2"), "{file} names the founder");
    }

    // A consenting founder (user 5, by a same-second tie) is named.
    c.query_drop("UPDATE team SET userid = 5 WHERE id = 1")
        .await
        .unwrap();
    f.dump(&spec, "").await.unwrap();
    for file in ["team.gz", "team_detail"] {
        let t = teams(&f, file);
        assert_eq!(t[&1]["userid"], "5", "{file}");
        assert_eq!(t[&1]["founder_name"], "user 5", "{file}");
    }

    // Without the consent filter, upstream's record: userid always,
    // founder_name when the founder's row exists.
    c.query_drop("UPDATE team SET userid = 2 WHERE id = 1")
        .await
        .unwrap();
    f.set_statsexport(false).await;
    f.dump(&spec, "").await.unwrap();
    let t = teams(&f, "team.gz");
    assert_eq!(t[&1]["userid"], "2");
    assert_eq!(t[&1]["founder_name"], "user 2");
    assert_eq!(t[&3]["userid"], "999");
    assert!(!t[&3].contains_key("founder_name"));
}

#[tokio::test]
async fn optout_lists_only_exportable_users_and_hosts_of_visible_owners() {
    let f = fixture().await;
    let mut c = f.db.conn().await;
    let se = f.statsexport;
    let old = f.now - 400 * DAY;
    // 12: never exported (no credit), withdrew. 13: hides hosts, withdrew.
    // 14: deleted account, withdrew.
    add_user(
        &mut c,
        U {
            id: 12,
            ..U::default()
        },
    )
    .await;
    add_user(
        &mut c,
        U {
            id: 13,
            credit: 20.0,
            show_hosts: 0,
            ..U::default()
        },
    )
    .await;
    add_user(
        &mut c,
        U {
            id: 14,
            credit: 30.0,
            auth: "deleted_1700000014",
            ..U::default()
        },
    )
    .await;
    for id in [12, 13, 14] {
        consent(&mut c, id, se, old, 1).await;
        consent(&mut c, id, se, f.now - 3 * DAY, 0).await;
    }
    add_host(&mut c, 115, 13, 5.0, Some("box15"), "").await;
    add_host(&mut c, 116, 12, 5.0, Some("box16"), "").await;
    let spec = f.standard_spec();
    f.dump(&spec, "").await.unwrap();
    assert_eq!(ids_of(&f, "user_optout.gz", "users_optout"), vec![2, 4, 13]);
    assert_eq!(
        ids_of(&f, "host_optout.gz", "hosts_optout"),
        vec![104, 110],
        "no host of a hidden owner (115), of a never-exported user (116), \
         or without credit (114)"
    );
    let text = read_file(&f.stats_dir().join("user_optout.gz"));
    for id in [12, 14] {
        assert!(
            !text.contains(&expected_cpid(id)),
            "user {id}'s cpid listed"
        );
    }
    let t = std::fs::read_to_string(f.stats_dir().join("tables.xml")).unwrap();
    assert!(
        t.contains("<nusers_optout_total>3</nusers_optout_total>"),
        "{t}"
    );
    assert!(
        t.contains("<nhosts_optout_total>2</nhosts_optout_total>"),
        "{t}"
    );
}

/// The type is found by its exact name only: a look-alike under the
/// column's collation (trailing space, case, accents) is not STATSEXPORT,
/// so its consent rows never decide the export.
#[tokio::test]
async fn statsexport_lookup_is_exact() {
    // Under every collation a project's consent_type.shortname may have.
    for collation in boinc_db::testing::NAME_COLLATIONS {
        let f = fixture().await;
        f.db.collate_names(collation).await;
        let spec = f.standard_spec();
        let mut c = f.db.conn().await;
        for look_alike in [
            "STATSEXPORT ",
            "statsexport",
            "STATSEXPÖRT",
            "STATSEXPORT\u{200b}",
        ] {
            c.exec_drop(
                "UPDATE consent_type SET shortname = ?, enabled = 1 WHERE id = ?",
                (look_alike, f.statsexport),
            )
            .await
            .unwrap();
            let s = f.dump(&spec, "").await.unwrap();
            assert!(
                !s.consent_filter,
                "{collation}: {look_alike:?} taken for STATSEXPORT"
            );
            assert_eq!(
                ids_of(&f, "user.gz", "users"),
                vec![1, 2, 3, 4, 5, 9, 10, 11],
                "{collation}: {look_alike:?}"
            );
            assert!(ids_of(&f, "user_optout.gz", "users_optout").is_empty());
        }
        c.exec_drop(
            "UPDATE consent_type SET shortname = 'STATSEXPORT' WHERE id = ?",
            (f.statsexport,),
        )
        .await
        .unwrap();
        let s = f.dump(&spec, "").await.unwrap();
        assert!(s.consent_filter, "{collation}");
        assert_eq!(ids_of(&f, "user.gz", "users"), vec![1, 5, 10]);
    }
}

/// A consenting user with id 2,000,000,000 is exported like any other
/// (the owner map is sparse; its size is checked in owners.rs and the
/// peak RSS in PERFORMANCE.md).
#[tokio::test]
async fn huge_user_ids_are_exported() {
    let f = fixture().await;
    let mut c = f.db.conn().await;
    let big = 2_000_000_000;
    add_user(
        &mut c,
        U {
            id: big,
            credit: 7.0,
            teamid: 1,
            ..U::default()
        },
    )
    .await;
    consent(&mut c, big, f.statsexport, f.now - DAY, 1).await;
    add_host(&mut c, 117, big, 3.0, Some("bigbox"), "").await;
    let spec = f.spec(
        "big.xml",
        "<enumeration><table>user</table><filename>user</filename><output/></enumeration>\
         <enumeration><table>host</table><filename>host</filename><output><detail/></output></enumeration>\
         <enumeration><table>team</table><filename>team</filename><output><detail/></output></enumeration>",
        false,
    );
    f.dump(&spec, "").await.unwrap();
    assert_eq!(ids_of(&f, "user", "users"), vec![1, 5, 10, big]);
    let hosts = records(&read_file(&f.stats_dir().join("host")));
    assert_eq!(hosts[&117]["userid"], big.to_string());
    let team = read_file(&f.stats_dir().join("team"));
    assert!(team.contains(&format!(" <id>{big}</id>")), "{team}");
}

/// Every connection of a snapshot sees the same data while another client
/// commits. The writer commits in bursts (back to back, ~30 ms) with short
/// pauses (10 ms): a snapshot taken during a burst would let connections
/// disagree, and the pauses let a correct `Snapshot::open` align all its
/// connections, so every snapshot here must have all six (no fallback to
/// one connection, which would agree trivially).
#[tokio::test]
async fn snapshot_connections_share_one_point_in_time() {
    const CONNECTIONS: usize = 6;
    let f = fixture().await;
    let mut c = f.db.conn().await;
    c.query_drop("CREATE TABLE tick (id INT AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB")
        .await
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut w = f.db.conn().await;
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 200_000 {
                let burst = std::time::Instant::now();
                while burst.elapsed() < std::time::Duration::from_millis(30) {
                    w.query_drop("INSERT INTO tick () VALUES ()").await.unwrap();
                    n += 1;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            n
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut attempts = Vec::new();
    for _ in 0..30 {
        let snap = Snapshot::open(&f.db.settings, CONNECTIONS).await.unwrap();
        assert_eq!(
            (snap.connections, snap.fallback.as_deref()),
            (CONNECTIONS, None),
            "the snapshot fell back to one connection"
        );
        attempts.push(snap.attempts);
        let mut leases = Vec::new();
        for _ in 0..snap.connections {
            leases.push(snap.lease().await.unwrap());
        }
        let mut counts = Vec::new();
        for l in leases.iter_mut() {
            let n: Option<i64> = l.query_first("SELECT COUNT(*) FROM tick").await.unwrap();
            counts.push(n.unwrap());
        }
        // Later reads inside the same snapshot see the same again.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let again: Option<i64> = leases[0]
            .query_first("SELECT COUNT(*) FROM tick")
            .await
            .unwrap();
        assert!(
            counts.iter().all(|&n| n == counts[0]) && again == Some(counts[0]),
            "connections disagree: {counts:?} then {again:?} (aligned after {} attempts)",
            snap.attempts
        );
        drop(leases);
        snap.close().await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let n = writer.await.unwrap();
    assert!(n > 10, "the writer committed only {n} rows");
    // Some snapshots had to wait for a pause: the writer really raced them.
    assert!(
        attempts.iter().any(|&a| a > 1),
        "every snapshot aligned at once: {attempts:?}"
    );
}

/// A withdrawal committed while a dump runs shows in none of its files:
/// the owner map, every enumeration, the optout lists and the totals come
/// from the snapshot taken before anything was read. The next dump shows
/// it everywhere.
#[tokio::test]
async fn withdrawal_during_a_dump_is_in_none_of_its_files() {
    for jobs in [1, 3] {
        let f = fixture().await;
        let spec = f.standard_spec();
        let text = std::fs::read_to_string(&spec).unwrap().replace(
            "</boinc_db_dump_spec>",
            "<enumeration><table>team</table><filename>team_detail</filename>\
             <output><detail/></output></enumeration>\n</boinc_db_dump_spec>",
        );
        std::fs::write(&spec, text).unwrap();
        // Hold user_deleted, which the dump reads late, so it is mid-run
        // when the withdrawal commits.
        let mut locker = f.db.conn().await;
        locker
            .query_drop("LOCK TABLES user_deleted WRITE")
            .await
            .unwrap();
        let config = ProjectConfig::load(&f.config("")).unwrap();
        let loaded = DumpSpec::load(&spec).unwrap();
        let run = tokio::spawn(boinc_db_dump::run(Options {
            config: boinc_db_dump::DumpConfig::new(&config, None).unwrap(),
            spec: loaded,
            level: 1,
            jobs,
            progress: None,
        }));
        let mut admin = f.db.conn().await;
        let mine = [locker.id() as u64, admin.id() as u64];
        let mut waiting = false;
        for _ in 0..400 {
            let rows: Vec<u64> = admin
                .exec(
                    "SELECT id FROM information_schema.processlist \
                     WHERE db = ? AND info LIKE '%FROM user_deleted%'",
                    (f.db.settings.name.clone(),),
                )
                .await
                .unwrap();
            if rows.iter().any(|id| !mine.contains(id)) {
                waiting = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert!(waiting, "jobs={jobs}: the dump never reached user_deleted");
        // User 1 withdraws; a new consenting user with credit appears.
        consent(&mut admin, 1, f.statsexport, f.now, 0).await;
        add_user(
            &mut admin,
            U {
                id: 30,
                credit: 5.0,
                ..U::default()
            },
        )
        .await;
        consent(&mut admin, 30, f.statsexport, f.now, 1).await;
        locker.query_drop("UNLOCK TABLES").await.unwrap();
        let s = run.await.unwrap().unwrap();
        // jobs=3 really ran on three connections in one snapshot (nothing
        // commits while it opens), so the files agreeing below is the
        // snapshot's doing, not one connection's.
        assert_eq!(s.snapshot_connections, jobs, "{:?}", s.notes);

        assert_eq!(
            ids_of(&f, "user.gz", "users"),
            vec![1, 5, 10],
            "jobs={jobs}"
        );
        assert_eq!(
            ids_of(&f, "user_optout.gz", "users_optout"),
            vec![2, 4],
            "jobs={jobs}"
        );
        assert_eq!(
            ids_of(&f, "host.gz", "hosts"),
            vec![101, 108, 109, 111, 113],
            "jobs={jobs}"
        );
        assert_eq!(
            ids_of(&f, "host_optout.gz", "hosts_optout"),
            vec![104, 110],
            "jobs={jobs}"
        );
        let detail = records(&read_file(&f.stats_dir().join("team_detail")));
        assert_eq!(detail[&1]["userid"], "1", "jobs={jobs}");
        let tables = std::fs::read_to_string(f.stats_dir().join("tables.xml")).unwrap();
        assert!(
            tables.contains("<nusers_total>8</nusers_total>"),
            "jobs={jobs}: {tables}"
        );

        // The next dump sees the withdrawal and the new user everywhere.
        f.dump(&spec, "").await.unwrap();
        assert_eq!(ids_of(&f, "user.gz", "users"), vec![5, 10, 30]);
        assert_eq!(ids_of(&f, "user_optout.gz", "users_optout"), vec![1, 2, 4]);
        let detail = records(&read_file(&f.stats_dir().join("team_detail")));
        assert!(!detail[&1].contains_key("userid"));
    }
}
