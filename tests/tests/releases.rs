//! Every upstream server release since consent existed, through every
//! binary: a database as that release's make_project leaves it
//! (`boinc_db::testing::releases`: 1.0.4, 1.2.1, 1.3.0, 1.4.7, 1.6.2,
//! master), in utf8mb4 and in latin1 tables, holding what the release's
//! PHP and scheduler wrote (names as PHP stored them, hosts with the
//! client's serialnum, consent rows, a forum post, an old deletion
//! record). On it, one after another: `boinc-ops db upgrade` (twice),
//! consent types enabled, boinc-rpc (get_project_config, create_account
//! with consent and a team, lookup_account, am_get_info, am_set_info
//! alone and grouped), db_dump as the release's task runs it with the
//! release's spec (host records byte for byte as that release's db_dump
//! writes them), the consent report and a history, account export and
//! delete, retention purge, and db_dump again.

mod common;

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use boinc_db::testing::releases::Release;
use boinc_db::testing::{free_port, write_made_project, TestDb};
use boinc_db::text::charset::Charset;
use common::{bin_dir, no_proxy_env, passwd_hash, short_hostname, wait_http};
use mysql_async::prelude::*;

const TERMS: &str = "Terms of use of the release project.";
const LEGACY_NAME: &str = "Jörg 李 🚀";
const TEAM_NAME: &str = "Team Ω";
const NEW_NAME: &str = "Zoë Ünïcode";

/// Real clients' serialnum strings (as the scheduler stores them).
const SERIALNUMS: [&str; 3] = [
    "[BOINC|7.16.21][CUDA|NVIDIA GeForce GTX 1060 6GB|1|6144MB|46027|102][vbox|6.1.26|1|1]",
    "[BOINC|7.6.22][CAL|ATI Radeon HD 5800/5900 series (Cypress/Hemlock)|2|1024MB|1.4.1848|102][vbox|5.1.26]",
    "[BOINC|8.0.2|Charity Engine][CUDA|NVIDIA GeForce RTX 3080|1|10240MB|53741|300][INTEL|Intel(R) UHD Graphics 770|1|6383MB||300]",
];
const OPS_PASS: &str = "ops-admin-password";
const MISC: &str = r#"{"gpus":[{"type":"NVIDIA","count":1}],"docker":"24.0.5"}"#;

struct Rpc(Child);

impl Drop for Rpc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Env {
    dir: PathBuf,
    tmp: PathBuf,
    config: PathBuf,
    bins: PathBuf,
}

impl Env {
    /// A binary of ours as BOINC starts tasks: cwd tmp_HOST, config.xml
    /// found as ../config.xml.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let mut c = Command::new(self.bins.join(program));
        c.args(args)
            .current_dir(&self.tmp)
            .env_remove("BOINC_PROJECT_DIR")
            .env_remove("BOINC_DATABASE_URL")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        no_proxy_env(&mut c);
        c.output().unwrap()
    }

    fn ok(&self, program: &str, args: &[&str]) -> String {
        let out = self.run(program, args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{program} {args:?}: {text}");
        text
    }

    fn gz(&self, name: &str) -> String {
        let bytes = std::fs::read(self.dir.join("html/stats").join(name)).unwrap();
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .unwrap();
        s
    }
}

