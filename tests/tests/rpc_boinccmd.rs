//! The real BOINC client (Debian's boinc-client) against boinc-rpc: a
//! throwaway client instance on its own port and folder drives
//! get_project_config, create_account and lookup_account through boinccmd.

mod common;

use std::time::Duration;

use boinc_db::testing::fixtures::new_user;
use boinc_db::testing::TestDb;
use common::{account_key, Client};
use mysql_async::prelude::*;

const TERMS: &str = "Terms of the e2e project.";

/// A throwaway BOINC client ([`common::start_client`]). It blocks while the
/// client comes up: the runtime moves boinc-rpc's tasks to its other workers.
async fn start_client(dir: &std::path::Path) -> Client {
    tokio::task::block_in_place(|| common::start_client(dir))
}

/// [`common::boinccmd`], blocking as [`start_client`] does.
async fn boinccmd(client: &Client, args: &[&str]) -> (bool, String) {
    tokio::task::block_in_place(|| common::boinccmd(client, args))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boinccmd_attach_flow_against_boinc_rpc() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    c.query_drop("UPDATE consent_type SET enabled = 1 WHERE shortname = 'ENROLL'")
        .await
        .unwrap();

    // boinc-rpc on a port of its own; master_url points at it.
    let rpc = Rpc::project(&db, "", Some(TERMS), "E2E Project").await;
    let master_url = rpc.master_url.clone();

    let client_dir = tempfile::tempdir().unwrap();
    let client = start_client(client_dir.path()).await;

    // get_project_config (boinccmd polls until the client has the reply).
    let (ok, out) = boinccmd(&client, &["--get_project_config", &master_url]).await;
    assert!(ok, "{out}");
    assert!(out.contains("name: E2E Project"), "{out}");
    assert!(out.contains("min_passwd_length: 6"), "{out}");

    // create_account: a legacy-style call (boinccmd sends no consent).
    let email = "E2E.User@Example.com";
    let (ok, out) = boinccmd(
        &client,
        &[
            "--create_account",
            &master_url,
            email,
            "e2e-password",
            "E2E User",
        ],
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("status: Success"), "{out}");
    let key = account_key(&out).unwrap_or_else(|| panic!("no account key: {out}"));
    assert_eq!(key.len(), 32, "{out}");
    let row: Option<(i64, String, String, String)> = c
        .exec_first(
            "SELECT id, email_addr, name, passwd_hash FROM user WHERE authenticator = ?",
            (&key,),
        )
        .await
        .unwrap();
    let (userid, stored_email, name, passwd_hash) = row.expect("user row written");
    assert_eq!(stored_email, "e2e.user@example.com");
    assert_eq!(name, "E2E User");
    assert!(passwd_hash.starts_with("$2y$10$"), "{passwd_hash}");
    let consents: i64 = c
        .exec_first("SELECT COUNT(*) FROM consent WHERE userid = ?", (userid,))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        consents, 0,
        "no consent params from boinccmd: no consent row"
    );

    // The same create again is an idempotent retry: same key.
    let (_, out) = boinccmd(
        &client,
        &[
            "--create_account",
            &master_url,
            email,
            "e2e-password",
            "E2E User",
        ],
    )
    .await;
    assert_eq!(account_key(&out).as_deref(), Some(key.as_str()), "{out}");

    // lookup_account with the right password: the same key.
    let (ok, out) = boinccmd(
        &client,
        &["--lookup_account", &master_url, email, "e2e-password"],
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(account_key(&out).as_deref(), Some(key.as_str()), "{out}");

    // Wrong password: BOINC's "bad password", no key.
    let (_, out) = boinccmd(
        &client,
        &["--lookup_account", &master_url, email, "wrong-password"],
    )
    .await;
    assert!(account_key(&out).is_none(), "{out}");
    assert!(out.contains("bad password"), "{out}");

    // Another account's email with a different password: not unique.
    let (_, out) = boinccmd(
        &client,
        &[
            "--create_account",
            &master_url,
            email,
            "other-password",
            "Someone",
        ],
    )
    .await;
    assert!(account_key(&out).is_none(), "{out}");
    assert!(out.contains("not unique"), "{out}");
    let users: i64 = c
        .query_first("SELECT COUNT(*) FROM user")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(users, 1);

    drop(client);
    rpc.stop().await;
}

