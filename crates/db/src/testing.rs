//! Test support: a private, uniquely named database on the real server,
//! created with the full schema and dropped when the value is dropped, so
//! tests run in parallel and leave nothing behind. It never skips: if the
//! server cannot be reached the test fails with a message saying so.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use mysql_async::prelude::*;

use crate::config::DbSettings;
use crate::schema;

pub mod fixtures;
pub mod releases;
pub mod rows;

/// Server the tests use (no database part): defaults to the local MariaDB.
pub const TEST_SERVER_ENV: &str = "BOINC_TEST_MYSQL_URL";
const DEFAULT_SERVER: &str = "mysql://root@127.0.0.1:3306";

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct TestDb {
    pub settings: DbSettings,
}

impl TestDb {
    /// A fresh database with schema, constraints and content applied.
    pub async fn new() -> Self {
        let db = Self::empty().await;
        schema::init(&db.settings)
            .await
            .unwrap_or_else(|e| panic!("schema init on {:?} failed: {e}", db.settings));
        db
    }

    /// A fresh database holding the tables of `tables_sql` (statements
    /// ending at a line-final `;`, e.g. a restatement of upstream BOINC's
    /// whole schema), then brought up to this project's schema by the schema
    /// tool, as an existing project's database is.
    pub async fn with_tables(tables_sql: &str) -> Self {
        let db = Self::empty().await;
        let mut c = db.conn().await;
        run_sql(&mut c, tables_sql).await;
        schema::upgrade(&mut c)
            .await
            .unwrap_or_else(|e| panic!("schema upgrade on {:?} failed: {e}", db.settings));
        c.disconnect().await.ok();
        db
    }

    /// A fresh database created `CHARACTER SET latin1`, as projects set up
    /// on MySQL before utf8mb4 have it, with the same schema: every table
    /// (BOINC's schema names no character set) is latin1.
    pub async fn latin1() -> Self {
        let db = Self::create("CHARACTER SET latin1").await;
        schema::init(&db.settings)
            .await
            .unwrap_or_else(|e| panic!("schema init on {:?} failed: {e}", db.settings));
        db
    }

    /// A connection as BOINC's PHP made one before it asked for utf8mb4:
    /// latin1, so UTF-8 text is stored and read as raw bytes.
    pub async fn php_latin1_conn(&self) -> mysql_async::Conn {
        let opts = mysql_async::OptsBuilder::from_opts(self.settings.opts())
            .init(vec!["SET NAMES latin1"]);
        mysql_async::Conn::new(opts)
            .await
            .expect("connect to test database")
    }

    /// A fresh database with nothing in it (for schema-tool tests).
    pub async fn empty() -> Self {
        Self::create("CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci").await
    }

    async fn create(charset: &str) -> Self {
        let server = std::env::var(TEST_SERVER_ENV).unwrap_or_else(|_| DEFAULT_SERVER.to_owned());
        let name = format!(
            "boinc_t_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            &crate::random_hex32()[..8]
        );
        let settings = DbSettings::from_url(&format!("{}/{}", server.trim_end_matches('/'), name))
            .expect("test server URL");
        let mut conn = mysql_async::Conn::new(settings.server_opts())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "tests need MariaDB/MySQL at {server} ({TEST_SERVER_ENV} overrides): {e}. \
                     Start it with: start-stop-daemon --start --oknodo --background \
                     --exec /usr/sbin/mariadbd"
                )
            });
        conn.query_drop(format!(
            "CREATE DATABASE {} {charset}",
            crate::ident::quote_ident(&name)
        ))
        .await
        .expect("create test database");
        conn.disconnect().await.ok();
        Self { settings }
    }

    pub async fn conn(&self) -> mysql_async::Conn {
        mysql_async::Conn::new(self.settings.opts())
            .await
            .expect("connect to test database")
    }

    pub fn pool(&self) -> mysql_async::Pool {
        crate::pool(&self.settings)
    }

    /// `mysql://...` URL of this database (for BOINC_DATABASE_URL).
    pub fn url(&self) -> String {
        let s = &self.settings;
        format!(
            "mysql://{}:{}@{}:{}/{}",
            s.user, s.passwd, s.host, s.port, s.name
        )
    }

    /// Write a project folder: config.xml naming this database (plus
    /// `extra` XML inside `<config>`), and optionally a terms file.
    pub fn write_project(&self, dir: &Path, extra: &str, terms: Option<&str>) -> PathBuf {
        write_project(&self.settings, dir, extra, terms)
    }
}

