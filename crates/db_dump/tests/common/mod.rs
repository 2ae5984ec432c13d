//! Shared fixture for the db_dump tests: a hand-made BOINC database where
//! every user/host exercises one rule, plus helpers to run a dump and read
//! its files back (strictly parsed).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use boinc_db::testing::TestDb;
use boinc_db::ProjectConfig;
use boinc_db_dump::{DumpSpec, Options, Summary};
use mysql_async::prelude::*;

pub const DAY: i64 = 86400;

pub struct Fixture {
    pub db: TestDb,
    pub dir: tempfile::TempDir,
    pub now: i64,
    pub statsexport: i64,
}

pub fn cross_project_id(id: i64) -> String {
    format!("{id:032x}")
}

pub fn email(id: i64) -> String {
    format!("user{id}@example.org")
}

/// md5(cross_project_id . email_addr), computed independently of the crate.
pub fn expected_cpid(id: i64) -> String {
    let out = std::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .expect("stdin")
                .write_all(format!("{}{}", cross_project_id(id), email(id)).as_bytes())?;
            c.wait_with_output()
        })
        .expect("md5sum");
    String::from_utf8_lossy(&out.stdout)[..32].to_owned()
}

pub struct U<'a> {
    pub id: i64,
    pub name: &'a str,
    pub auth: &'a str,
    pub credit: f64,
    pub expavg: f64,
    pub teamid: i64,
    pub show_hosts: i64,
    pub country: &'a str,
    pub url: &'a str,
    pub has_profile: i64,
}

impl Default for U<'_> {
    fn default() -> Self {
        U {
            id: 0,
            name: "",
            auth: "",
            credit: 0.0,
            expavg: 0.0,
            teamid: 0,
            show_hosts: 1,
            country: "",
            url: "",
            has_profile: 0,
        }
    }
}

pub async fn add_user(c: &mut mysql_async::Conn, u: U<'_>) {
    let name = if u.name.is_empty() {
        format!("user {}", u.id)
    } else {
        u.name.to_owned()
    };
    let auth = if u.auth.is_empty() {
        format!("auth{}", u.id)
    } else {
        u.auth.to_owned()
    };
    c.exec_drop(
        "INSERT INTO user SET id=?, create_time=?, email_addr=?, name=?, authenticator=?, \
         country=?, postal_code='', total_credit=?, expavg_credit=?, expavg_time=1700000000.5, \
         teamid=?, venue='', url=?, send_email=1, show_hosts=?, posts=0, seti_id=0, \
         seti_nresults=0, seti_last_result_time=0, seti_total_cpu=0, has_profile=?, \
         cross_project_id=?, passwd_hash='x', email_validated=1, donated=0",
        mysql_async::Params::Positional(vec![
            u.id.into(),
            (1600000000 + u.id % 1_000_000).into(),
            email(u.id).into(),
            name.into(),
            auth.into(),
            u.country.into(),
            u.credit.into(),
            u.expavg.into(),
            u.teamid.into(),
            u.url.into(),
            u.show_hosts.into(),
            u.has_profile.into(),
            cross_project_id(u.id).into(),
        ]),
    )
    .await
    .expect("insert user");
}

pub async fn add_host(
    c: &mut mysql_async::Conn,
    id: i64,
    userid: i64,
    credit: f64,
    domain: Option<&str>,
    misc: &str,
) {
    c.exec_drop(
        "INSERT INTO host SET id=?, create_time=1500000000, userid=?, rpc_seqno=0, \
         rpc_time=1700000001, total_credit=?, expavg_credit=1.25, expavg_time=1700000002, \
         timezone=-3600, domain_name=?, serialnum='', last_ip_addr='', nsame_ip_addr=0, \
         on_frac=1, connected_frac=1, active_frac=1, cpu_efficiency=1, \
         duration_correction_factor=1, p_ncpus=8, p_vendor='GenuineIntel', \
         p_model='Core <i7> & more', p_fpops=3500000000.5, p_iops=12000000000, p_membw=1e9, \
         os_name='Linux', os_version='6.1', m_nbytes=17179869184, m_cache=2097152, \
         m_swap=8589934592, d_total=500000000000, d_free=250000000000, d_boinc_used_total=0, \
         d_boinc_used_project=0, d_boinc_max=0, n_bwup=1000000, n_bwdown=5000000, \
         credit_per_cpu_sec=0.0125, venue='', nresults_today=0, avg_turnaround=3600.25, \
         host_cpid=?, external_ip_addr='', max_results_day=0, error_rate=0, product_name='', \
         gpu_active_frac=0, p_ngpus=0, p_gpu_fpops=0, misc=?",
        (
            id,
            userid,
            credit,
            domain,
            format!("hostcpid{id:024}"),
            misc,
        ),
    )
    .await
    .expect("insert host");
}

