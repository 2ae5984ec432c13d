//! Upstream's extra stats files against a real MariaDB: badge_user /
//! badge_team (whenever badges exist) and credit_by_app's user_work /
//! team_work, consent-filtered like the user file.

mod common;

use std::process::Command;

use common::*;
use mysql_async::prelude::*;

fn gzip_ok(path: &std::path::Path) {
    let o = Command::new("gzip")
        .arg("-t")
        .arg(path)
        .output()
        .expect("gzip installed");
    assert!(o.status.success(), "gzip -t {}", path.display());
}

/// Holder ids (user_id / team_id) of a badge file, in order.
fn holders(text: &str, id: &str) -> Vec<i64> {
    let doc = roxmltree::Document::parse(text).unwrap();
    doc.root_element()
        .children()
        .filter(|n| n.is_element())
        .map(|n| child(n, id).parse().unwrap())
        .collect()
}

async fn add_badges(f: &Fixture) {
    let mut c = f.db.conn().await;
    c.query_drop(
        "INSERT INTO badge (id, create_time, type, name, title, description, image_url, level, \
         tags, sql_rule) VALUES (1, 1, 0, 'gold', 'Gold & <co>', '', 'img/g.png', '', '', ''), \
         (2, 1, 0, 'silver', 'Silver', '', 'img/s.png', '', '', ''), \
         (3, 1, 1, 'team_gold', 'Team Gold', '', 'img/tg.png', '', '', '')",
    )
    .await
    .unwrap();
    // Users: 1 and 5 consent, 2 withdrew, 3 never asked, 6 deleted,
    // 8 no credit; teams: 1 and 3 have credit, 2 none.
    c.query_drop(
        "INSERT INTO badge_user (badge_id, user_id, create_time, reassign_time) VALUES \
         (2, 1, 1700000000.4, 0), (1, 1, 1700000000.6, 0), (1, 2, 1, 0), (1, 3, 1, 0), \
         (1, 5, 1700000100, 0), (1, 6, 1, 0), (1, 8, 1, 0), (1, 999, 1, 0)",
    )
    .await
    .unwrap();
    c.query_drop(
        "INSERT INTO badge_team (badge_id, team_id, create_time, reassign_time) VALUES \
         (3, 1, 1700000200, 0), (3, 2, 1, 0), (3, 3, 1700000300, 0)",
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn badge_files_hold_only_exported_users_and_listed_teams() {
    let f = fixture().await;
    let spec = f.standard_spec();
    // No badges: no badge files, as upstream.
    f.dump(&spec, "").await.unwrap();
    assert!(!f.stats_dir().join("badge_user.gz").exists());
    assert!(!f.stats_dir().join("badge_team.gz").exists());

    add_badges(&f).await;
    let s = f.dump(&spec, "").await.unwrap();
    let dir = f.stats_dir();
    let bu = read_file(&dir.join("badge_user.gz"));
    check_xml("badge_user.gz", &bu, "badge_users");
    assert_eq!(
        bu,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<badge_users>\n \
<badge_user>\n    <user_id>1</user_id>\n    <badge_id>1</badge_id>\n    <create_time>1700000001</create_time>\n </badge_user>\n \
<badge_user>\n    <user_id>1</user_id>\n    <badge_id>2</badge_id>\n    <create_time>1700000000</create_time>\n </badge_user>\n \
<badge_user>\n    <user_id>5</user_id>\n    <badge_id>1</badge_id>\n    <create_time>1700000100</create_time>\n </badge_user>\n\
</badge_users>\n"
    );
    let bt = read_file(&dir.join("badge_team.gz"));
    check_xml("badge_team.gz", &bt, "badge_teams");
    assert_eq!(holders(&bt, "team_id"), vec![1, 3]);
    assert!(bt.contains(
        " <badge_team>\n    <team_id>1</team_id>\n    <badge_id>3</badge_id>\n    \
<create_time>1700000200</create_time>\n </badge_team>\n"
    ));
    gzip_ok(&dir.join("badge_user.gz"));
    gzip_ok(&dir.join("badge_team.gz"));
    let rec = |name: &str| {
        s.enumerations
            .iter()
            .find(|e| e.filename == name)
            .unwrap()
            .records
    };
    assert_eq!((rec("badge_user"), rec("badge_team")), (3, 2));
    // tables.xml lists the badges; its totals are unchanged.
    let t = std::fs::read_to_string(dir.join("tables.xml")).unwrap();
    assert!(t.contains("<title>Gold &amp; &lt;co&gt;</title>"), "{t}");
    assert!(t.contains("<nusers_total>8</nusers_total>"), "{t}");

    // Without the consent filter: every exportable user (not the deleted
    // one, not the one without credit, not a missing one).
    for absent in [false, true] {
        if absent {
            f.rename_statsexport_away().await;
        } else {
            f.set_statsexport(false).await;
        }
        f.dump(&spec, "").await.unwrap();
        let bu = read_file(&f.stats_dir().join("badge_user.gz"));
        check_xml("badge_user.gz", &bu, "badge_users");
        assert_eq!(
            holders(&bu, "user_id"),
            vec![1, 1, 2, 3, 5],
            "absent={absent}"
        );
        let bt = read_file(&f.stats_dir().join("badge_team.gz"));
        assert_eq!(holders(&bt, "team_id"), vec![1, 3]);
    }
}

async fn add_credit(f: &Fixture) {
    let mut c = f.db.conn().await;
    c.query_drop(
        "INSERT INTO app (id, create_time, name, user_friendly_name) VALUES (2, 1, 'two', '')",
    )
    .await
    .unwrap();
    let app1: i64 = c
        .query_first("SELECT MIN(id) FROM app")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(app1, 1);
    // User 1: app 1 in two credit types, app 2; 2 withdrew; 5 consents;
    // 8 has no credit; 3 never asked.
    c.query_drop(
        "INSERT INTO credit_user (userid, appid, njobs, total, expavg, expavg_time, credit_type) VALUES \
         (1, 1, 3, 10.5, 1.25, 0, 0), (1, 1, 2, 4, 0.5, 0, 1), (1, 2, 7, 100, 2, 0, 0), \
         (2, 1, 1, 50, 5, 0, 0), (3, 2, 1, 10, 1, 0, 0), (5, 2, 4, 0.1, 0.2, 0, 0), \
         (8, 1, 1, 1, 1, 0, 0)",
    )
    .await
    .unwrap();
    c.query_drop(
        "INSERT INTO credit_team (teamid, appid, njobs, total, expavg, expavg_time, credit_type) VALUES \
         (1, 1, 9, 300.25, 3, 0, 0), (2, 1, 1, 5, 1, 0, 0)",
    )
    .await
    .unwrap();
}

fn work_ids(text: &str, wrapper: &str) -> Vec<i64> {
    assert!(text.starts_with(&format!("<{wrapper}>\n")), "{text}");
    assert!(text.ends_with(&format!("</{wrapper}>\n")), "{text}");
    ids(text)
}

#[tokio::test]
async fn credit_by_app_files_follow_the_user_file() {
    let f = fixture().await;
    add_credit(&f).await;
    let spec = f.standard_spec();
    // Not configured: no files, tables.xml does not claim them.
    f.dump(&spec, "").await.unwrap();
    assert!(!f.stats_dir().join("user_work.gz").exists());
    let t = std::fs::read_to_string(f.stats_dir().join("tables.xml")).unwrap();
    assert!(!t.contains("credit_by_app"), "{t}");

    f.dump(&spec, "<credit_by_app/>").await.unwrap();
    let dir = f.stats_dir();
    let uw = read_file(&dir.join("user_work.gz"));
    roxmltree::Document::parse(&uw).expect("user_work parses");
    assert_eq!(work_ids(&uw, "users"), vec![1, 5, 10]);
    // Upstream's layout: no XML declaration, one sub-project per app here,
    // sums over credit types, PHP's number format, empty ones left out.
    assert_eq!(
        uw,
        "<users>\n<user>\n    <id>1</id>\n    <subproject name=\"App &lt;One&gt; &amp; Co\">\n        \
<workunits>5</workunits>\n        <credit>14.5</credit>\n        <expavg_credit>1.75</expavg_credit>\n    \
</subproject>\n    <subproject name=\"two\">\n        <workunits>7</workunits>\n        <credit>100</credit>\n        \
<expavg_credit>2</expavg_credit>\n    </subproject>\n</user>\n<user>\n    <id>5</id>\n    <subproject name=\"two\">\n        \
<workunits>4</workunits>\n        <credit>0.1</credit>\n        <expavg_credit>0.2</expavg_credit>\n    </subproject>\n\
</user>\n<user>\n    <id>10</id>\n</user>\n</users>\n"
    );
    let tw = read_file(&dir.join("team_work.gz"));
    roxmltree::Document::parse(&tw).expect("team_work parses");
    assert_eq!(work_ids(&tw, "teams"), vec![1, 3]);
    assert!(tw.contains(
        "<team>\n    <id>1</id>\n    <subproject name=\"App &lt;One&gt; &amp; Co\">\n        \
<workunits>9</workunits>\n        <credit>300.25</credit>\n        <expavg_credit>3</expavg_credit>\n    </subproject>\n</team>\n"
    ));
    gzip_ok(&dir.join("user_work.gz"));
    gzip_ok(&dir.join("team_work.gz"));
    let t = std::fs::read_to_string(dir.join("tables.xml")).unwrap();
    assert!(
        t.contains("    <update_time>")
            && t.contains(
                "</update_time>\n    <credit_by_app/>\n    <nusers_total>8</nusers_total>"
            ),
        "{t}"
    );
    assert!(t.contains("<nteams_total>2</nteams_total>"));

    // Sub-projects from config.xml group apps as upstream's project.inc.
    f.dump(
        &spec,
        "<credit_by_app/><credit_by_app_subprojects>All &amp; \"both\": 1, 2</credit_by_app_subprojects>",
    )
    .await
    .unwrap();
    let uw = read_file(&f.stats_dir().join("user_work.gz"));
    let doc = roxmltree::Document::parse(&uw).unwrap();
    let u1 = doc
        .root_element()
        .children()
        .find(|n| n.is_element())
        .unwrap();
    let sp: Vec<_> = u1
        .children()
        .filter(|n| n.has_tag_name("subproject"))
        .collect();
    assert_eq!(sp.len(), 1);
    assert_eq!(sp[0].attribute("name"), Some("All & \"both\""));
    assert_eq!(child(sp[0], "credit"), "114.5");
    assert_eq!(child(sp[0], "workunits"), "12");

    // No consent filter: every exportable user (8 has no credit).
    f.set_statsexport(false).await;
    f.dump(&spec, "<credit_by_app/>").await.unwrap();
    let uw = read_file(&f.stats_dir().join("user_work.gz"));
    assert_eq!(work_ids(&uw, "users"), vec![1, 2, 3, 4, 5, 9, 10, 11]);

    // A bad sub-project list is refused before anything is written.
    let before = std::fs::read(f.stats_dir().join("user_work.gz")).unwrap();
    let err = f
        .dump(
            &spec,
            "<credit_by_app/><credit_by_app_subprojects>A: x</credit_by_app_subprojects>",
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("credit_by_app_subprojects"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(f.stats_dir().join("user_work.gz")).unwrap(),
        before
    );
}
