//! db_dump against a real MariaDB (TestDb): filtering, totals, layout,
//! escaping, compression, splitting, sort orders, atomic publish.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::*;

fn tables(f: &Fixture) -> roxmltree_owned::Tables {
    let text = std::fs::read_to_string(f.stats_dir().join("tables.xml")).unwrap();
    roxmltree_owned::Tables::parse(&text)
}

mod roxmltree_owned {
    use std::collections::BTreeMap;

    pub struct Tables {
        pub text: String,
        pub values: BTreeMap<String, String>,
        pub apps: Vec<String>,
    }

    impl Tables {
        pub fn parse(text: &str) -> Self {
            let doc = roxmltree::Document::parse(text).expect("tables.xml parses");
            assert_eq!(doc.root_element().tag_name().name(), "tables");
            let values = doc
                .root_element()
                .children()
                .filter(|n| n.is_element())
                .map(|n| {
                    (
                        n.tag_name().name().to_owned(),
                        n.text().unwrap_or("").to_owned(),
                    )
                })
                .collect();
            let apps = doc
                .descendants()
                .filter(|n| n.has_tag_name("application"))
                .map(|n| super::child(n, "name").to_owned())
                .collect();
            Self {
                text: text.to_owned(),
                values,
                apps,
            }
        }

        pub fn get(&self, k: &str) -> Option<&str> {
            self.values.get(k).map(|s| s.as_str())
        }
    }
}

fn team_members(text: &str) -> Vec<(i64, Vec<i64>)> {
    let doc = roxmltree::Document::parse(text).unwrap();
    doc.root_element()
        .children()
        .filter(|n| n.is_element())
        .map(|t| {
            let members = t
                .children()
                .filter(|c| c.has_tag_name("user"))
                .map(|u| child(u, "id").parse().unwrap())
                .collect();
            (child(t, "id").parse().unwrap(), members)
        })
        .collect()
}

const TEAM_DETAIL: &str = "<enumeration><table>team</table><filename>team_detail</filename>\
    <output><detail/></output></enumeration>";

#[tokio::test]
async fn statsexport_enabled_filters_users_hosts_and_team_members() {
    let f = fixture().await;
    let spec = f.standard_spec();
    // Add a team detail output to the standard set.
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "</boinc_db_dump_spec>",
        &format!("{TEAM_DETAIL}\n</boinc_db_dump_spec>"),
    );
    std::fs::write(&spec, text).unwrap();
    let s = f.dump(&spec, "<user_country/><user_url/>").await.unwrap();
    assert!(s.consent_filter);

    assert_eq!(ids_of(&f, "user.gz", "users"), vec![1, 5, 10]);
    assert_eq!(
        ids_of(&f, "host.gz", "hosts"),
        vec![101, 108, 109, 111, 113],
        "withdrawn/never-asked owners, deleted and zero-credit hosts left out"
    );
    assert_eq!(ids_of(&f, "team.gz", "teams"), vec![1, 3]);
    assert_eq!(ids_of(&f, "user_deleted.gz", "users_deleted"), vec![6, 7]);
    assert_eq!(ids_of(&f, "host_deleted.gz", "hosts_deleted"), vec![105]);
    // Withdrew in the window (2; 4 by a same-second tie); 9 withdrew too
    // long ago, 11 never consented.
    assert_eq!(ids_of(&f, "user_optout.gz", "users_optout"), vec![2, 4]);
    assert_eq!(
        ids_of(&f, "host_optout.gz", "hosts_optout"),
        vec![104, 110],
        "exportable hosts of optout users (114 has no credit: never exported)"
    );
    let optout = records(&read_file(&f.stats_dir().join("user_optout.gz")));
    assert_eq!(optout[&2]["cpid"], expected_cpid(2));
    let ho = records(&read_file(&f.stats_dir().join("host_optout.gz")));
    assert_eq!(ho[&104]["host_cpid"], format!("hostcpid{:024}", 104));

    // Team detail lists only exportable members (upstream lists everyone).
    let detail = read_file(&f.stats_dir().join("team_detail"));
    check_xml("team_detail", &detail, "teams");
    assert_eq!(team_members(&detail), vec![(1, vec![1, 5]), (3, vec![])]);

    // Totals count everyone with credit, consent or not.
    let t = tables(&f);
    assert_eq!(t.get("nusers_total"), Some("8"), "{}", t.text);
    assert_eq!(t.get("nhosts_total"), Some("9"));
    assert_eq!(t.get("nteams_total"), Some("2"));
    assert_eq!(t.get("nusers_deleted_total"), Some("2"));
    assert_eq!(t.get("nhosts_deleted_total"), Some("1"));
    assert_eq!(t.get("nusers_optout_total"), Some("2"));
    assert_eq!(t.get("nhosts_optout_total"), Some("2"));
    // 100.5 + 50 + 10 + 40 + 300 + 9 + 1.5 + 11
    assert_eq!(t.get("total_credit"), Some("522.000000"));
    assert_eq!(t.apps, vec!["App <One> & Co".to_owned()]);
    assert!(t.text.contains("    <badges>\n    </badges>\n"));

    // cpid = md5(cross_project_id . email_addr)
    let users = records(&read_file(&f.stats_dir().join("user.gz")));
    for id in [1, 5, 10] {
        assert_eq!(users[&id]["cpid"], expected_cpid(id), "user {id}");
    }
    // db_dump.xml is the spec used.
    assert_eq!(
        std::fs::read(f.stats_dir().join("db_dump.xml")).unwrap(),
        std::fs::read(&spec).unwrap()
    );
    assert!(!f.dir.path().join("stats_tmp").exists());
}

