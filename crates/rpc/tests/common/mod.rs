//! Test harness: a private database (boinc_db::testing::TestDb), a project
//! folder with config.xml (+ terms), and boinc-rpc served in-process on
//! 127.0.0.1:0.

#![allow(dead_code)]

pub mod commit_cut;
pub mod procs;
pub mod proxy;
pub mod real;

use std::path::PathBuf;
use std::time::Duration;

use boinc_db::testing::{rows, TestDb};
use boinc_db::ProjectConfig;
use boinc_rpc::{AppState, Options, RunningServer};
use mysql_async::prelude::*;

pub const TERMS: &str = "These are the terms of use.\nBe nice & share <CPU> time.";

/// Config XML trusting a local proxy, so a test's requests can come from
/// many clients (`Harness::call_from`).
pub const PROXIED: &str = "<rpc_trusted_proxies>127.0.0.1</rpc_trusted_proxies>";

pub struct Harness {
    pub server: RunningServer,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub client: reqwest::Client,
    // Dropped last: the server must stop before its database goes.
    pub db: TestDb,
}

pub fn test_options() -> Options {
    Options {
        refresh_interval: Duration::from_millis(100),
        ..Options::default()
    }
}

impl Harness {
    /// A project with `extra` config XML and optionally a terms file.
    pub async fn new(extra: &str, terms: Option<&str>) -> Self {
        Self::with(extra, terms, test_options()).await
    }

    pub async fn with(extra: &str, terms: Option<&str>, options: Options) -> Self {
        Self::build(extra, terms, options, None).await
    }

    /// The server reaches the database through `proxy_port` (see `proxy`).
    pub async fn build(
        extra: &str,
        terms: Option<&str>,
        options: Options,
        proxy_port: Option<u16>,
    ) -> Self {
        Self::build_on(TestDb::new().await, extra, terms, options, proxy_port).await
    }

    /// A project on a legacy database created `CHARACTER SET latin1`.
    pub async fn latin1(extra: &str, terms: Option<&str>) -> Self {
        Self::build_on(TestDb::latin1().await, extra, terms, test_options(), None).await
    }

    pub async fn build_on(
        db: TestDb,
        extra: &str,
        terms: Option<&str>,
        options: Options,
        proxy_port: Option<u16>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = db.write_project(dir.path(), extra, terms);
        if let Some(port) = proxy_port {
            let s = &db.settings;
            let xml = std::fs::read_to_string(&config_path).unwrap();
            let from = format!("<db_host>{}:{}</db_host>", s.host, s.port);
            assert!(xml.contains(&from), "{xml}");
            let xml = xml.replace(&from, &format!("<db_host>127.0.0.1:{port}</db_host>"));
            std::fs::write(&config_path, xml).unwrap();
        }
        let config = ProjectConfig::load(&config_path).expect("load config");
        let state = AppState::with_options(config, options).expect("state");
        let server = boinc_rpc::spawn(state, "127.0.0.1:0")
            .await
            .expect("spawn server");
        Self {
            server,
            dir,
            config_path,
            client: reqwest::Client::new(),
            db,
        }
    }

    /// The usual consent project: ENROLL enabled, terms present.
    pub async fn consent_project(extra: &str) -> Self {
        let h = Self::new(extra, Some(TERMS)).await;
        h.set_type_enabled("ENROLL", true).await;
        h
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!(
            "http://{}/{}",
            self.server.addr,
            path_and_query.trim_start_matches('/')
        )
    }