/// The host record that release's db_dump writes for host 1 (detail
/// output, owner showing hosts).
fn expected_host_1(release: Release) -> String {
    let details = if release.has_host_misc() {
        format!("    <misc><![CDATA[{MISC}]]></misc>\n")
    } else {
        "    <boinc_version>[BOINC|7.16.21]</boinc_version>\n    \
         <vbox_version>[vbox|6.1.26|1|1]</vbox_version>\n    \
         <coprocs>[CUDA|NVIDIA GeForce GTX 1060 6GB|1|6144MB|46027|102]</coprocs>\n"
            .to_owned()
    };
    format!(
        "<host>\n    <id>1</id>\n    <userid>1</userid>\n    <total_credit>50.000000</total_credit>\n    \
         <expavg_credit>2.500000</expavg_credit>\n    <expavg_time>1600000000.000000</expavg_time>\n    \
         <p_vendor>GenuineIntel</p_vendor>\n    \
         <p_model>Intel(R) Core(TM) i5-8400 CPU @ 2.80GHz [Family 6 Model 158 Stepping 10]</p_model>\n    \
         <os_name>Microsoft Windows 10</os_name>\n    \
         <os_version>Core x64 Edition, (10.00.19045.00)</os_version>\n{details}  \
         <create_time>1500000000</create_time>\n  <rpc_time>1600000000</rpc_time>\n  \
         <timezone>3600</timezone>\n  <ncpus>6</ncpus>\n  <p_fpops>4500000000.000000</p_fpops>\n  \
         <p_iops>15000000000.000000</p_iops>\n  <p_membw>1000000000.000000</p_membw>\n  \
         <m_nbytes>17095000064.000000</m_nbytes>\n  <m_cache>9437184.000000</m_cache>\n  \
         <m_swap>19595000064.000000</m_swap>\n  <d_total>499000000000.000000</d_total>\n  \
         <d_free>123000000000.000000</d_free>\n  <n_bwup>0.000000</n_bwup>\n  \
         <n_bwdown>0.000000</n_bwdown>\n  <avg_turnaround>86400.000000</avg_turnaround>\n  \
         <credit_per_cpu_sec>0.000000</credit_per_cpu_sec>\n  \
         <host_cpid>0123456789abcdef0123456789abcdef</host_cpid>\n</host>\n"
    )
}