#[tokio::test]
async fn no_consent_filter_when_statsexport_disabled_or_absent() {
    let f = fixture().await;
    let spec = f.standard_spec();
    for absent in [false, true] {
        if absent {
            // A database whose STATSEXPORT type does not exist.
            f.rename_statsexport_away().await;
        } else {
            f.set_statsexport(false).await;
        }
        let s = f.dump(&spec, "").await.unwrap();
        assert!(!s.consent_filter);
        assert_eq!(
            ids_of(&f, "user.gz", "users"),
            vec![1, 2, 3, 4, 5, 9, 10, 11],
            "absent={absent}"
        );
        assert_eq!(
            ids_of(&f, "host.gz", "hosts"),
            vec![101, 103, 104, 108, 109, 110, 111, 112, 113]
        );
        assert_eq!(
            ids_of(&f, "user_optout.gz", "users_optout"),
            Vec::<i64>::new()
        );
        assert_eq!(
            ids_of(&f, "host_optout.gz", "hosts_optout"),
            Vec::<i64>::new()
        );
        let t = tables(&f);
        assert_eq!(t.get("nusers_total"), Some("8"));
        assert_eq!(t.get("nhosts_total"), Some("9"));
        assert_eq!(
            t.get("nusers_optout_total"),
            None,
            "zero totals are left out"
        );
    }
}