pub async fn consent(c: &mut mysql_async::Conn, userid: i64, type_id: i64, time: i64, flag: i64) {
    c.exec_drop(
        "INSERT INTO consent (userid, consent_type_id, consent_time, consent_flag, \
         consent_not_required, source) VALUES (?, ?, ?, ?, 0, 'test')",
        (userid, type_id, time, flag),
    )
    .await
    .expect("insert consent");
}

pub const NAME_10: &str = "Zoë\t<b>&\"'\nline\r\u{1}x]]>y 😀";

/// Users (consent state -> expected with STATSEXPORT enabled):
///  1 consented, team 1 founder                       -> exported
///  2 consented, withdrew 10 days ago                 -> optout
///  3 never asked                                     -> only when no filter
///  4 1 and 0 in the same second (0 later)            -> optout
///  5 0 and 1 in the same second (1 later)            -> exported
///  6 deleted ('deleted...'), consented               -> never
///  7 deleted ('DELETED...'), consented               -> never
///  8 consented, zero credit                          -> never
///  9 consented, withdrew 90 days ago                 -> neither
/// 10 consented, hostile name/country/url             -> exported
/// 11 declined only (never consented), recently       -> neither
pub async fn fixture() -> Fixture {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    let now = boinc_db::now();
    let se: i64 = c
        .query_first("SELECT id FROM consent_type WHERE shortname='STATSEXPORT'")
        .await
        .unwrap()
        .expect("STATSEXPORT type");
    c.query_drop("UPDATE consent_type SET enabled=1 WHERE shortname='STATSEXPORT'")
        .await
        .unwrap();
    let u = |id, credit| U {
        id,
        credit,
        expavg: credit / 10.0,
        ..U::default()
    };
    add_user(
        &mut c,
        U {
            name: "Alice & <Bob>",
            teamid: 1,
            country: "Germany",
            url: "http://alice.example/?a=1&b=2",
            has_profile: 1,
            ..u(1, 100.5)
        },
    )
    .await;
    add_user(
        &mut c,
        U {
            teamid: 1,
            ..u(2, 50.0)
        },
    )
    .await;
    add_user(
        &mut c,
        U {
            teamid: 1,
            ..u(3, 10.0)
        },
    )
    .await;
    add_user(&mut c, u(4, 40.0)).await;
    add_user(
        &mut c,
        U {
            teamid: 1,
            show_hosts: 0,
            ..u(5, 300.0)
        },
    )
    .await;
    add_user(
        &mut c,
        U {
            auth: "deleted_1700000000",
            teamid: 1,
            ..u(6, 5.0)
        },
    )
    .await;
    add_user(
        &mut c,
        U {
            auth: "DELETED_x",
            ..u(7, 6.0)
        },
    )
    .await;
    add_user(&mut c, u(8, 0.0)).await;
    add_user(&mut c, u(9, 9.0)).await;
    add_user(
        &mut c,
        U {
            name: NAME_10,
            country: "Côte d'Ivoire & <x>",
            url: "http://x/?a=1&b=<2>",
            ..u(10, 1.5)
        },
    )
    .await;
    add_user(&mut c, u(11, 11.0)).await;
    let old = now - 400 * DAY;
    for id in [1, 2, 6, 7, 8, 9, 10] {
        consent(&mut c, id, se, old, 1).await;
    }
    consent(&mut c, 2, se, now - 10 * DAY, 0).await;
    consent(&mut c, 9, se, now - 90 * DAY, 0).await;
    let tie = now - 5 * DAY;
    consent(&mut c, 4, se, tie, 1).await;
    consent(&mut c, 4, se, tie, 0).await;
    consent(&mut c, 5, se, tie, 0).await;
    consent(&mut c, 5, se, tie, 1).await;
    consent(&mut c, 11, se, now - DAY, 0).await;
    // An ENROLL row must not count as statistics consent.
    boinc_db::testing::fixtures::enroll(&mut c, 3, old, "t").await;

    add_host(&mut c, 101, 1, 10.0, Some("box1"), "").await;
    add_host(&mut c, 102, 1, 0.0, Some("box2"), "").await;
    add_host(&mut c, 103, 3, 5.0, Some("box3"), "").await;
    add_host(&mut c, 104, 2, 5.0, Some("box4"), "").await;
    add_host(&mut c, 105, 0, 5.0, Some("deleted"), "").await;
    add_host(&mut c, 106, 1, 5.0, Some("Deleted"), "").await;
    add_host(&mut c, 107, 1, 5.0, Some("deleted "), "").await;
    add_host(&mut c, 108, 1, 5.0, Some("deleted-box"), "").await;
    add_host(&mut c, 109, 5, 7.0, Some("box9"), "").await;
    add_host(&mut c, 110, 4, 5.0, Some("box10"), "").await;
    add_host(&mut c, 111, 10, 1.0, Some("box11"), "gpu]]>x\nline2\t<&>").await;
    add_host(&mut c, 112, 999, 1.0, Some("orphan"), "").await;
    add_host(&mut c, 113, 1, 2.0, None, "").await;
    add_host(&mut c, 114, 2, 0.0, Some("box14"), "").await;

    c.query_drop(
        "INSERT INTO team (id, create_time, userid, name, name_lc, url, type, name_html, \
         description, nusers, country, total_credit, expavg_credit, expavg_time) VALUES \
         (1, 1500000001, 1, 'Team <A> & co', 'team <a> & co', 'http://t.example/?x=1&y=2', 2, \
          '<b>A</b>', 'We & <you>', 5, 'Côte d''Ivoire', 500.25, 20.5, 1700000003), \
         (2, 1500000002, 3, 'Zero team', 'zero team', '', 1, '', '', 0, '', 0, 0, 0), \
         (3, 1500000003, 999, 'Orphan team', 'orphan team', '', 1, '', '', 0, '', 1, 0.5, 0)",
    )
    .await
    .unwrap();
    c.query_drop(
        "INSERT INTO user_deleted VALUES (6, 'ud6cpid', 1700000000), (7, 'ud7cpid', 1700000000)",
    )
    .await
    .unwrap();
    c.query_drop("INSERT INTO host_deleted VALUES (105, 'hd105cpid', 1700000000)")
        .await
        .unwrap();
    c.query_drop(
        "INSERT INTO app (create_time, name, user_friendly_name) VALUES (1, 'a', 'App <One> & Co')",
    )
    .await
    .unwrap();
    c.disconnect().await.unwrap();
    Fixture {
        dir: tempfile::tempdir().unwrap(),
        db,
        now,
        statsexport: se,
    }
}