/// [`TestDb::write_project`] for any database (e.g. on a
/// [`PrivateMariaDb`]).
pub fn write_project(s: &DbSettings, dir: &Path, extra: &str, terms: Option<&str>) -> PathBuf {
    {
        let xml = format!(
            "<boinc>\n<config>\n<db_name>{}</db_name>\n<db_host>{}:{}</db_host>\n\
             <db_user>{}</db_user>\n<db_passwd>{}</db_passwd>\n\
             <master_url>http://127.0.0.1/test/</master_url>\n<long_name>Test Project</long_name>\n\
             {extra}\n</config>\n</boinc>\n",
            s.name, s.host, s.port, s.user, s.passwd
        );
        std::fs::create_dir_all(dir).expect("project dir");
        let path = dir.join("config.xml");
        std::fs::write(&path, xml).expect("write config.xml");
        if let Some(t) = terms {
            std::fs::write(dir.join("terms_of_use.txt"), t).expect("write terms");
        }
        path
    }
}

/// A project folder laid out as BOINC's `make_project` lays it out (for
/// install and lifecycle tests): `config.xml` as its Python writer formats
/// it (4-space indent, upstream's default daemons and tasks, the db_dump
/// task disabled), `db_dump_spec.xml` at the root (upstream's, writing to
/// `../html/stats`), `html/{user,ops,stats}`, `bin/` with a stand-in for
/// BOINC's own db_dump, `cgi-bin/`, and `tmp_HOST`, `log_HOST`, `pid_HOST`.
/// `short` is the project's short name (master_url `http://127.0.0.1/SHORT/`).
pub fn write_made_project(dir: &Path, settings: &DbSettings, short: &str, host: &str) -> PathBuf {
    for d in [
        "bin",
        "cgi-bin",
        "html/user",
        "html/ops",
        "html/stats",
        "html/inc",
        "download",
        "upload",
        "keys",
        "templates",
    ] {
        std::fs::create_dir_all(dir.join(d)).expect("project dirs");
    }
    for d in ["tmp_", "log_", "pid_"] {
        std::fs::create_dir_all(dir.join(format!("{d}{host}"))).expect("host dirs");
    }
    let root = dir.display();
    let s = settings;
    let xml = format!(
        r#"<?xml version="1.0" ?>
<boinc>
    <config>
        <upload_dir>{root}/upload</upload_dir>
        <send_result_abort>1</send_result_abort>
        <long_name>{short}</long_name>
        <sched_debug_level>3</sched_debug_level>
        <cache_md5_info>1</cache_md5_info>
        <upload_url>http://127.0.0.1/{short}_cgi/file_upload_handler</upload_url>
        <disable_account_creation>0</disable_account_creation>
        <uldl_dir_fanout>1024</uldl_dir_fanout>
        <download_url>http://127.0.0.1/{short}/download</download_url>
        <db_user>{user}</db_user>
        <log_dir>{root}/log_{host}</log_dir>
        <app_dir>{root}/apps</app_dir>
        <download_dir>{root}/download</download_dir>
        <fuh_debug_level>3</fuh_debug_level>
        <master_url>http://127.0.0.1/{short}/</master_url>
        <host>{host}</host>
        <db_name>{name}</db_name>
        <shmem_key>0x1111abcd</shmem_key>
        <show_results>1</show_results>
        <key_dir>{root}/keys/</key_dir>
        <dont_generate_upload_certificates>1</dont_generate_upload_certificates>
        <enable_delete_account>0</enable_delete_account>
        <ignore_upload_certificates>1</ignore_upload_certificates>
        <db_passwd>{passwd}</db_passwd>
        <min_sendwork_interval>6</min_sendwork_interval>
        <one_result_per_user_per_wu>0</one_result_per_user_per_wu>
        <db_host>{dbhost}:{port}</db_host>
    </config>
    <tasks>
        <task>
            <cmd>antique_file_deleter -d 2</cmd>
            <period>24 hours</period>
            <disabled>0</disabled>
            <output>antique_file_deleter.out</output>
        </task>
        <task>
            <cmd>db_dump -d 2 --dump_spec ../db_dump_spec.xml</cmd>
            <period>24 hours</period>
            <disabled>1</disabled>
            <output>db_dump.out</output>
        </task>
        <task>
            <cmd>run_in_ops ./update_uotd.php</cmd>
            <period>1 days</period>
            <disabled>0</disabled>
            <output>update_uotd.out</output>
        </task>
        <task>
            <cmd>update_stats</cmd>
            <period>1 days</period>
            <disabled>0</disabled>
            <output>update_stats.out</output>
        </task>
    </tasks>
    <daemons>
        <daemon>
            <cmd>feeder -d 3 </cmd>
        </daemon>
        <daemon>
            <cmd>transitioner -d 3 </cmd>
        </daemon>
        <daemon>
            <cmd>file_deleter -d 3 </cmd>
        </daemon>
    </daemons>
</boinc>
"#,
        user = s.user,
        name = s.name,
        passwd = s.passwd,
        dbhost = s.host,
        port = s.port,
    );
    let path = dir.join("config.xml");
    std::fs::write(&path, xml).expect("write config.xml");
    let mut spec = String::from(
        "<boinc_db_dump_spec>\n    <output_dir>../html/stats_tmp</output_dir>\n    \
         <final_output_dir>../html/stats</final_output_dir>\n",
    );
    for (table, file, detail) in [
        ("user", "user", false),
        ("user_deleted", "user_deleted", false),
        ("host", "host", true),
        ("host_deleted", "host_deleted", false),
        ("team", "team", false),
    ] {
        spec.push_str(&format!(
            "    <enumeration>\n        <table>{table}</table>\n        <filename>{file}</filename>\n        \
             <output>\n            <compression>gzip</compression>\n{}        </output>\n    </enumeration>\n",
            if detail { "            <detail/>\n" } else { "" }
        ));
    }
    spec.push_str("</boinc_db_dump_spec>\n");
    std::fs::write(dir.join("db_dump_spec.xml"), spec).expect("write db_dump_spec.xml");
    // Stand-in for BOINC's C++ db_dump, which install must keep aside.
    let upstream = dir.join("bin/db_dump");
    std::fs::write(&upstream, "#!/bin/sh\necho upstream db_dump\n").expect("bin/db_dump");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&upstream, std::fs::Permissions::from_mode(0o755));
    }
    std::fs::write(
        dir.join("html/user/index.php"),
        "<?php echo 'BOINC home';\n",
    )
    .expect("index");
    path
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop is sync and may run inside a runtime: use a thread of its own.
        let settings = self.settings.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(mut c) = mysql_async::Conn::new(settings.server_opts()).await {
                        // A test that leaves a transaction open on its own
                        // database would make the DROP wait (a day, by
                        // default) and queue every other test's metadata
                        // queries behind it: give up loudly instead.
                        let _ = c.query_drop("SET SESSION lock_wait_timeout = 20").await;
                        if let Err(e) = c
                            .query_drop(format!(
                                "DROP DATABASE IF EXISTS {}",
                                crate::ident::quote_ident(&settings.name)
                            ))
                            .await
                        {
                            eprintln!(
                                "test database {} was not dropped ({e}): a connection of the test still holds it",
                                settings.name
                            );
                        }
                        let _ = c.disconnect().await;
                    }
                });
            }
        })
        .join();
    }
}

