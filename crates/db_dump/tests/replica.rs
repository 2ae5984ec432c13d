//! db_dump from a real replica (issue 11 item 5): a private primary
//! mariadbd with a binlog and a second one replicating from it by GTID,
//! each with its own datadir and port. db_dump pointed at the replica
//! (replica_db_host and friends) makes no connection to the primary,
//! keeps going when the primary stops mid-dump, writes the same files as
//! a dump from the primary, and says when the replica lags.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use boinc_db::testing::PrivateMariaDb;
use boinc_db::ProjectConfig;
use boinc_db_dump::{DumpSpec, Options, Summary};
use common::*;
use mysql_async::prelude::*;
use mysql_async::Conn;

/// Every published file, decompressed; tables.xml without update_time.
fn contents(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let mut text = read_file(&e.path());
            if name == "tables.xml" {
                text = text
                    .lines()
                    .filter(|l| !l.contains("<update_time>"))
                    .collect::<Vec<_>>()
                    .join("\n");
            }
            (name, text)
        })
        .collect()
}

async fn dump(f: &Fixture, spec: &Path, extra: &str) -> Summary {
    let config = ProjectConfig::load(&f.config(extra)).unwrap();
    boinc_db_dump::run(Options {
        config: boinc_db_dump::DumpConfig::new(&config, None).unwrap(),
        spec: DumpSpec::load(spec).unwrap(),
        level: 6,
        jobs: 3,
        progress: None,
    })
    .await
    .unwrap()
}

async fn status(c: &mut Conn, name: &'static str) -> u64 {
    let r: Option<(String, String)> = c
        .query_first(format!("SHOW GLOBAL STATUS LIKE '{name}'"))
        .await
        .unwrap();
    r.unwrap().1.parse().unwrap()
}