/// What the release's PHP and scheduler left in the database.
async fn legacy_rows(db: &TestDb, release: Release, cs: Charset) {
    // PHP's connection: latin1 on a latin1 database (UTF-8 bytes stored
    // as they are), utf8mb4 otherwise.
    let mut c = match cs {
        Charset::Latin1 => db.php_latin1_conn().await,
        Charset::Utf8mb4 => db.conn().await,
    };
    let user = "INSERT INTO user (id, create_time, email_addr, name, authenticator, country, \
        total_credit, expavg_credit, expavg_time, teamid, venue, send_email, show_hosts, posts, \
        seti_id, seti_nresults, seti_last_result_time, seti_total_cpu, has_profile, \
        cross_project_id, passwd_hash, email_validated, donated) \
        VALUES (?, 1400000000, ?, ?, ?, 'Germany', ?, 1, 1600000000, ?, '', 1, 1, 0, 0, 0, 0, 0, \
        0, ?, ?, 1, 0)";
    let legacy_email = "legacy@example.com";
    c.exec_drop(
        user,
        (
            1,
            legacy_email,
            LEGACY_NAME,
            "0000000000000000000000000000aaaa",
            100.0,
            1,
            "cpid0000000000000000000000000001",
            passwd_hash("legacy-pw", legacy_email),
        ),
    )
    .await
    .unwrap();
    // Releases before 1.6 allow two accounts of one name.
    let twin = if release.has_host_misc() {
        "Twin 2"
    } else {
        "Twin"
    };
    for (id, name) in [(2, "Twin"), (3, twin)] {
        c.exec_drop(
            user,
            (
                id,
                format!("twin{id}@example.com"),
                name,
                format!("0000000000000000000000000000bbb{id}"),
                0.0,
                0,
                format!("cpid000000000000000000000000000{id}"),
                passwd_hash("x", "x"),
            ),
        )
        .await
        .unwrap();
    }
    c.exec_drop(
        "INSERT INTO team (id, create_time, userid, name, name_lc, url, type, name_html, \
         description, nusers, country, total_credit, expavg_credit, expavg_time) \
         VALUES (1, 1400000000, 1, ?, ?, '', 1, '', 'Ω team', 1, 'International', 100, 1, 1600000000)",
        (TEAM_NAME, TEAM_NAME.to_lowercase()),
    )
    .await
    .unwrap();
    let misc = if release.has_host_misc() {
        ", misc"
    } else {
        ""
    };
    for (id, serialnum, credit) in [
        (1, SERIALNUMS[0], 50.0),
        (2, SERIALNUMS[1], 5.0),
        (3, SERIALNUMS[2], 1.0),
    ] {
        c.exec_drop(
            format!(
                "INSERT INTO host (id, create_time, userid, rpc_seqno, rpc_time, total_credit, \
                 expavg_credit, expavg_time, timezone, domain_name, serialnum, last_ip_addr, \
                 nsame_ip_addr, on_frac, connected_frac, active_frac, cpu_efficiency, \
                 duration_correction_factor, p_ncpus, p_vendor, p_model, p_fpops, p_iops, p_membw, \
                 os_name, os_version, m_nbytes, m_cache, m_swap, d_total, d_free, \
                 d_boinc_used_total, d_boinc_used_project, d_boinc_max, n_bwup, n_bwdown, \
                 credit_per_cpu_sec, venue, nresults_today, avg_turnaround, host_cpid, \
                 external_ip_addr, max_results_day, product_name, gpu_active_frac, p_ngpus, \
                 p_gpu_fpops{misc}) VALUES (?, 1500000000, 1, 1, 1600000000, ?, 2.5, 1600000000, \
                 3600, ?, ?, '10.0.0.1', 0, 1, 1, 1, 1, 1, 6, 'GenuineIntel', \
                 'Intel(R) Core(TM) i5-8400 CPU @ 2.80GHz [Family 6 Model 158 Stepping 10]', \
                 4.5e9, 1.5e10, 1e9, 'Microsoft Windows 10', 'Core x64 Edition, (10.00.19045.00)', \
                 17095000064, 9437184, 19595000064, 499000000000, 123000000000, 0, 0, 0, 0, 0, 0, \
                 '', 0, 86400, ?, '', 0, '', 0, 0, 0{})",
                if release.has_host_misc() { ", ?" } else { "" }
            ),
            {
                let mut p: Vec<mysql_async::Value> = vec![
                    id.into(),
                    credit.into(),
                    format!("box{id}").into(),
                    serialnum.into(),
                    if id == 1 {
                        "0123456789abcdef0123456789abcdef".into()
                    } else {
                        format!("{id:032}").into()
                    },
                ];
                if release.has_host_misc() {
                    p.push(MISC.into());
                }
                p
            },
        )
        .await
        .unwrap();
    }
    // STATSEXPORT given on the release's web site; a forum post; an old
    // deletion record and an expired token.
    c.query_drop(
        "INSERT INTO consent (userid, consent_type_id, consent_time, consent_flag, \
         consent_not_required, source) SELECT 1, id, 1500000000, 1, 0, 'Webpage' \
         FROM consent_type WHERE shortname = 'STATSEXPORT'",
    )
    .await
    .unwrap();
    c.query_drop(
        "INSERT INTO thread (id, forum, owner, status, title, timestamp, views, replies, activity, \
         sufferers, score, votes, create_time, hidden) VALUES (1, 1, 1, 0, 'Hello', 1, 0, 0, 0, 0, 0, 0, 1, 0)",
    )
    .await
    .unwrap();
    c.exec_drop(
        "INSERT INTO post (id, thread, user, timestamp, content, modified, parent_post, score, \
         votes, hidden) VALUES (1, 1, 1, 1, ?, 0, 0, 0, 0, 0)",
        (format!("Grüße from {LEGACY_NAME}"),),
    )
    .await
    .unwrap();
    c.query_drop(
        "INSERT INTO user_deleted (userid, public_cross_project_id, create_time) \
         VALUES (99, 'gone', 1000)",
    )
    .await
    .unwrap();
    c.query_drop(
        "INSERT INTO token (token, userid, type, create_time, expire_time) \
         VALUES ('expiredtoken', 1, 'D', 1000, 2000)",
    )
    .await
    .unwrap();
    c.disconnect().await.ok();
}

async fn get(client: &reqwest::Client, base: &str, rpc: &str, params: &[(&str, &str)]) -> String {
    client
        .get(format!("{base}{rpc}"))
        .query(params)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn element(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let from = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{name}> in {xml}"))
        + open.len();
    let to = xml[from..].find(&format!("</{name}>")).unwrap() + from;
    xml[from..to].to_owned()
}

fn records<'a>(file: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>\n");
    let close = format!("</{tag}>\n");
    let mut out = Vec::new();
    let mut rest = file;
    while let Some(i) = rest.find(&open) {
        let end = rest[i..].find(&close).unwrap() + i + close.len();
        out.push(&rest[i..end]);
        rest = &rest[end..];
    }
    out
}

