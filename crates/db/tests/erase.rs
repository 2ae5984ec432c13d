//! Erasing accounts (obfuscate, wipe) and the retention purge against a
//! real MariaDB: the effect on user, host, team, consent, deletion-record
//! and audit tables; all-or-nothing under an injected failure.

use boinc_db::account::erase::{erase, EraseError, Mode};
use boinc_db::consent::{self, NewConsent};
use boinc_db::mysql_async::prelude::*;
use boinc_db::mysql_async::Conn;
use boinc_db::queries::{self, NewUser};
use boinc_db::testing::fixtures::{self, new_user};
use boinc_db::testing::TestDb;
use boinc_db::{account::audit, account::retention, consent::terms};

const EMAIL: &str = "Erin@Example.org";

/// A user with a team (founded by them), two hosts, credit, tokens, an
/// ENROLL consent linked to a terms version and a STATSEXPORT row.
async fn setup(c: &mut Conn) -> i64 {
    c.query_drop(
        "INSERT INTO team (id, create_time, userid, name, name_lc, type, nusers, expavg_time, \
         ping_user) VALUES (7, 1, 0, 'Team Seven', 'team seven', 1, 2, 0, 0)",
    )
    .await
    .unwrap();
    let uid = queries::insert_user(
        c,
        &NewUser {
            create_time: 1_600_000_000,
            email_addr: &queries::normalise_email(EMAIL),
            name: "Erin",
            authenticator: "0123456789abcdef0123456789abcdef",
            cross_project_id: "cpid-erin",
            passwd_hash: "$2y$10$secret",
            country: "Germany",
            show_hosts: 1,
            teamid: 7,
        },
    )
    .await
    .unwrap();
    c.exec_drop(
        "UPDATE user SET postal_code = '10115', url = 'https://erin.example', \
         signature = 'Erin S.', has_profile = 1, total_credit = 123.5, \
         previous_email_addr = 'old@example.org' WHERE id = ?",
        (uid,),
    )
    .await
    .unwrap();
    c.exec_drop(
        "UPDATE team SET userid = ?, ping_user = ? WHERE id = 7",
        (uid, uid),
    )
    .await
    .unwrap();
    for (hid, name) in [(31, "erins-laptop"), (32, "erins-desktop")] {
        c.exec_drop(
            "INSERT INTO host SET id = ?, create_time = 1, userid = ?, rpc_seqno = 0, \
             rpc_time = 0, total_credit = 10, expavg_credit = 1, expavg_time = 0, timezone = 0, \
             domain_name = ?, last_ip_addr = '192.0.2.7', external_ip_addr = '198.51.100.7', \
             nsame_ip_addr = 0, on_frac = 1, connected_frac = 1, active_frac = 1, \
             cpu_efficiency = 1, duration_correction_factor = 1, p_ncpus = 4, p_fpops = 0, \
             p_iops = 0, p_membw = 0, m_nbytes = 0, m_cache = 0, m_swap = 0, d_total = 0, \
             d_free = 0, d_boinc_used_total = 0, d_boinc_used_project = 0, d_boinc_max = 0, \
             n_bwup = 0, n_bwdown = 0, credit_per_cpu_sec = 0, venue = '', nresults_today = 0, \
             avg_turnaround = 0, host_cpid = ?, max_results_day = 0, product_name = '', \
             gpu_active_frac = 0, p_ngpus = 0, p_gpu_fpops = 0",
            (hid, uid, name, format!("hostcpid{hid}")),
        )
        .await
        .unwrap();
    }
    c.exec_drop(
        "INSERT INTO credit_user (userid, appid, njobs, total, expavg, expavg_time, \
         credit_type) VALUES (?, 1, 5, 123.5, 2, 0, 0)",
        (uid,),
    )
    .await
    .unwrap();
    c.exec_drop(
        "INSERT INTO token (token, userid, type, create_time, expire_time) \
         VALUES ('tok-erin', ?, 'D', 1, 2000000000)",
        (uid,),
    )
    .await
    .unwrap();
    let enroll = fixtures::enroll(c, uid, 1_600_000_000, "test").await;
    let v = terms::ensure_terms_version(c, "Be nice.", 1_600_000_000)
        .await
        .unwrap();
    terms::link_consent_terms(c, enroll, v).await.unwrap();
    let stats = fixtures::type_id(c, "STATSEXPORT").await;
    consent::insert(
        c,
        &NewConsent {
            userid: uid,
            consent_type_id: stats,
            consent_time: 1_600_000_000,
            consent_flag: false,
            consent_not_required: false,
            source: "test",
        },
    )
    .await
    .unwrap();
    uid
}