/// Byte-exact records, layout derived from BOINC's sched/db_dump.cpp.
#[tokio::test]
async fn golden_records() {
    let f = fixture().await;
    let spec = f.spec(
        "golden.xml",
        "<enumeration><table>user</table><filename>user</filename><output/></enumeration>\
         <enumeration><table>host</table><filename>host</filename><output/></enumeration>\
         <enumeration><table>host</table><filename>host_detail</filename><output><detail/></output></enumeration>\
         <enumeration><table>team</table><filename>team</filename><output/></enumeration>",
        false,
    );
    f.dump(&spec, "<user_country/><user_url/>").await.unwrap();
    let user = read_file(&f.stats_dir().join("user"));
    let expected_user_1 = format!(
        "<user>\n <id>1</id>\n <name>Alice &amp; &lt;Bob&gt;</name>\n <create_time>1600000001</create_time>\n \
<total_credit>100.500000</total_credit>\n <expavg_credit>10.050000</expavg_credit>\n \
<expavg_time>1700000000.500000</expavg_time>\n <cpid>{}</cpid>\n <country>Germany</country>\n \
<url>http://alice.example/?a=1&amp;b=2</url>\n <teamid>1</teamid>\n <has_profile/>\n</user>\n",
        expected_cpid(1)
    );
    assert!(
        user.starts_with(&format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<users>\n{expected_user_1}"
        )),
        "{user}"
    );
    // Escaping: UTF-8 kept, & < > escaped, TAB/LF/CR as references,
    // control characters dropped, nothing breaks the line.
    assert!(
        user.contains(" <name>Zoë&#9;&lt;b&gt;&amp;\"'&#10;line&#13;x]]&gt;y 😀</name>\n"),
        "{user}"
    );
    assert!(user.contains(" <country>Côte d'Ivoire &amp; &lt;x&gt;</country>\n"));
    assert!(user.contains(" <url>http://x/?a=1&amp;b=&lt;2&gt;</url>\n"));

    let host_common = "    <total_credit>10.000000</total_credit>\n    <expavg_credit>1.250000</expavg_credit>\n    \
<expavg_time>1700000002.000000</expavg_time>\n    <p_vendor>GenuineIntel</p_vendor>\n    \
<p_model>Core &lt;i7&gt; &amp; more</p_model>\n    <os_name>Linux</os_name>\n    <os_version>6.1</os_version>\n    \
<misc><![CDATA[]]></misc>\n";
    let host = read_file(&f.stats_dir().join("host"));
    assert!(
        host.contains(&format!("<host>\n    <id>101</id>\n{host_common}</host>\n")),
        "{host}"
    );
    let detail = read_file(&f.stats_dir().join("host_detail"));
    let expected_detail = format!(
        "<host>\n    <id>101</id>\n    <userid>1</userid>\n{host_common}  <create_time>1500000000</create_time>\n  \
<rpc_time>1700000001</rpc_time>\n  <timezone>-3600</timezone>\n  <ncpus>8</ncpus>\n  \
<p_fpops>3500000000.500000</p_fpops>\n  <p_iops>12000000000.000000</p_iops>\n  \
<p_membw>1000000000.000000</p_membw>\n  <m_nbytes>17179869184.000000</m_nbytes>\n  \
<m_cache>2097152.000000</m_cache>\n  <m_swap>8589934592.000000</m_swap>\n  \
<d_total>500000000000.000000</d_total>\n  <d_free>250000000000.000000</d_free>\n  \
<n_bwup>1000000.000000</n_bwup>\n  <n_bwdown>5000000.000000</n_bwdown>\n  \
<avg_turnaround>3600.250000</avg_turnaround>\n  <credit_per_cpu_sec>0.012500</credit_per_cpu_sec>\n  \
<host_cpid>hostcpid{:024}</host_cpid>\n</host>\n",
        101
    );
    assert!(detail.contains(&expected_detail), "{detail}");
    // Owner hides hosts (user 5): no userid even with detail.
    assert!(detail.contains("<host>\n    <id>109</id>\n    <total_credit>"));
    // misc: ]]> split, LF/TAB as references outside the CDATA sections.
    assert!(detail.contains(
        "    <misc><![CDATA[gpu]]]]><![CDATA[>x]]>&#10;<![CDATA[line2]]>&#9;<![CDATA[<&>]]></misc>\n"
    ), "{detail}");
    let misc = records(&detail)[&111]["misc"].clone();
    assert_eq!(misc, "gpu]]>x\nline2\t<&>");

    let team = read_file(&f.stats_dir().join("team"));
    let expected_team = "<team>\n <id>1</id>\n <type>2</type>\n <name>Team &lt;A&gt; &amp; co</name>\n \
<userid>1</userid>\n <total_credit>500.250000</total_credit>\n <expavg_credit>20.500000</expavg_credit>\n \
<expavg_time>1700000003.000000</expavg_time>\n  <founder_name>Alice &amp; &lt;Bob&gt;</founder_name>\n \
<create_time>1500000001</create_time>\n <url>http://t.example/?x=1&amp;y=2</url>\n\
<name_html>&lt;b&gt;A&lt;/b&gt;</name_html>\n<description>We &amp; &lt;you&gt;</description>\n \
<country>Côte d'Ivoire</country>\n</team>\n";
    assert!(team.contains(expected_team), "{team}");
    // Missing founder (no consent either): no userid, no founder_name;
    // empty url/name_html/description left out; country always there.
    assert!(team.contains(
        "<team>\n <id>3</id>\n <type>1</type>\n <name>Orphan team</name>\n \
<total_credit>1.000000</total_credit>\n <expavg_credit>0.500000</expavg_credit>\n \
<expavg_time>0.000000</expavg_time>\n <create_time>1500000003</create_time>\n <country></country>\n</team>\n"
    ), "{team}");
    for (name, text, wrapper) in [
        ("user", &user, "users"),
        ("host", &host, "hosts"),
        ("host_detail", &detail, "hosts"),
        ("team", &team, "teams"),
    ] {
        check_xml(name, text, wrapper);
    }
}

