//! The private mariadbd that outage and replica tests start must leave the
//! shared test server alone: at start-up mariadbd deletes every `#sql*`
//! file in its tmpdir, so sharing /tmp with the shared server destroyed
//! that server's live temporary tables (other tests then failed with
//! "Error on delete of '/tmp/#sql-temptable-…'").

use boinc_db::mysql_async::prelude::*;
use boinc_db::testing::{PrivateMariaDb, TestDb};

#[tokio::test]
async fn starting_a_private_server_keeps_the_shared_servers_temporary_tables() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    // An on-disk temporary table of the shared server (Aria files in its
    // tmpdir, like the internal ones big GROUP BYs create).
    c.query_drop("CREATE TEMPORARY TABLE scratch (v INT) ENGINE=Aria")
        .await
        .unwrap();
    c.query_drop("INSERT INTO scratch VALUES (1), (2), (3)")
        .await
        .unwrap();

    let private = PrivateMariaDb::start().await;
    drop(private);

    let n: Option<i64> = c.query_first("SELECT SUM(v) FROM scratch").await.unwrap();
    assert_eq!(n, Some(6));
    c.query_drop("DROP TEMPORARY TABLE scratch")
        .await
        .expect("the temporary table's files must still exist");
}