/// A throwaway MariaDB server of the test's own (temp datadir, free port on
/// 127.0.0.1) that the test can stop and start again, for outage tests that
/// must not touch the shared server.
pub struct PrivateMariaDb {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<std::process::Child>,
    /// Server options beyond the defaults (e.g. binlog and server id for
    /// replication tests); a `--log-bin...` here replaces `--skip-log-bin`.
    extra: Vec<String>,
}

impl PrivateMariaDb {
    /// Install a datadir and start the server; waits until it answers.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// As [`PrivateMariaDb::start`], with extra `mariadbd` options.
    pub async fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir for private mariadb");
        let data = dir.path().join("data");
        // Its own tmpdir, for the bootstrap server too (see `resume`).
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("tmpdir for private mariadb");
        let out = std::process::Command::new("mariadb-install-db")
            .args(["--no-defaults", "--auth-root-authentication-method=normal"])
            .args(["--skip-test-db", "--user=root"])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .output()
            .expect("mariadb-install-db must be installed (Debian package mariadb-server)");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let mut s = Self {
            dir,
            port,
            child: None,
            extra: extra.iter().map(|a| a.to_string()).collect(),
        };
        s.resume().await;
        s
    }

    /// Settings for database `name` on this server.
    pub fn settings(&self, name: &str) -> DbSettings {
        DbSettings {
            name: name.to_owned(),
            host: "127.0.0.1".to_owned(),
            port: self.port,
            user: "root".to_owned(),
            passwd: String::new(),
        }
    }

    /// Kill the server (an outage, as abrupt as a crash).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port and datadir; waits until it answers.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let data = self.dir.path().join("data");
        let log = std::fs::File::create(self.dir.path().join("err.log")).expect("log file");
        // A tmpdir of its own: at start-up mariadbd deletes every `#sql*`
        // file in its tmpdir, which in /tmp would include the live
        // temporary tables of the shared test server (other tests then fail
        // with "Error on delete of '/tmp/#sql-temptable-…'").
        let tmp = self.dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("tmpdir for private mariadb");
        let child = std::process::Command::new("/usr/sbin/mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--port={}", self.port))
            .arg(format!(
                "--socket={}",
                self.dir.path().join("sock").display()
            ))
            .args(["--bind-address=127.0.0.1", "--user=root"])
            .args(
                (!self.extra.iter().any(|a| a.starts_with("--log-bin")))
                    .then_some("--skip-log-bin"),
            )
            .args(["--innodb-buffer-pool-size=32M", "--skip-name-resolve"])
            .args(&self.extra)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start /usr/sbin/mariadbd");
        self.child = Some(child);
        let opts = self.settings("mysql").server_opts();
        for _ in 0..200 {
            if let Ok(c) = mysql_async::Conn::new(opts.clone()).await {
                let _ = c.disconnect().await;
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(self.dir.path().join("err.log")).unwrap_or_default();
        panic!(
            "private mariadbd on port {} did not come up: {log}",
            self.port
        );
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A free TCP port on 127.0.0.1 (bind to 0, read it, release it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port on 127.0.0.1")
}

/// Collations a BOINC database's text columns may have: the test
/// database's default first, then others `TestDb::collate_names` sets.
pub const NAME_COLLATIONS: &[&str] = &["utf8mb4_unicode_ci", "utf8mb4_general_ci", "utf8mb4_bin"];

impl TestDb {
    /// Give the columns names and addresses are looked up by
    /// (`consent_type.shortname`, `consent_type_audit.shortname`,
    /// `user.email_addr`, `user.previous_email_addr`) this collation, as an
    /// existing project's database might have them.
    pub async fn collate_names(&self, collation: &str) {
        let mut c = self.conn().await;
        let cs = format!("CHARACTER SET utf8mb4 COLLATE {collation}");
        for sql in [
            format!("ALTER TABLE consent_type MODIFY shortname varchar(191) {cs} NOT NULL"),
            format!("ALTER TABLE consent_type_audit MODIFY shortname varchar(191) {cs} NOT NULL"),
            format!(
                "ALTER TABLE user MODIFY email_addr varchar(191) {cs} NOT NULL, \
                 MODIFY previous_email_addr varchar(254) {cs} NOT NULL DEFAULT ''"
            ),
        ] {
            c.query_drop(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        c.disconnect().await.ok();
    }
}

/// Strings a person might take for `s` (an ASCII name or address):
/// leading/trailing white space, a non-breaking space, zero-width and
/// full-width characters, a soft hyphen, an accent, a NUL, and for names
/// without `@` other letter case (consent-type names are case-sensitive;
/// emails ignore ASCII case, so for them case is combined with a space).
/// Several equal `s` under one collation or another; none is `s`.
pub fn look_alikes(s: &str) -> Vec<String> {
    let mut chars = s.chars();
    let head = chars.next().expect("non-empty");
    let rest: String = chars.collect();
    let accented = match head {
        'E' => 'É',
        'S' => 'Ś',
        'n' => 'ñ',
        'a' => 'á',
        'u' => 'ü',
        c => c,
    };
    let fullwidth = char::from_u32(head as u32 - 0x21 + 0xFF01).expect("ASCII head");
    let flipped: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    let mut v = vec![
        format!("{s} "),
        format!("{s}  "),
        format!(" {s}"),
        format!("{s}\t"),
        format!("{s}\u{a0}"),
        format!("{s}\u{200b}"),
        format!("{s}\u{200d}"),
        format!("{head}\u{200b}{rest}"),
        format!("{head}\u{200c}{rest}"),
        format!("{head}\u{ad}{rest}"),
        format!("{accented}{rest}"),
        format!("{fullwidth}{rest}"),
        format!("{s}\u{0}"),
        format!("{flipped} "),
    ];
    if !s.contains('@') {
        v.push(flipped);
        v.push(format!("{}{rest}", head.to_ascii_lowercase()));
    }
    v.retain(|x| x != s);
    v
}

/// Run a SQL file's statements (each ending at a line-final `;`; `--`
/// lines skipped) on one connection, panicking with the failing statement.
pub async fn run_sql(c: &mut mysql_async::Conn, sql: &str) {
    for stmt in schema::statements(sql) {
        c.query_drop(&stmt)
            .await
            .unwrap_or_else(|e| panic!("{e}\nin: {stmt}"));
    }
}

/// An account straight into the database (no password hashing): its id.
/// `n` makes the email and name unique.
pub async fn insert_account(c: &mut mysql_async::Conn, n: usize, authenticator: &str) -> i64 {
    let email = format!("u{n}@example.com");
    let name = format!("User {n}");
    let user = crate::queries::NewUser {
        passwd_hash: "x",
        ..fixtures::new_user(1, &email, &name, authenticator)
    };
    crate::queries::insert_user(c, &user)
        .await
        .expect("insert account")
}

/// Wait (at most 30 s, then panic) until another connection of this
/// database runs a statement `LIKE pattern`, e.g. one waiting for a lock.
pub async fn wait_for_statement(c: &mut mysql_async::Conn, pattern: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let n: Option<i64> = c
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE db = DATABASE() AND info LIKE ? AND id <> CONNECTION_ID()",
                (pattern,),
            )
            .await
            .expect("PROCESSLIST");
        if n.unwrap_or(0) > 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no statement like {pattern:?} within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
