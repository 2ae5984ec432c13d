//! An account erased with `boinc_db::account::erase` (either mode) leaves user.gz
//! and host.gz on the next dump and appears in user_deleted.gz /
//! host_deleted.gz, so stats sites and account managers learn of it.

mod common;

use boinc_db::account::erase::{erase, Mode};
use common::*;

#[tokio::test]
async fn erased_users_leave_user_gz_and_appear_in_user_deleted_gz() {
    let f = fixture().await;
    let spec = f.standard_spec();
    f.dump(&spec, "").await.unwrap();
    assert_eq!(ids_of(&f, "user.gz", "users"), vec![1, 5, 10]);
    assert_eq!(ids_of(&f, "user_deleted.gz", "users_deleted"), vec![6, 7]);
    assert_eq!(
        ids_of(&f, "host.gz", "hosts"),
        vec![101, 108, 109, 111, 113]
    );

    let mut c = f.db.conn().await;
    erase(&mut c, 1, Mode::Obfuscate, "tester").await.unwrap();
    erase(&mut c, 10, Mode::Wipe, "tester").await.unwrap();
    drop(c);

    f.dump(&spec, "").await.unwrap();
    assert_eq!(ids_of(&f, "user.gz", "users"), vec![5]);
    assert_eq!(
        ids_of(&f, "user_deleted.gz", "users_deleted"),
        vec![1, 6, 7, 10]
    );
    let deleted = records(&read_file(&f.stats_dir().join("user_deleted.gz")));
    // The cpid stats sites already know: md5(cross_project_id . old email).
    assert_eq!(deleted[&1]["cpid"], expected_cpid(1));
    assert_eq!(deleted[&10]["cpid"], expected_cpid(10));
    assert_eq!(ids_of(&f, "host.gz", "hosts"), vec![109]);
    assert_eq!(
        ids_of(&f, "host_deleted.gz", "hosts_deleted"),
        vec![101, 102, 105, 106, 107, 108, 111, 113]
    );
    let hd = records(&read_file(&f.stats_dir().join("host_deleted.gz")));
    assert_eq!(hd[&111]["host_cpid"], format!("hostcpid{:024}", 111));
}