async fn count(c: &mut Conn, sql: &str, id: i64) -> i64 {
    c.exec_first(sql, (id,)).await.unwrap().unwrap_or(0)
}

#[tokio::test]
async fn obfuscate_keeps_an_anonymous_row_and_the_consent_evidence() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    let uid = setup(&mut c).await;
    let before = queries::user_by_id(&mut c, uid).await.unwrap().unwrap();
    let o = erase(&mut c, uid, Mode::Obfuscate, "admin-a")
        .await
        .unwrap();
    assert_eq!(
        (o.hosts, o.consent_rows_kept, o.consent_rows_removed),
        (2, 2, 0)
    );
    assert_eq!(o.teams_founder_cleared, 1);

    let u = queries::user_by_id(&mut c, uid).await.unwrap().unwrap();
    assert!(
        u.authenticator().starts_with("deleted_"),
        "{}",
        u.authenticator()
    );
    assert!(u.email_addr.starts_with("deleted_"));
    assert_ne!(u.authenticator(), before.authenticator());
    assert!(u.name().starts_with("deleted_"));
    assert_eq!(u.country.as_deref(), Some(""));
    assert_eq!(u.postal_code.as_deref(), Some(""));
    assert_eq!(u.url.as_deref(), Some(""));
    assert_eq!((u.has_profile, u.teamid), (0, 0));
    assert_eq!(u.previous_email_addr, "");
    assert_eq!(u.total_credit, 123.5, "credit stays, as upstream leaves it");
    let sig: Option<String> = c
        .exec_first("SELECT signature FROM user WHERE id = ?", (uid,))
        .await
        .unwrap();
    assert_eq!(sig.as_deref(), Some(""));

    // Old credentials find nothing.
    assert!(queries::user_by_email(&mut c, EMAIL)
        .await
        .unwrap()
        .is_none());
    assert!(queries::user_by_previous_email(&mut c, "old@example.org")
        .await
        .unwrap()
        .is_none());
    assert!(
        queries::user_by_authenticator(&mut c, "0123456789abcdef0123456789abcdef")
            .await
            .unwrap()
            .is_none()
    );
    assert!(queries::user_by_authenticator(&mut c, u.authenticator())
        .await
        .unwrap()
        .is_none());

    // Hosts anonymised, recorded in host_deleted; user in user_deleted
    // with the cpid stats sites knew.
    let hosts: Vec<(String, String, String)> = c
        .exec(
            "SELECT domain_name, last_ip_addr, external_ip_addr FROM host WHERE userid = ? \
             ORDER BY id",
            (uid,),
        )
        .await
        .unwrap();
    assert_eq!(hosts, vec![("deleted".into(), "".into(), "".into()); 2]);
    let ud: Vec<(i64, String)> = c
        .query("SELECT userid, public_cross_project_id FROM user_deleted")
        .await
        .unwrap();
    assert_eq!(ud, vec![(uid, before.cpid())]);
    let hd: Vec<(i64, String)> = c
        .query("SELECT hostid, public_cross_project_id FROM host_deleted ORDER BY hostid")
        .await
        .unwrap();
    assert_eq!(
        hd,
        vec![(31, "hostcpid31".into()), (32, "hostcpid32".into())]
    );

    // Team left, founder cleared, ping_user negated, nusers decremented.
    let team: (i64, i64, i64) = c
        .query_first("SELECT userid, ping_user, nusers FROM team WHERE id = 7")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(team, (0, -uid, 1));

    // Consent evidence kept, keyed by user id, with its terms link.
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM consent WHERE userid = ?", uid).await,
        2
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT COUNT(*) FROM consent_terms t JOIN consent c ON c.id = t.consent_id \
             WHERE c.userid = ?",
            uid
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT COUNT(*) FROM credit_user WHERE userid = ?",
            uid
        )
        .await,
        1
    );
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM token WHERE userid = ?", uid).await,
        0
    );

    let trail = audit::for_user(&mut c, uid).await.unwrap();
    assert_eq!(trail.len(), 1);
    assert_eq!(
        (
            trail[0].actor.as_str(),
            trail[0].action.as_str(),
            trail[0].mode.as_str()
        ),
        ("admin-a", "delete", "obfuscate")
    );

    // Obfuscating twice is refused; the row is unchanged.
    match erase(&mut c, uid, Mode::Obfuscate, "admin-a").await {
        Err(EraseError::AlreadyObfuscated(id)) => assert_eq!(id, uid),
        other => panic!("{other:?}"),
    }
    let again = queries::user_by_id(&mut c, uid).await.unwrap().unwrap();
    assert_eq!(again.authenticator(), u.authenticator());
}