#[tokio::test]
async fn compression_splitting_and_sort_orders() {
    let f = fixture().await;
    f.set_statsexport(false).await;
    let spec = f.spec(
        "split.xml",
        "<enumeration><table>user</table><filename>user_total</filename><sort>total_credit</sort>\
           <output><recs_per_file>3</recs_per_file></output>\
           <output><compression>gzip</compression></output>\
           <output><compression>zip</compression><recs_per_file>5</recs_per_file></output>\
           <output><compression>zip</compression></output></enumeration>\
         <enumeration><table>host</table><filename>host_avg</filename><sort>expavg_credit</sort>\
           <output><compression>gzip</compression><recs_per_file>4</recs_per_file></output></enumeration>\
         <enumeration><table>user</table><filename>user_id</filename><sort>id</sort>\
           <output><compression>gzip</compression><recs_per_file>100</recs_per_file></output></enumeration>\
         <enumeration><table>team</table><filename>team_a</filename><output/></enumeration>\
         <enumeration><table>team</table><filename>team_b</filename><sort>total_credit</sort><output/></enumeration>",
        false,
    );
    f.dump(&spec, "").await.unwrap();
    let dir = f.stats_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "db_dump.xml",
            "host_avg_0.gz",
            "host_avg_1.gz",
            "host_avg_2.gz",
            "tables.xml",
            "team_a",
            "team_b",
            "user_id_0.gz",
            "user_total.gz",
            "user_total.zip",
            "user_total_0",
            "user_total_0.zip",
            "user_total_1",
            "user_total_1.zip",
            "user_total_2",
        ]
        .map(String::from)
    );
    // total_credit descending: 5 (300), 1 (100.5), 2 (50), 4, 11, 3, 9, 10.
    let by_credit = vec![5, 1, 2, 4, 11, 3, 9, 10];
    let mut split = Vec::new();
    for (i, n) in [(0, 3), (1, 3), (2, 2)] {
        let name = format!("user_total_{i}");
        let t = read_file(&dir.join(&name));
        check_xml(&name, &t, "users");
        assert_eq!(ids(&t).len(), n, "{name}");
        split.extend(ids(&t));
    }
    assert_eq!(split, by_credit);
    let mut zsplit = Vec::new();
    for i in 0..2 {
        zsplit.extend(ids(&read_file(&dir.join(format!("user_total_{i}.zip")))));
    }
    assert_eq!(zsplit, by_credit);
    for n in ["user_total.gz", "user_total.zip"] {
        let t = read_file(&dir.join(n));
        check_xml(n, &t, "users");
        assert_eq!(ids(&t), by_credit, "{n}");
    }
    // Hosts by expavg_credit (all 1.25): ties broken by id.
    let mut hosts = Vec::new();
    for i in 0..3 {
        hosts.extend(ids(&read_file(&dir.join(format!("host_avg_{i}.gz")))));
    }
    assert_eq!(hosts, vec![101, 103, 104, 108, 109, 110, 111, 112, 113]);
    assert_eq!(
        ids(&read_file(&dir.join("user_id_0.gz"))),
        vec![1, 2, 3, 4, 5, 9, 10, 11]
    );
    assert_eq!(ids(&read_file(&dir.join("team_b"))), vec![1, 3]);
    // Two team enumerations: teams still counted once.
    assert_eq!(tables(&f).get("nteams_total"), Some("2"));

    // Standard tools accept what we wrote.
    for n in &names {
        let p = dir.join(n);
        if n.ends_with(".gz") {
            let o = Command::new("gzip")
                .arg("-t")
                .arg(&p)
                .output()
                .expect("gzip installed");
            assert!(
                o.status.success(),
                "gzip -t {n}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            // mtime 0 in the header (bytes 4..8).
            assert_eq!(&std::fs::read(&p).unwrap()[4..8], &[0, 0, 0, 0], "{n}");
        }
        if n.ends_with(".zip") {
            let o = Command::new("unzip")
                .arg("-t")
                .arg(&p)
                .output()
                .expect("unzip installed (apt-get install unzip; .ci/run does)");
            assert!(
                o.status.success(),
                "unzip -t {n}: {}",
                String::from_utf8_lossy(&o.stdout)
            );
        }
    }
}