    pub async fn get(&self, path_and_query: &str) -> String {
        let r = self
            .client
            .get(self.url(path_and_query))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 200, "{path_and_query}");
        r.text().await.expect("body")
    }

    /// GET with parameters encoded by the client.
    pub async fn call(&self, rpc: &str, params: &[(&str, &str)]) -> String {
        let r = self
            .client
            .get(self.url(rpc))
            .query(params)
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 200, "{rpc}");
        r.text().await.expect("body")
    }

    /// [`Harness::call`] as client `ip`, through a trusted proxy
    /// ([`PROXIED`]) that names it in `X-Forwarded-For`.
    pub async fn call_from(&self, ip: &str, rpc: &str, params: &[(&str, &str)]) -> String {
        let r = self
            .client
            .get(self.url(rpc))
            .header("X-Forwarded-For", ip)
            .query(params)
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 200);
        r.text().await.expect("body")
    }

    pub async fn post(&self, path_and_query: &str, form: &[(&str, &str)]) -> String {
        let r = self
            .client
            .post(self.url(path_and_query))
            .form(form)
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), 200, "{path_and_query}");
        r.text().await.expect("body")
    }

    pub async fn conn(&self) -> mysql_async::Conn {
        self.db.conn().await
    }

    pub async fn set_type_enabled(&self, shortname: &str, on: bool) {
        let mut c = self.conn().await;
        c.exec_drop(
            "UPDATE consent_type SET enabled = ? WHERE shortname = ?",
            (i64::from(on), shortname),
        )
        .await
        .expect("update consent_type");
    }

    /// The id of the consent type named exactly `shortname`.
    pub async fn type_id(&self, shortname: &str) -> i64 {
        boinc_db::testing::fixtures::type_id(&mut self.conn().await, shortname).await
    }

    pub async fn add_type(&self, shortname: &str, enabled: bool) -> i64 {
        let mut c = self.conn().await;
        c.exec_drop(
            "INSERT INTO consent_type (shortname, description, enabled, project_specific, privacypref) \
             VALUES (?, 'test type', ?, 1, 0)",
            (shortname, i64::from(enabled)),
        )
        .await
        .expect("insert consent_type");
        c.query_first("SELECT LAST_INSERT_ID()")
            .await
            .unwrap()
            .unwrap()
    }

    pub async fn user_count(&self) -> i64 {
        let mut c = self.conn().await;
        c.query_first("SELECT COUNT(*) FROM user")
            .await
            .unwrap()
            .unwrap()
    }

    pub async fn user(&self, email: &str) -> Option<UserRow> {
        let mut c = self.conn().await;
        c.exec_first(
            "SELECT id, create_time, name, authenticator, passwd_hash, teamid, country, \
             global_prefs, project_prefs, url, send_email, show_hosts, venue, email_addr, \
             previous_email_addr, email_addr_change_time \
             FROM user WHERE email_addr = ?",
            (email,),
        )
        .await
        .unwrap()
        .map(UserRow::from_row)
    }

    /// Consent rows of a user: (type shortname, flag, not_required, source, time), oldest first.
    pub async fn consents(&self, userid: i64) -> Vec<(String, i64, i64, String, i64)> {
        let mut c = self.conn().await;
        c.exec(
            "SELECT t.shortname, c.consent_flag, c.consent_not_required, c.source, c.consent_time \
             FROM consent c JOIN consent_type t ON t.id = c.consent_type_id \
             WHERE c.userid = ? ORDER BY c.consent_time, c.id",
            (userid,),
        )
        .await
        .unwrap()
    }

    /// How many times a request asked the pool for a database connection
    /// (`/metrics`; the refresh loops use connections of their own and are
    /// not counted). Unchanged across calls: they never touched the
    /// database.
    pub async fn pool_asks(&self) -> f64 {
        let text = self.get("metrics").await;
        text.lines()
            .find_map(|l| l.strip_prefix("boinc_rpc_db_pool_wait_seconds_count "))
            .unwrap_or_else(|| panic!("no pool wait count in /metrics:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }

    /// Every row of every table of the project's database (each row as
    /// its values' SQL text, rows sorted), except the tables in `skip`:
    /// to show that a refused call wrote nothing anywhere.
    pub async fn every_row(
        &self,
        skip: &[&str],
    ) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut c = self.conn().await;
        let mut out = std::collections::BTreeMap::new();
        for t in rows::base_tables(&mut c).await {
            if !skip.contains(&t.as_str()) {
                let r = rows::table_rows(&mut c, &t).await;
                out.insert(t, r);
            }
        }
        out
    }

    pub async fn consent_total(&self) -> i64 {
        let mut c = self.conn().await;
        c.query_first("SELECT COUNT(*) FROM consent")
            .await
            .unwrap()
            .unwrap()
    }

    /// create_account with a password, returning the reply.
    pub async fn create(
        &self,
        email: &str,
        passwd: &str,
        name: &str,
        extra: &[(&str, &str)],
    ) -> String {
        let hash = passwd_hash(passwd, email);
        let mut p = vec![
            ("email_addr", email),
            ("passwd_hash", hash.as_str()),
            ("user_name", name),
        ];
        p.extend_from_slice(extra);
        self.call("create_account.php", &p).await
    }

    /// A fresh account; returns its authenticator.
    pub async fn new_account(&self, email: &str, name: &str, extra: &[(&str, &str)]) -> String {
        let body = self.create(email, "secret", name, extra).await;
        tag(&body, "authenticator").unwrap_or_else(|| panic!("no authenticator in {body}"))
    }
}

pub struct UserRow {
    pub id: i64,
    pub create_time: i64,
    pub name: String,
    pub authenticator: String,
    pub passwd_hash: String,
    pub teamid: i64,
    pub country: String,
    pub global_prefs: String,
    pub project_prefs: String,
    pub url: String,
    pub send_email: i64,
    pub show_hosts: i64,
    pub venue: String,
    pub email_addr: String,
    pub previous_email_addr: String,
    pub email_addr_change_time: f64,
}

impl UserRow {
    fn from_row(mut r: mysql_async::Row) -> Self {
        let s = |r: &mut mysql_async::Row, i: usize| -> String {
            let v: Option<Vec<u8>> = r.take(i).unwrap();
            String::from_utf8(v.unwrap_or_default()).unwrap()
        };
        Self {
            id: r.take(0).unwrap(),
            create_time: r.take(1).unwrap(),
            name: s(&mut r, 2),
            authenticator: s(&mut r, 3),
            passwd_hash: s(&mut r, 4),
            teamid: r.take(5).unwrap(),
            country: s(&mut r, 6),
            global_prefs: s(&mut r, 7),
            project_prefs: s(&mut r, 8),
            url: s(&mut r, 9),
            send_email: r.take(10).unwrap(),
            show_hosts: r.take(11).unwrap(),
            venue: s(&mut r, 12),
            email_addr: s(&mut r, 13),
            previous_email_addr: s(&mut r, 14),
            email_addr_change_time: r.take(15).unwrap(),
        }
    }
}

/// What clients send: md5(password . lower(email)).
pub fn passwd_hash(passwd: &str, email: &str) -> String {
    boinc_db::password::md5_hex(&format!("{passwd}{}", email.to_lowercase()))
}

pub const HEADER: &str = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n";

/// Text of the first `<name>...</name>`.
pub fn tag(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&close)? + start;
    Some(body[start..end].to_owned())
}

pub fn error_num(body: &str) -> Option<i32> {
    tag(body, "error_num").and_then(|s| s.trim().parse().ok())
}

/// Assert an error reply with this number (and the exact envelope).
#[track_caller]
pub fn assert_error(body: &str, num: i32) {
    assert!(body.starts_with(HEADER), "no XML header: {body:?}");
    assert!(
        body.contains("<error>\n    <error_num>") && body.ends_with("</error_msg>\n</error>\n"),
        "not an error envelope: {body:?}"
    );
    assert_eq!(error_num(body), Some(num), "{body}");
}