#[tokio::test]
async fn wipe_removes_the_account_and_everything_keyed_by_it() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    let uid = setup(&mut c).await;
    let cpid = queries::user_by_id(&mut c, uid)
        .await
        .unwrap()
        .unwrap()
        .cpid();
    // Another user's rows must survive.
    let other = fixtures::user_with_enroll(
        &mut c,
        &new_user(1, "other@example.org", "Other", "otherauth"),
        "t",
    )
    .await;

    let o = erase(&mut c, uid, Mode::Wipe, "admin-b").await.unwrap();
    assert_eq!(
        (o.hosts, o.consent_rows_kept, o.consent_rows_removed),
        (2, 0, 2)
    );
    assert!(queries::user_by_id(&mut c, uid).await.unwrap().is_none());
    for sql in [
        "SELECT COUNT(*) FROM host WHERE userid = ?",
        "SELECT COUNT(*) FROM consent WHERE userid = ?",
        "SELECT COUNT(*) FROM credit_user WHERE userid = ?",
        "SELECT COUNT(*) FROM token WHERE userid = ?",
    ] {
        assert_eq!(count(&mut c, sql, uid).await, 0, "{sql}");
    }
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM consent_terms WHERE ? >= 0", 0).await,
        0,
        "the wiped user's terms link is gone"
    );
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM terms_version WHERE ? >= 0", 0).await,
        1,
        "terms texts are the project's, not the user's: kept"
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT COUNT(*) FROM consent WHERE userid = ?",
            other
        )
        .await,
        1
    );
    let ud: Vec<(i64, String)> = c
        .query("SELECT userid, public_cross_project_id FROM user_deleted")
        .await
        .unwrap();
    assert_eq!(ud, vec![(uid, cpid)]);
    assert_eq!(
        count(&mut c, "SELECT COUNT(*) FROM host_deleted WHERE ? >= 0", 0).await,
        2
    );
    let team: (i64, i64) = c
        .query_first("SELECT userid, nusers FROM team WHERE id = 7")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(team, (0, 1));
    // The audit keeps the id only.
    let trail = audit::for_user(&mut c, uid).await.unwrap();
    assert_eq!(trail.len(), 1);
    assert_eq!(
        (trail[0].action.as_str(), trail[0].mode.as_str()),
        ("delete", "wipe")
    );
}

#[tokio::test]
async fn wipe_after_obfuscate_keeps_the_first_deletion_record() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    let uid = setup(&mut c).await;
    let cpid = queries::user_by_id(&mut c, uid)
        .await
        .unwrap()
        .unwrap()
        .cpid();
    erase(&mut c, uid, Mode::Obfuscate, "a").await.unwrap();
    erase(&mut c, uid, Mode::Wipe, "a").await.unwrap();
    let ud: Vec<(i64, String)> = c
        .query("SELECT userid, public_cross_project_id FROM user_deleted")
        .await
        .unwrap();
    assert_eq!(ud, vec![(uid, cpid)]);
    assert!(queries::user_by_id(&mut c, uid).await.unwrap().is_none());
    assert_eq!(audit::for_user(&mut c, uid).await.unwrap().len(), 2);
    match erase(&mut c, uid, Mode::Wipe, "a").await {
        Err(EraseError::UnknownUser(id)) => assert_eq!(id, uid),
        other => panic!("{other:?}"),
    }
}

/// Every table the erase touches, as text, to prove "nothing changed".
async fn state(c: &mut Conn) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT CONCAT_WS('|', id, email_addr, name, authenticator, country, teamid) FROM user ORDER BY id",
        "SELECT CONCAT_WS('|', id, userid, domain_name, last_ip_addr) FROM host ORDER BY id",
        "SELECT CONCAT_WS('|', id, userid, ping_user, nusers) FROM team ORDER BY id",
        "SELECT CONCAT_WS('|', id, userid, consent_flag) FROM consent ORDER BY id",
        "SELECT CONCAT_WS('|', consent_id, terms_version_id) FROM consent_terms ORDER BY consent_id",
        "SELECT CONCAT_WS('|', userid) FROM user_deleted ORDER BY userid",
        "SELECT CONCAT_WS('|', hostid) FROM host_deleted ORDER BY hostid",
        "SELECT CONCAT_WS('|', token, userid) FROM token ORDER BY token",
        "SELECT CONCAT_WS('|', userid, appid) FROM credit_user ORDER BY userid",
        "SELECT CONCAT_WS('|', id, userid, action) FROM account_audit ORDER BY id",
    ] {
        let rows: Vec<String> = c.query(sql).await.unwrap();
        out.push(rows.join("\n"));
    }
    out
}