async fn release_through_every_binary(release: Release, cs: Charset) {
    let what = format!("{} {cs:?}", release.name());
    let db = TestDb::release(release, cs).await;
    legacy_rows(&db, release, cs).await;

    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("proj");
    let host = short_hostname();
    let config = write_made_project(&dir, &db.settings, "proj", &host);
    std::fs::write(dir.join("terms_of_use.txt"), TERMS).unwrap();
    // config.xml as the project has it, plus what stats sites see.
    let ops_port = free_port();
    let ops_hash = bcrypt::hash_with_result(OPS_PASS, 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    let xml = std::fs::read_to_string(&config).unwrap().replace(
        "    </config>",
        &format!(
            "        <user_country/>\n        <ops_user>admin</ops_user>\n        \
             <ops_password_hash>{ops_hash}</ops_password_hash>\n        \
             <ops_listen>127.0.0.1:{ops_port}</ops_listen>\n    </config>"
        ),
    );
    std::fs::write(&config, xml).unwrap();
    // The release's db_dump_spec.xml as make_project installs it.
    let mut spec = String::from(
        "<boinc_db_dump_spec>\n    <output_dir>../html/stats_tmp</output_dir>\n    \
         <final_output_dir>../html/stats</final_output_dir>\n",
    );
    for (table, detail) in [
        ("user", false),
        ("user_deleted", false),
        ("host", true),
        ("host_deleted", true),
        ("team", false),
    ] {
        spec.push_str(&format!(
            "    <enumeration>\n        <table>{table}</table>\n        <filename>{table}</filename>\n        \
             <output>\n            <compression>gzip</compression>\n{}        </output>\n    </enumeration>\n",
            if detail { "            <detail/>\n" } else { "" }
        ));
    }
    spec.push_str("</boinc_db_dump_spec>\n");
    std::fs::write(dir.join("db_dump_spec.xml"), spec).unwrap();
    let env = Env {
        tmp: dir.join(format!("tmp_{host}")),
        dir: dir.clone(),
        config: config.clone(),
        bins: bin_dir(),
    };

    // db upgrade: adds ours, keeps the release's, twice the same.
    let out = env.ok("boinc-ops", &["db", "upgrade"]);
    let line = format!(
        "tables as upstream server release {}",
        match release {
            Release::R1_0_4 | Release::R1_2_1 =>
                "1.0 to 1.2 (host.serialnum, MyISAM team and forum tables)",
            Release::R1_3_0 | Release::R1_4_7 => "1.3 to 1.4 (host.serialnum)",
            Release::R1_6_2 | Release::Master => "1.6 or later",
        }
    );
    assert!(out.contains(&line), "{what}: {out}");
    assert_eq!(
        out.contains("kept as the release made it (not unique, may hold duplicates): user name"),
        !release.has_host_misc(),
        "{what}: {out}"
    );
    let out = env.ok("boinc-ops", &["db", "upgrade"]);
    assert!(out.contains("schema up to date"), "{what}: {out}");
    env.ok("boinc-ops", &["consent-type", "enable", "ENROLL"]);
    env.ok("boinc-ops", &["consent-type", "enable", "STATSEXPORT"]);

    // boinc-rpc.
    let port = free_port();
    let mut cmd = Command::new(env.bins.join("boinc-rpc"));
    cmd.arg("--config")
        .arg(&env.config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(root.path().join("rpc.log")).unwrap());
    no_proxy_env(&mut cmd);
    let _rpc = Rpc(cmd.spawn().unwrap());
    let base = format!("http://127.0.0.1:{port}/");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let rpc_log = || std::fs::read_to_string(root.path().join("rpc.log")).unwrap_or_default();
    let config_reply = wait_http(&format!("{base}get_project_config.php")).await;
    // ENROLL's state is read every 500 ms: wait for the terms.
    let mut config_reply = config_reply;
    for _ in 0..50 {
        if config_reply.contains("<terms_of_use>") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        config_reply = get(&client, &base, "get_project_config.php", &[]).await;
    }
    assert!(
        config_reply.contains(&format!("<terms_of_use>\n{TERMS}\n</terms_of_use>")),
        "{what}: {config_reply}"
    );

    let email = "new@example.com";
    let hash = passwd_hash("new-pw", email);
    let r = get(
        &client,
        &base,
        "create_account.php",
        &[
            ("email_addr", email),
            ("passwd_hash", &hash),
            ("user_name", NEW_NAME),
            ("team_name", TEAM_NAME),
            ("consent_flag", "1"),
            ("source", "release-test"),
        ],
    )
    .await;
    let key = element(&r, "authenticator");
    // A taken name is refused whatever the release's index.
    let r = get(
        &client,
        &base,
        "create_account.php",
        &[
            ("email_addr", "other@example.com"),
            ("passwd_hash", &hash),
            ("user_name", NEW_NAME),
        ],
    )
    .await;
    assert!(r.contains("<error_num>-188</error_num>"), "{what}: {r}");
    let r = get(
        &client,
        &base,
        "lookup_account.php",
        &[("email_addr", "NEW@example.com"), ("passwd_hash", &hash)],
    )
    .await;
    assert_eq!(element(&r, "authenticator"), key, "{what}");
    // The release's own account (md5 hash stored by its PHP).
    let r = get(
        &client,
        &base,
        "lookup_account.php",
        &[
            ("email_addr", "legacy@example.com"),
            (
                "passwd_hash",
                &passwd_hash("legacy-pw", "legacy@example.com"),
            ),
        ],
    )
    .await;
    assert_eq!(
        element(&r, "authenticator"),
        "0000000000000000000000000000aaaa",
        "{what}"
    );
    let r = get(
        &client,
        &base,
        "am_get_info.php",
        &[("account_key", "0000000000000000000000000000aaaa")],
    )
    .await;
    assert!(r.contains("<success/>"), "{what}: {r}");
    assert_eq!(
        element(&r, "name"),
        "J%C3%B6rg+%E6%9D%8E+%F0%9F%9A%80",
        "{what}: {r}"
    );
    assert!(r.contains("<teamfounder/>"), "{what}: {r}");
    let r = get(&client, &base, "am_get_info.php", &[("account_key", &key)]).await;
    assert_eq!(element(&r, "teamid"), "1", "{what}: {r}");
    let new_id: i64 = element(&r, "id").parse().unwrap();

    // am_set_info alone (profile fields) ...
    let renamed = "Zoë renamed";
    let r = get(
        &client,
        &base,
        "am_set_info.php",
        &[
            ("account_key", &key),
            ("name", renamed),
            ("url", "example.org/zoë"),
        ],
    )
    .await;
    assert!(r.contains("<success/>"), "{what}: {r}");
    // ... a name another account has ...
    let r = get(
        &client,
        &base,
        "am_set_info.php",
        &[("account_key", &key), ("name", "Twin")],
    )
    .await;
    assert!(r.contains("<error_num>-188</error_num>"), "{what}: {r}");
    // ... and grouped (consent only).
    let r = get(
        &client,
        &base,
        "am_set_info.php",
        &[
            ("account_key", &key),
            ("consent_name", "STATSEXPORT"),
            ("consent_flag", "1"),
            ("consent_not_required", "0"),
            ("consent_source", "release-test"),
        ],
    )
    .await;
    assert!(r.contains("<success/>"), "{what}: {r}\n{}", rpc_log());
    let r = get(&client, &base, "am_get_info.php", &[("account_key", &key)]).await;
    assert_eq!(element(&r, "name"), "Zo%C3%AB+renamed", "{what}: {r}");

    // What PHP reads back: the same bytes as its own rows.
    let mut c = match cs {
        Charset::Latin1 => db.php_latin1_conn().await,
        Charset::Utf8mb4 => db.conn().await,
    };
    let name: Vec<u8> = c
        .exec_first("SELECT name FROM user WHERE id = ?", (new_id,))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(name, renamed.as_bytes(), "{what}");
    let flags: Vec<(String, i64, String)> = c
        .exec(
            "SELECT t.shortname, c.consent_flag, c.source FROM consent c \
             JOIN consent_type t ON t.id = c.consent_type_id WHERE c.userid = ? ORDER BY c.id",
            (new_id,),
        )
        .await
        .unwrap();
    assert_eq!(
        flags,
        vec![
            ("ENROLL".to_owned(), 1, "release-test".to_owned()),
            ("STATSEXPORT".to_owned(), 1, "release-test".to_owned()),
        ],
        "{what}"
    );
    let nusers: i64 = c
        .query_first("SELECT nusers FROM team WHERE id = 1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(nusers, 2, "{what}");
    c.exec_drop(
        "UPDATE user SET total_credit = 10, expavg_credit = 1 WHERE id = ?",
        (new_id,),
    )
    .await
    .unwrap();

    // db_dump as the release's task runs it.
    let out = env.ok(
        "db_dump",
        &["-d", "2", "--dump_spec", "../db_dump_spec.xml"],
    );
    let hosts = env.gz("host.gz");
    let host_records = records(&hosts, "host");
    assert_eq!(host_records.len(), 3, "{what}: {hosts}");
    assert_eq!(host_records[0], expected_host_1(release), "{what}");
    for (rec, serialnum) in host_records.iter().zip(SERIALNUMS) {
        assert_eq!(
            rec.contains("<boinc_version>"),
            !release.has_host_misc(),
            "{what}: {rec}"
        );
        assert_eq!(rec.contains("<misc>"), release.has_host_misc(), "{what}");
        if !release.has_host_misc() {
            let boinc = &serialnum[..serialnum.find(']').unwrap() + 1];
            assert!(
                rec.contains(&format!("    <boinc_version>{boinc}</boinc_version>\n")),
                "{what}: {rec}"
            );
        }
    }
    assert!(
        host_records[2].contains(
            "    <boinc_version>[BOINC|8.0.2|Charity Engine]</boinc_version>\n    <coprocs>[CUDA|NVIDIA GeForce RTX 3080|1|10240MB|53741|300][INTEL|Intel(R) UHD Graphics 770|1|6383MB||300]</coprocs>\n"
        ) || release.has_host_misc(),
        "{what}: {}",
        host_records[2]
    );
    let users = env.gz("user.gz");
    assert!(
        users.contains(&format!(" <name>{LEGACY_NAME}</name>\n")),
        "{what}: {users}"
    );
    assert!(
        users.contains(&format!(" <name>{renamed}</name>\n")),
        "{what}"
    );
    assert!(users.contains(" <country>Germany</country>\n"), "{what}");
    let teams = env.gz("team.gz");
    assert!(
        teams.contains(&format!(" <name>{TEAM_NAME}</name>\n")),
        "{what}: {teams}"
    );
    let tables = std::fs::read_to_string(dir.join("html/stats/tables.xml")).unwrap();
    assert!(
        tables.contains("<nusers_total>2</nusers_total>"),
        "{what}: {tables}\n{out}"
    );

    // Consent report and one history.
    let report = env.ok("boinc-ops", &["consent", "report", "--json"]);
    let json: serde_json::Value =
        serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {report}"));
    let text = json.to_string();
    assert!(
        text.contains("STATSEXPORT") && text.contains("ENROLL"),
        "{what}: {text}"
    );
    let history = env.ok(
        "boinc-ops",
        &[
            "consent",
            "history",
            "--user",
            &new_id.to_string(),
            "--json",
        ],
    );
    assert!(history.contains(TERMS), "{what}: {history}");

    // The ops page: consent types, and the release's account with its
    // hosts and team.
    let mut cmd = Command::new(env.bins.join("boinc-ops"));
    cmd.arg("--config")
        .arg(&env.config)
        .arg("serve")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(root.path().join("ops.log")).unwrap());
    no_proxy_env(&mut cmd);
    let _ops = Rpc(cmd.spawn().unwrap());
    let ops = format!("http://127.0.0.1:{ops_port}");
    let mut page = String::new();
    for _ in 0..100 {
        if let Ok(r) = client
            .get(format!("{ops}/"))
            .basic_auth("admin", Some(OPS_PASS))
            .send()
            .await
        {
            assert_eq!(r.status(), 200, "{what}");
            page = r.text().await.unwrap();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(page.contains("STATSEXPORT"), "{what}: ops page {page}");
    let r = client
        .get(format!("{ops}/account?id=1"))
        .basic_auth("admin", Some(OPS_PASS))
        .header("sec-fetch-site", "same-origin")
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "document")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{what}");
    let page = r.text().await.unwrap();
    assert!(page.contains(LEGACY_NAME), "{what}: {page}");

    // Account export and delete of the release's own account (forum post,
    // team founder, hosts).
    let export_path = root.path().join("export.json");
    env.ok(
        "boinc-ops",
        &[
            "account",
            "export",
            "--id",
            "1",
            "--out",
            export_path.to_str().unwrap(),
        ],
    );
    let export = std::fs::read_to_string(&export_path).unwrap();
    for expect in [LEGACY_NAME, SERIALNUMS[0], "Grüße from", TEAM_NAME] {
        assert!(export.contains(expect), "{what}: {expect} not in {export}");
    }
    env.ok(
        "boinc-ops",
        &["account", "delete", "--id", "1", "--mode", "wipe", "--yes"],
    );
    let left: (i64, i64, i64) = c
        .query_first(
            "SELECT (SELECT COUNT(*) FROM user WHERE id = 1), \
             (SELECT COUNT(*) FROM post WHERE user = 1), \
             (SELECT COUNT(*) FROM consent WHERE userid = 1)",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(left, (0, 0, 0), "{what}");
    env.ok(
        "boinc-ops",
        &[
            "account",
            "delete",
            "--id",
            &new_id.to_string(),
            "--mode",
            "obfuscate",
            "--yes",
        ],
    );
    let r = get(&client, &base, "am_get_info.php", &[("account_key", &key)]).await;
    assert!(r.contains("<error_num>-136</error_num>"), "{what}: {r}");

    // Retention purge: the release's old deletion record and token go.
    let out = env.ok("boinc-ops", &["retention", "purge", "--days", "60"]);
    let kept: (i64, i64, i64) = c
        .query_first(
            "SELECT (SELECT COUNT(*) FROM user_deleted WHERE userid = 99), \
             (SELECT COUNT(*) FROM user_deleted WHERE userid = 1), \
             (SELECT COUNT(*) FROM token WHERE token = 'expiredtoken')",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept, (0, 1, 0), "{what}: {out}");
    c.disconnect().await.ok();

    // The next night's dump: nobody left to export.
    env.ok(
        "db_dump",
        &["-d", "2", "--dump_spec", "../db_dump_spec.xml"],
    );
    let users = env.gz("user.gz");
    assert!(records(&users, "user").is_empty(), "{what}: {users}");
    assert!(records(&env.gz("host.gz"), "host").is_empty(), "{what}");
    let deleted = env.gz("user_deleted.gz");
    assert!(deleted.contains("<id>1</id>"), "{what}: {deleted}");
}

macro_rules! matrix {
    ($($name:ident: $r:ident, $cs:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            release_through_every_binary(Release::$r, Charset::$cs).await;
        }
    )*};
}

matrix! {
    r1_0_4_utf8mb4: R1_0_4, Utf8mb4;
    r1_0_4_latin1: R1_0_4, Latin1;
    r1_2_1_utf8mb4: R1_2_1, Utf8mb4;
    r1_2_1_latin1: R1_2_1, Latin1;
    r1_3_0_utf8mb4: R1_3_0, Utf8mb4;
    r1_3_0_latin1: R1_3_0, Latin1;
    r1_4_7_utf8mb4: R1_4_7, Utf8mb4;
    r1_4_7_latin1: R1_4_7, Latin1;
    r1_6_2_utf8mb4: R1_6_2, Utf8mb4;
    r1_6_2_latin1: R1_6_2, Latin1;
    master_utf8mb4: Master, Utf8mb4;
    master_latin1: Master, Latin1;
}