#[tokio::test]
async fn republish_archives_previous_dump() {
    let f = fixture().await;
    let spec = f.spec(
        "a.xml",
        "<enumeration><table>user</table><filename>user</filename><output><compression>gzip</compression></output></enumeration>",
        true,
    );
    f.dump(&spec, "").await.unwrap();
    let first = std::fs::read_to_string(f.stats_dir().join("tables.xml")).unwrap();
    // Change data, dump again: the new dump is published, the old archived.
    f.set_statsexport(false).await;
    f.dump(&spec, "").await.unwrap();
    assert_eq!(ids(&read_file(&f.stats_dir().join("user.gz"))).len(), 8);
    let archived: Vec<_> = std::fs::read_dir(f.dir.path().join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(archived.len(), 1);
    assert!(archived[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("stats_"));
    assert_eq!(
        std::fs::read_to_string(archived[0].join("tables.xml")).unwrap(),
        first
    );
    assert_eq!(
        ids(&read_file(&archived[0].join("user.gz"))),
        vec![1, 5, 10]
    );
}

#[tokio::test]
async fn error_before_publish_leaves_previous_dump() {
    let f = fixture().await;
    let spec = f.standard_spec();
    f.dump(&spec, "").await.unwrap();
    let before = snapshot(&f.stats_dir());
    // Every data file gets written, then copying the spec fails.
    let config = boinc_db::ProjectConfig::load(&f.config("")).unwrap();
    let loaded = boinc_db_dump::DumpSpec::load(&spec).unwrap();
    std::fs::remove_file(&spec).unwrap();
    f.set_statsexport(false).await;
    let r = boinc_db_dump::run(boinc_db_dump::Options {
        config: boinc_db_dump::DumpConfig::new(&config, None).unwrap(),
        spec: loaded,
        level: 1,
        jobs: 2,
        progress: None,
    })
    .await;
    // The failure the case is built for, not just any: reading the spec
    // file (gone) for its copy into the new dump.
    match r {
        Err(boinc_db_dump::DumpError::Io { what, source }) => {
            assert_eq!(what, format!("read {}", spec.display()));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{source}");
        }
        other => panic!("expected the spec copy to fail, got {other:?}"),
    }
    assert_eq!(snapshot(&f.stats_dir()), before);
    assert!(
        !f.dir.path().join("stats_tmp").exists(),
        "half-built dump removed"
    );
}

fn snapshot(dir: &std::path::Path) -> BTreeSet<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn killed_connection_fails_the_run_and_keeps_previous_dump() {
    use mysql_async::prelude::*;
    let f = fixture().await;
    let spec = f.standard_spec();
    let config = f.config("");
    let bin = env!("CARGO_BIN_EXE_db_dump");
    // First a good dump, through the binary with BOINC's flag spellings.
    let ok = Command::new(bin)
        .args(["--config"])
        .arg(&config)
        .arg("-dump_spec")
        .arg(&spec)
        .args(["-d", "2"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let summary = String::from_utf8_lossy(&ok.stdout);
    assert!(
        summary.contains("user") && summary.contains("tables.xml"),
        "{summary}"
    );
    let before = snapshot(&f.stats_dir());

    // Hold the host table so the dump's host query waits, then kill that
    // connection from outside.
    let mut locker = f.db.conn().await;
    locker.query_drop("LOCK TABLES host WRITE").await.unwrap();
    let child = Command::new(bin)
        .arg("--config")
        .arg(&config)
        .arg("--dump-spec")
        .arg(&spec)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut admin = f.db.conn().await;
    let my_ids: Vec<u64> = vec![locker.id() as u64, admin.id() as u64];
    let mut killed = false;
    for _ in 0..200 {
        let waiting: Vec<(u64, Option<String>)> = admin
            .exec(
                "SELECT id, info FROM information_schema.processlist WHERE db = ? AND info LIKE '%host%'",
                (f.db.settings.name.clone(),),
            )
            .await
            .unwrap();
        if let Some((id, _)) = waiting.iter().find(|(id, _)| !my_ids.contains(id)) {
            admin.query_drop(format!("KILL {id}")).await.unwrap();
            killed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    locker.query_drop("UNLOCK TABLES").await.unwrap();
    assert!(killed, "the dump never queried the host table");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !out.status.success(),
        "a killed connection must fail the run"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("published dump is unchanged"), "{err}");
    assert_eq!(snapshot(&f.stats_dir()), before);
    assert!(!f.dir.path().join("stats_tmp").exists());
}

#[tokio::test]
async fn bad_spec_is_refused() {
    let f = fixture().await;
    let spec = f.spec(
        "bad.xml",
        "<enumeration><table>users</table><filename>u</filename><output/></enumeration>",
        false,
    );
    let out = Command::new(env!("CARGO_BIN_EXE_db_dump"))
        .arg("--config")
        .arg(f.config(""))
        .arg("--dump-spec")
        .arg(&spec)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown table 'users'"));
    assert!(!f.stats_dir().exists());
}