#[tokio::test]
async fn erase_is_all_or_nothing() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    let uid = setup(&mut c).await;
    // Inject a failure at the very last step (the audit row).
    c.query_drop(
        "CREATE TRIGGER fail_audit BEFORE INSERT ON account_audit FOR EACH ROW \
         SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected failure'",
    )
    .await
    .unwrap();
    let before = state(&mut c).await;
    for mode in [Mode::Obfuscate, Mode::Wipe] {
        let e = erase(&mut c, uid, mode, "a").await.unwrap_err();
        assert!(e.to_string().contains("injected failure"), "{e}");
        assert_eq!(
            state(&mut c).await,
            before,
            "{mode:?} left a partial change"
        );
    }
    // The old key still works: nothing was committed.
    assert!(
        queries::user_by_authenticator(&mut c, "0123456789abcdef0123456789abcdef")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn upstream_tables_present_are_cleaned_too() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    let uid = setup(&mut c).await;
    // A few of upstream BOINC's tables, as a project database has them.
    for sql in [
        "CREATE TABLE private_messages (id INT AUTO_INCREMENT PRIMARY KEY, userid INT NOT NULL, \
         senderid INT NOT NULL, content TEXT)",
        "CREATE TABLE friend (user_src INT NOT NULL, user_dest INT NOT NULL)",
        "CREATE TABLE workunit (id INT PRIMARY KEY, transition_time INT NOT NULL)",
        "CREATE TABLE result (id INT PRIMARY KEY, workunitid INT NOT NULL, userid INT NOT NULL, \
         hostid INT NOT NULL, server_state INT NOT NULL, outcome INT NOT NULL, \
         validate_state INT NOT NULL)",
    ] {
        c.query_drop(sql).await.unwrap();
    }
    c.exec_drop(
        "INSERT INTO private_messages (userid, senderid, content) VALUES (?, 501, 'hi'), \
         (501, ?, 'yo'), (501, 502, 'keep')",
        (uid, uid),
    )
    .await
    .unwrap();
    c.exec_drop(
        "INSERT INTO friend VALUES (?, 99), (99, ?), (98, 99)",
        (uid, uid),
    )
    .await
    .unwrap();
    c.query_drop("INSERT INTO workunit VALUES (1, 0), (2, 0), (3, 0)")
        .await
        .unwrap();
    // in progress, over+success+unvalidated, over+valid, someone else's.
    c.exec_drop(
        "INSERT INTO result VALUES (1, 1, ?, 31, 4, 0, 0), (2, 2, ?, 31, 5, 1, 0), \
         (3, 3, ?, 32, 5, 1, 1), (4, 3, 99, 5, 4, 0, 0)",
        (uid, uid, uid),
    )
    .await
    .unwrap();

    let o = erase(&mut c, uid, Mode::Wipe, "a").await.unwrap();
    // 2 messages, 2 friend rows, 1 token, 1 credit_user row.
    assert_eq!(o.other_rows_removed, 6);
    let pm: Vec<String> = c
        .query("SELECT content FROM private_messages")
        .await
        .unwrap();
    assert_eq!(pm, vec!["keep".to_owned()]);
    let fr: Vec<(i64, i64)> = c.query("SELECT * FROM friend").await.unwrap();
    assert_eq!(fr, vec![(98, 99)]);
    let res: Vec<(i64, i64, i64, i64, i64, i64)> = c
        .query("SELECT id, userid, hostid, server_state, outcome, validate_state FROM result ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        res,
        vec![
            (1, 0, 0, 5, 7, 2),
            (2, 0, 0, 5, 7, 2),
            (3, 0, 0, 5, 1, 1),
            (4, 99, 5, 4, 0, 0)
        ]
    );
    let wu: Vec<(i64, bool)> = c
        .query("SELECT id, transition_time > 0 FROM workunit ORDER BY id")
        .await
        .unwrap();
    assert_eq!(wu, vec![(1, true), (2, true), (3, false)]);
}

