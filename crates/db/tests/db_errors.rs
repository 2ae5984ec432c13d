//! `DbError::is_connectivity` on errors a real MariaDB connection gives:
//! a connection killed from another session, or a server nobody listens
//! on, is a connectivity problem (a fresh connection may succeed); a
//! driver fault the statement causes, a duplicate key or a statement
//! error are not (every try meets them).

use boinc_db::mysql_async::prelude::*;
use boinc_db::testing::TestDb;
use boinc_db::DbError;

#[tokio::test]
async fn real_errors_are_classified_by_cause() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;

    // Faults of the driver's own that the statement causes: parameters
    // that do not fit it, a transaction inside a transaction. The old
    // rule called every such non-server error a connection problem.
    let e: DbError = c.exec_drop("SELECT ?, ?", (1,)).await.unwrap_err().into();
    assert!(
        matches!(&e, DbError::Mysql(boinc_db::mysql_async::Error::Driver(_))),
        "{e:?}"
    );
    assert!(!e.is_connectivity(), "{e:?}");
    // (mysql_async drops a connection after any driver error.)
    let mut c = db.conn().await;
    {
        let mut tx = c
            .start_transaction(boinc_db::mysql_async::TxOpts::default())
            .await
            .unwrap();
        let e: DbError = tx
            .exec_drop("SELECT :a, ?", (1, 2))
            .await
            .unwrap_err()
            .into();
        assert!(!e.is_connectivity(), "{e:?}");
    }
    let mut c = db.conn().await;
    // Statement and data faults the server reports.
    for sql in [
        "SELECT no_such_column FROM user",
        "INSERT INTO consent_type (id, shortname, description, enabled, project_specific, \
         privacypref) SELECT id, shortname, description, 0, 0, 0 FROM consent_type LIMIT 1",
        "SELEC 1",
    ] {
        let e: DbError = c.query_drop(sql).await.unwrap_err().into();
        assert!(!e.is_connectivity(), "{sql}: {e:?}");
    }

    // KILL CONNECTION from another session: the next statement on the
    // killed one fails as a broken connection.
    let id: u32 = c
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    let mut admin = db.conn().await;
    admin
        .query_drop(format!("KILL CONNECTION {id}"))
        .await
        .unwrap();
    let e: DbError = c.query_drop("SELECT 1").await.unwrap_err().into();
    assert!(e.is_connectivity(), "{e:?}");

    // A server nobody listens on.
    let mut s = db.settings.clone();
    s.port = boinc_db::testing::free_port();
    let e: DbError = boinc_db::mysql_async::Conn::new(s.opts())
        .await
        .unwrap_err()
        .into();
    assert!(e.is_connectivity(), "{e:?}");
}
