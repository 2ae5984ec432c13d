//! Shared helpers for the ops tests: a private database, the ops page
//! served in-process on 127.0.0.1:0, direct DB reads to check results, and
//! the CLI run for real (`cli`).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

use boinc_db::consent::types::AuditEntry;
use boinc_db::models::ConsentType;
use boinc_db::mysql_async::prelude::*;
use boinc_db::testing::TestDb;
use boinc_ops::{ConsentOps, Credentials, ServeOptions};

pub const USER: &str = "admin";
pub const PASS: &str = "correct horse battery";

/// Low bcrypt cost keeps the tests quick; production hashes use 12.
pub fn creds() -> Credentials {
    let hash = bcrypt::hash(PASS, 4).expect("hash");
    Credentials::new(USER, &hash).expect("credentials")
}

pub async fn types(db: &TestDb) -> Vec<ConsentType> {
    let mut c = db.conn().await;
    boinc_db::queries::consent_types(&mut c)
        .await
        .expect("list")
}

pub async fn get_type(db: &TestDb, name: &str) -> Option<ConsentType> {
    types(db).await.into_iter().find(|t| t.shortname == name)
}

pub async fn audit(db: &TestDb) -> Vec<AuditEntry> {
    let mut c = db.conn().await;
    boinc_db::consent::types::audit_history(&mut c, None, 1000)
        .await
        .expect("audit")
}

/// Snapshot of everything the ops tools may change, to prove "nothing changed".
pub async fn snapshot(db: &TestDb) -> (Vec<ConsentType>, usize) {
    let mut c = db.conn().await;
    let n: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM consent_type_audit")
        .await
        .expect("count");
    (types(db).await, n.unwrap_or(0) as usize)
}

pub struct Server {
    pub db: TestDb,
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(read_only: bool) -> Server {
    let db = TestDb::new().await;
    start_on(db, read_only).await
}

pub async fn start_on(db: TestDb, read_only: bool) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let ops = ConsentOps::new(db.pool());
    let opts = ServeOptions {
        read_only,
        credentials: Some(creds()),
        ..Default::default()
    };
    let task = tokio::spawn(async move {
        if let Err(e) = boinc_ops::serve(listener, ops, opts).await {
            panic!("ops server failed: {e}");
        }
    });
    Server { db, base, task }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A logged-in page view: the session cookie it set and the CSRF token in it.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
    pub html: String,
}

pub async fn open_session(s: &Server) -> Session {
    let r = client()
        .get(format!("{}/", s.base))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .expect("GET /");
    assert_eq!(r.status(), 200);
    let cookie = r
        .headers()
        .get("set-cookie")
        .expect("session cookie")
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = r.text().await.unwrap();
    let csrf = csrf_in(&html).expect("csrf token in page");
    Session { cookie, csrf, html }
}

pub fn csrf_in(html: &str) -> Option<String> {
    let key = "name=\"csrf\" value=\"";
    let i = html.find(key)? + key.len();
    let j = html[i..].find('"')? + i;
    Some(html[i..j].to_owned())
}

/// POST a form as the admin, with the session's cookie.
pub async fn post(
    s: &Server,
    cookie: Option<&str>,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut rb = client()
        .post(format!("{}{}", s.base, path))
        .basic_auth(USER, Some(PASS))
        .form(form);
    if let Some(c) = cookie {
        rb = rb.header("cookie", c);
    }
    rb.send().await.expect("POST")
}

// ---------------------------------------------------------------------
// The `boinc-ops` binary run for real, off the runtime (it blocks), and
// its output as text.

pub const BIN: &str = env!("CARGO_BIN_EXE_boinc-ops");

/// A config.xml that is not there: the database comes from
/// `BOINC_DATABASE_URL`.
pub const NO_CONFIG: &str = "/nonexistent/config.xml";

async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("run boinc-ops"))
        .await
        .unwrap()
}

/// boinc-ops `args` on `db` through `BOINC_DATABASE_URL`, without a
/// config.xml.
pub async fn cli(db: &TestDb, args: &[&str]) -> Output {
    cli_with(db, Path::new(NO_CONFIG), args).await
}

/// [`cli`] with a project's config.xml (so the terms file is known); the
/// database still comes from `BOINC_DATABASE_URL`.
pub async fn cli_with(db: &TestDb, config: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env("BOINC_DATABASE_URL", db.url())
        .env_remove("RUST_LOG");
    output(cmd).await
}

/// boinc-ops `args` with the config.xml at `config` naming the database,
/// run by the admin `actor` (`USER`; no `SUDO_USER`), stdin from
/// /dev/null.
pub async fn cli_as(actor: &str, config: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env_remove("BOINC_DATABASE_URL")
        .env_remove("RUST_LOG")
        .env_remove("SUDO_USER")
        .env("USER", actor)
        .stdin(Stdio::null());
    output(cmd).await
}

pub fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