#[tokio::test]
async fn retention_purge_counts_and_dry_run_writes_nothing() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    let now = 1_800_000_000i64;
    let day = 86_400;
    c.exec_drop(
        "INSERT INTO user_deleted VALUES (1, 'a', ?), (2, 'b', ?), (3, 'c', ?)",
        (now - 61 * day, now - 60 * day - 1, now - 59 * day),
    )
    .await
    .unwrap();
    c.exec_drop(
        "INSERT INTO host_deleted VALUES (1, 'a', ?), (2, 'b', ?)",
        (now - 100 * day, now - day),
    )
    .await
    .unwrap();
    c.exec_drop(
        "INSERT INTO token VALUES ('t1', 1, 'D', 0, ?), ('t2', 1, 'D', 0, ?), \
         ('t3', 1, 'D', 0, NULL)",
        (now - 1, now + 3600),
    )
    .await
    .unwrap();
    let before: Vec<i64> = c
        .query(
            "SELECT (SELECT COUNT(*) FROM user_deleted) UNION ALL \
             SELECT (SELECT COUNT(*) FROM host_deleted) UNION ALL \
             SELECT (SELECT COUNT(*) FROM token)",
        )
        .await
        .unwrap();
    let dry = retention::purge(&mut c, 60, now, true).await.unwrap();
    assert_eq!((dry.user_deleted, dry.host_deleted, dry.tokens), (2, 1, 1));
    let after_dry: Vec<i64> = c
        .query(
            "SELECT (SELECT COUNT(*) FROM user_deleted) UNION ALL \
             SELECT (SELECT COUNT(*) FROM host_deleted) UNION ALL \
             SELECT (SELECT COUNT(*) FROM token)",
        )
        .await
        .unwrap();
    assert_eq!(after_dry, before, "dry run wrote nothing");
    let done = retention::purge(&mut c, 60, now, false).await.unwrap();
    assert_eq!(done, dry);
    let left: Vec<i64> = c.query("SELECT userid FROM user_deleted").await.unwrap();
    assert_eq!(left, vec![3]);
    let left: Vec<i64> = c.query("SELECT hostid FROM host_deleted").await.unwrap();
    assert_eq!(left, vec![2]);
    let left: Vec<String> = c
        .query("SELECT token FROM token ORDER BY token")
        .await
        .unwrap();
    assert_eq!(left, vec!["t2".to_owned(), "t3".to_owned()]);
    // Again: nothing left to purge.
    let again = retention::purge(&mut c, 60, now, false).await.unwrap();
    assert_eq!(
        (again.user_deleted, again.host_deleted, again.tokens),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn forum_posts_go_and_thread_and_forum_counts_follow() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    let uid = setup(&mut c).await;
    for sql in [
        "CREATE TABLE forum (id INT PRIMARY KEY, threads INT NOT NULL, posts INT NOT NULL)",
        "CREATE TABLE thread (id INT PRIMARY KEY, forum INT NOT NULL, hidden INT NOT NULL, \
         replies INT NOT NULL, timestamp INT NOT NULL, owner INT NOT NULL, \
         title VARCHAR(254) NOT NULL)",
        "CREATE TABLE post (id INT PRIMARY KEY, thread INT NOT NULL, user INT NOT NULL, \
         timestamp INT NOT NULL, hidden INT NOT NULL)",
        "INSERT INTO forum VALUES (1, 2, 5)",
    ] {
        c.query_drop(sql).await.unwrap();
    }
    c.exec_drop(
        "INSERT INTO thread VALUES (10, 1, 0, 2, 30, ?, 'Erin asks'), \
         (11, 1, 0, 0, 50, 999, 'Other asks')",
        (uid,),
    )
    .await
    .unwrap();
    c.exec_drop(
        "INSERT INTO post VALUES (100, 10, ?, 10, 0), (101, 10, 999, 20, 0), \
         (102, 10, ?, 30, 0), (103, 11, ?, 40, 0), (104, 11, ?, 50, 1)",
        (uid, uid, uid, uid),
    )
    .await
    .unwrap();
    let o = erase(&mut c, uid, Mode::Obfuscate, "a").await.unwrap();
    // 4 posts and the user's token; the title of the thread she started.
    assert_eq!((o.other_rows_removed, o.other_rows_anonymised), (5, 1));
    let posts: Vec<i64> = c.query("SELECT id FROM post").await.unwrap();
    assert_eq!(posts, vec![101]);
    let threads: Vec<(i64, i64, i64, String)> = c
        .query("SELECT id, replies, timestamp, title FROM thread")
        .await
        .unwrap();
    assert_eq!(
        threads,
        vec![(
            10,
            0,
            20,
            boinc_db::account::erase::forum::REMOVED_TITLE.into()
        )],
        "thread 11 lost all its posts"
    );
    let forum: Option<(i64, i64)> = c
        .query_first("SELECT threads, posts FROM forum")
        .await
        .unwrap();
    assert_eq!(forum, Some((1, 2)));
}