impl Fixture {
    pub async fn set_statsexport(&self, enabled: bool) {
        let mut c = self.db.conn().await;
        c.query_drop(format!(
            "UPDATE consent_type SET enabled={} WHERE shortname='STATSEXPORT'",
            enabled as i32
        ))
        .await
        .unwrap();
    }

    /// A database without a STATSEXPORT type (types cannot be deleted, so
    /// it is renamed away).
    pub async fn rename_statsexport_away(&self) {
        let mut c = self.db.conn().await;
        c.query_drop(
            "UPDATE consent_type SET shortname='OTHER', enabled=1 WHERE shortname='STATSEXPORT'",
        )
        .await
        .unwrap();
    }

    pub fn stats_dir(&self) -> PathBuf {
        self.dir.path().join("stats")
    }

    /// Write a spec with these enumerations (XML inside the root).
    pub fn spec(&self, name: &str, enumerations: &str, archive: bool) -> PathBuf {
        let d = self.dir.path();
        let archive = if archive {
            format!("<archive_dir>{}</archive_dir>", d.join("archive").display())
        } else {
            String::new()
        };
        let xml = format!(
            "<boinc_db_dump_spec>\n<output_dir>{}</output_dir>\n<final_output_dir>{}</final_output_dir>\n{archive}\n{enumerations}\n</boinc_db_dump_spec>\n",
            d.join("stats_tmp").display(),
            d.join("stats").display()
        );
        let p = d.join(name);
        std::fs::write(&p, xml).unwrap();
        p
    }