async fn gtid_pos(primary: &mut Conn) -> String {
    primary
        .query_first::<String, _>("SELECT @@gtid_binlog_pos")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Wait until the replica has applied everything the primary logged.
async fn sync(primary: &mut Conn, replica: &mut Conn) {
    let pos = gtid_pos(primary).await;
    let r: Option<i64> = replica
        .exec_first("SELECT MASTER_GTID_WAIT(?, 60)", (pos.clone(),))
        .await
        .unwrap();
    assert_eq!(r, Some(0), "replica did not reach {pos}");
}

#[tokio::test]
async fn dump_from_a_gtid_replica_never_touches_the_primary() {
    let mut primary = PrivateMariaDb::start_with(&[
        "--log-bin=mysql-bin",
        "--server-id=1",
        "--binlog-format=ROW",
    ])
    .await;
    let replica = PrivateMariaDb::start_with(&["--server-id=2", "--relay-log=relay-bin"]).await;
    // The fixture's database lives on the private primary.
    std::env::set_var(
        boinc_db::testing::TEST_SERVER_ENV,
        format!("mysql://root@127.0.0.1:{}", primary.port),
    );
    let f = fixture().await;
    let name = f.db.settings.name.clone();
    let mut p = Conn::new(primary.settings("mysql").server_opts())
        .await
        .unwrap();
    let mut r = Conn::new(replica.settings("mysql").server_opts())
        .await
        .unwrap();
    r.query_drop(format!(
        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='root', \
         MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1",
        primary.port
    ))
    .await
    .unwrap();
    r.query_drop("START SLAVE").await.unwrap();
    sync(&mut p, &mut r).await;
    let users: Option<i64> = r
        .query_first(format!("SELECT COUNT(*) FROM `{name}`.user"))
        .await
        .unwrap();
    assert_eq!(users, Some(11), "replicated fixture");

    let spec = f.standard_spec();
    let replica_cfg = format!(
        "<replica_db_host>127.0.0.1:{}</replica_db_host><replica_db_user>root</replica_db_user>\
         <replica_db_passwd></replica_db_passwd>",
        replica.port
    );

    // From the primary: the reference.
    dump(&f, &spec, "").await;
    let from_primary = contents(&f.stats_dir());

    // From the replica: same files, and not one connection to the primary.
    let before = status(&mut p, "Connections").await;
    let s = dump(&f, &spec, &replica_cfg).await;
    assert_eq!(
        status(&mut p, "Connections").await,
        before,
        "db_dump connected to the primary"
    );
    assert_eq!(contents(&f.stats_dir()), from_primary);
    assert!(s.notes.is_empty(), "an up-to-date replica: {:?}", s.notes);

    // The primary stops mid-dump: the dump (all on the replica) goes on.
    let mut locker = Conn::new(replica.settings(&name).opts()).await.unwrap();
    locker
        .query_drop("LOCK TABLES user_deleted WRITE")
        .await
        .unwrap();
    let run = {
        let config = ProjectConfig::load(&f.config(&replica_cfg)).unwrap();
        let spec = DumpSpec::load(&spec).unwrap();
        tokio::spawn(boinc_db_dump::run(Options {
            config: boinc_db_dump::DumpConfig::new(&config, None).unwrap(),
            spec,
            level: 6,
            jobs: 3,
            progress: None,
        }))
    };
    let mut waiting = false;
    for _ in 0..400 {
        let n: Option<i64> = r
            .query_first(
                "SELECT COUNT(*) FROM information_schema.processlist \
                 WHERE info LIKE '%FROM user_deleted%' AND info NOT LIKE '%processlist%'",
            )
            .await
            .unwrap();
        if n.unwrap_or(0) > 0 {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        waiting,
        "the dump never reached user_deleted on the replica"
    );
    drop(p);
    primary.stop();
    locker.query_drop("UNLOCK TABLES").await.unwrap();
    let s = run.await.unwrap().expect("dump with the primary down");
    assert_eq!(contents(&f.stats_dir()), from_primary);
    let _ = s;
    // With the primary gone the replica cannot know its lag: said so.
    let s = dump(&f, &spec, &replica_cfg).await;
    assert!(
        s.notes
            .iter()
            .any(|n| n.contains("lag unknown") && n.contains("replication not running")),
        "{:?}",
        s.notes
    );
    assert_eq!(contents(&f.stats_dir()), from_primary);

    // The primary is back; the replica now applies with a delay: a
    // withdrawal on the primary is not in the replica's dump yet, and
    // the summary says the replica is behind.
    primary.resume().await;
    let mut p = Conn::new(primary.settings("mysql").server_opts())
        .await
        .unwrap();
    sync(&mut p, &mut r).await;
    r.query_drop("STOP SLAVE").await.unwrap();
    r.query_drop("CHANGE MASTER TO MASTER_DELAY=120")
        .await
        .unwrap();
    r.query_drop("START SLAVE").await.unwrap();
    p.query_drop(format!(
        "INSERT INTO `{name}`.consent (userid, consent_type_id, consent_time, consent_flag, \
         consent_not_required, source) VALUES (1, {}, UNIX_TIMESTAMP(), 0, 0, 'test')",
        f.statsexport
    ))
    .await
    .unwrap();
    let mut behind = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let row: Option<mysql_async::Row> = r.query_first("SHOW SLAVE STATUS").await.unwrap();
        behind = row
            .and_then(|row| row.get_opt::<Option<String>, _>("Seconds_Behind_Master"))
            .and_then(Result::ok)
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if behind >= 3 {
            break;
        }
    }
    assert!(behind >= 3, "the replica never lagged");
    let s = dump(
        &f,
        &spec,
        &format!("{replica_cfg}<replica_max_lag>2</replica_max_lag>"),
    )
    .await;
    assert!(
        s.notes
            .iter()
            .any(|n| n.contains("s behind its primary (more than replica_max_lag 2 s)")),
        "{:?}",
        s.notes
    );
    assert_eq!(
        contents(&f.stats_dir()),
        from_primary,
        "the replica's (older) view"
    );
    // The same lag under the default limit (300 s) says nothing.
    let s = dump(&f, &spec, &replica_cfg).await;
    assert!(s.notes.is_empty(), "{:?}", s.notes);
    // The primary itself already shows the withdrawal.
    dump(&f, &spec, "").await;
    assert_ne!(contents(&f.stats_dir()), from_primary);
    r.query_drop("STOP SLAVE").await.unwrap();
}