/// `<min_core_client_version>` above the installed client (Debian's 7.20.5
/// is 72005): get_project_config sends `<min_client_version>80000`, and
/// this records what the real command-line client does with it on attach.
/// Nothing in upstream's client refuses on it: lib/gui_rpc_client parses it
/// into PROJECT_CONFIG::min_client_version and the Android app parses it,
/// but client/, boinccmd and the Manager never read it, so the attach goes
/// through and the project is listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boinccmd_attach_with_min_client_version_above_the_client() {
    let db = TestDb::new().await;
    let rpc = Rpc::start(
        &db,
        "<min_core_client_version>80000</min_core_client_version>",
    )
    .await;
    let master_url = rpc.master_url.clone();

    // What we send.
    let body = reqwest::get(format!("{master_url}get_project_config.php"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("<min_client_version>80000</min_client_version>"),
        "{body}"
    );

    let client_dir = tempfile::tempdir().unwrap();
    let client = start_client(client_dir.path()).await;
    let (ok, out) = boinccmd(&client, &["--client_version"]).await;
    assert!(ok, "{out}");
    let installed: Vec<u32> = out
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or("")
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect();
    assert_eq!(installed.len(), 3, "client version: {out}");
    assert!(
        installed[0] * 10000 + installed[1] * 100 + installed[2] < 80000,
        "the installed client must be older than the project's minimum: {out}"
    );

    let (ok, out) = boinccmd(&client, &["--get_project_config", &master_url]).await;
    assert!(ok, "{out}");
    assert!(out.contains("name: Test Project"), "{out}");

    let (ok, out) = boinccmd(
        &client,
        &[
            "--create_account",
            &master_url,
            "old.client@example.com",
            "old-client-pw",
            "Old Client",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let key = account_key(&out).unwrap_or_else(|| panic!("no account key: {out}"));

    let (ok, attach) = boinccmd(&client, &["--project_attach", &master_url, &key]).await;
    let (_, status) = boinccmd(&client, &["--get_project_status"]).await;
    let (_, messages) = boinccmd(&client, &["--get_messages", "0"]).await;
    // Observed (boinc-client 7.20.5): not refused. boinccmd exits 0 and
    // prints nothing, the client lists the project (master fetch pending)
    // and logs no complaint about its version.
    assert!(ok, "{attach}");
    assert_eq!(attach.trim(), "", "no message from the attach");
    assert!(
        status.contains(&format!("master URL: {master_url}")),
        "{status}"
    );
    assert!(status.contains("master fetch pending: yes"), "{status}");
    let lower = messages.to_lowercase();
    assert!(
        !lower.contains("too old")
            && !lower.contains("newer version")
            && !lower.contains("upgrade"),
        "{messages}"
    );

    drop(client);
    rpc.stop().await;
}

/// `<disable_account_creation_rpc/>`: get_project_config sends
/// `<client_account_creation_disabled/>` (BOINC's Manager then hides
/// "create account"), create_account refuses, and the real client still
/// attaches to an existing account: lookup_account gives its key and
/// `--project_attach` with it lists the project.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boinccmd_attaches_to_an_existing_account_with_rpc_account_creation_disabled() {
    let db = TestDb::new().await;
    let rpc = Rpc::start(&db, "<disable_account_creation_rpc/>").await;
    let master_url = rpc.master_url.clone();
    let body = reqwest::get(format!("{master_url}get_project_config.php"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("<client_account_creation_disabled/>"),
        "{body}"
    );
    // An account made on the web site (a legacy md5 password hash).
    let email = "existing@example.com";
    let mut c = db.conn().await;
    let key = "0123456789abcdef0123456789abcdef";
    let passwd_hash = boinc_db::password::md5_hex(&format!("web-password{email}"));
    let user = boinc_db::queries::NewUser {
        passwd_hash: &passwd_hash,
        ..new_user(1, email, "Existing Volunteer", key)
    };
    boinc_db::queries::insert_user(&mut c, &user).await.unwrap();

    let client_dir = tempfile::tempdir().unwrap();
    let client = start_client(client_dir.path()).await;
    let (ok, out) = boinccmd(&client, &["--get_project_config", &master_url]).await;
    assert!(ok, "{out}");
    let (_, out) = boinccmd(
        &client,
        &[
            "--create_account",
            &master_url,
            "new@example.com",
            "new-password",
            "New",
        ],
    )
    .await;
    assert!(account_key(&out).is_none(), "{out}");
    let (ok, out) = boinccmd(
        &client,
        &["--lookup_account", &master_url, email, "web-password"],
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(account_key(&out).as_deref(), Some(key), "{out}");
    let (ok, attach) = boinccmd(&client, &["--project_attach", &master_url, key]).await;
    assert!(ok, "{attach}");
    let (_, status) = boinccmd(&client, &["--get_project_status"]).await;
    assert!(
        status.contains(&format!("master URL: {master_url}")),
        "{status}"
    );
    let users: i64 = c
        .query_first("SELECT COUNT(*) FROM user")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(users, 1, "create_account must have been refused");

    drop(client);
    rpc.stop().await;
}

/// boinc-rpc on a port of its own for `db`, master_url pointing at it.
struct Rpc {
    master_url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _project: tempfile::TempDir,
}

impl Rpc {
    async fn start(db: &TestDb, extra: &str) -> Self {
        Self::project(db, extra, None, "Test Project").await
    }

    /// [`Rpc::start`] with a terms file, and `long_name` for the project's.
    async fn project(db: &TestDb, extra: &str, terms: Option<&str>, long_name: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let master_url = format!("http://{}/", listener.local_addr().unwrap());
        let project = tempfile::tempdir().unwrap();
        let config_path = db.write_project(project.path(), extra, terms);
        let xml = std::fs::read_to_string(&config_path)
            .unwrap()
            .replace("http://127.0.0.1/test/", &master_url)
            .replace(
                "<long_name>Test Project</long_name>",
                &format!("<long_name>{long_name}</long_name>"),
            );
        std::fs::write(&config_path, xml).unwrap();
        let config = boinc_db::ProjectConfig::load(&config_path).unwrap();
        let state = boinc_rpc::AppState::new(config).unwrap();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(boinc_rpc::serve(state, listener, async move {
            let _ = stop_rx.await;
        }));
        Self {
            master_url,
            stop,
            server,
            _project: project,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.server).await;
    }
}

/// The real client signs up a volunteer with a non-Latin name on a legacy
/// database (created `CHARACTER SET latin1`): BOINC's PHP, reading over a
/// latin1 connection as it did, gets the name's exact UTF-8 bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boinccmd_create_account_with_a_non_latin_name_on_a_latin1_database() {
    let db = TestDb::latin1().await;
    let rpc = Rpc::start(&db, "").await;
    let client_dir = tempfile::tempdir().unwrap();
    let client = start_client(client_dir.path()).await;
    let name = "Jörg 李 🚀";
    let (ok, out) = boinccmd(
        &client,
        &[
            "--create_account",
            &rpc.master_url,
            "jorg@example.com",
            "jorg-password",
            name,
        ],
    )
    .await;
    assert!(ok, "{out}");
    let key = account_key(&out).unwrap_or_else(|| panic!("no account key: {out}"));
    let mut php = db.php_latin1_conn().await;
    let stored: Vec<u8> = php
        .exec_first("SELECT name FROM user WHERE authenticator = ?", (&key,))
        .await
        .unwrap()
        .expect("user row");
    assert_eq!(stored, name.as_bytes());
    let (ok, out) = boinccmd(
        &client,
        &[
            "--lookup_account",
            &rpc.master_url,
            "jorg@example.com",
            "jorg-password",
        ],
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(account_key(&out).as_deref(), Some(key.as_str()), "{out}");
    drop(client);
    rpc.stop().await;
}