    pub fn standard_spec(&self) -> PathBuf {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/db_dump_spec.xml"),
        )
        .unwrap();
        let d = self.dir.path();
        let text = text
            .replace(
                "<output_dir>html/stats_tmp</output_dir>",
                &format!("<output_dir>{}</output_dir>", d.join("stats_tmp").display()),
            )
            .replace(
                "<final_output_dir>html/stats</final_output_dir>",
                &format!(
                    "<final_output_dir>{}</final_output_dir>",
                    d.join("stats").display()
                ),
            );
        let p = d.join("standard_spec.xml");
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn config(&self, extra: &str) -> PathBuf {
        self.db
            .write_project(&self.dir.path().join("project"), extra, None)
    }

    pub async fn dump(
        &self,
        spec: &Path,
        extra_config: &str,
    ) -> Result<Summary, boinc_db_dump::DumpError> {
        let config = ProjectConfig::load(&self.config(extra_config)).unwrap();
        let spec = DumpSpec::load(spec).unwrap();
        boinc_db_dump::run(Options {
            config: boinc_db_dump::DumpConfig::new(&config, None)?,
            spec,
            level: 6,
            jobs: 3,
            progress: None,
        })
        .await
    }
}

/// A published file's XML text (gz and zip decompressed).
pub fn read_file(path: &Path) -> String {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let bytes = if name.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else if name.ends_with(".zip") {
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(raw)).unwrap();
        assert_eq!(z.len(), 1, "{name}: one entry");
        let mut f = z.by_index(0).unwrap();
        assert_eq!(f.name().unwrap(), name.trim_end_matches(".zip"));
        let mut out = Vec::new();
        f.read_to_end(&mut out).unwrap();
        out
    } else {
        raw
    };
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("{name} is not UTF-8: {e}"))
}

/// Parse strictly and check the line discipline stats sites rely on.
pub fn check_xml(name: &str, text: &str, wrapper: &str) {
    roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("{name} is not XML: {e}\n{text}"));
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("<?xml version=\"1.0\" encoding=\"utf-8\"?>"),
        "{name}"
    );
    assert_eq!(
        lines.next(),
        Some(format!("<{wrapper}>").as_str()),
        "{name}"
    );
    assert!(text.ends_with(&format!("</{wrapper}>\n")), "{name}");
    assert!(!text.contains('\r'), "{name}: CR");
}

/// ids of the records of published file `name` (root element `wrapper`,
/// checked strictly), in order.
pub fn ids_of(f: &Fixture, name: &str, wrapper: &str) -> Vec<i64> {
    let text = read_file(&f.stats_dir().join(name));
    check_xml(name, &text, wrapper);
    ids(&text)
}

/// ids of the records of a file, in order.
pub fn ids(text: &str) -> Vec<i64> {
    let doc = roxmltree::Document::parse(text).unwrap();
    doc.root_element()
        .children()
        .filter(|n| n.is_element())
        .map(|n| child(n, "id").parse().unwrap())
        .collect()
}

pub fn child<'a>(n: roxmltree::Node<'a, 'a>, name: &str) -> &'a str {
    n.children()
        .find(|c| c.has_tag_name(name))
        .and_then(|c| c.text())
        .unwrap_or("")
}

/// Records as id -> element, for field checks.
pub fn records(text: &str) -> BTreeMap<i64, BTreeMap<String, String>> {
    let doc = roxmltree::Document::parse(text).unwrap();
    doc.root_element()
        .children()
        .filter(|n| n.is_element())
        .map(|n| {
            let fields = n
                .children()
                .filter(|c| c.is_element())
                .map(|c| {
                    let t: String = c
                        .descendants()
                        .filter(|d| d.is_text())
                        .filter_map(|d| d.text())
                        .collect();
                    (c.tag_name().name().to_owned(), t)
                })
                .collect();
            (child(n, "id").parse().unwrap(), fields)
        })
        .collect()
}
