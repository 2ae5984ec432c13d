//! A real database outage: a private mariadbd is killed under a running
//! server and started again. Every RPC answers -138 promptly meanwhile
//! (get_project_config from its cache), nothing panics, and the server
//! serves again within 5 s of the database's return, without a restart.

mod common;
mod robust;

use std::time::{Duration, Instant};

use boinc_db::testing::PrivateMariaDb;
use common::{assert_error, error_num, passwd_hash, tag, TERMS};
use mysql_async::prelude::*;

struct Setup {
    mariadb: PrivateMariaDb,
    server: boinc_rpc::RunningServer,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn get(&self, rpc: &str, params: &[(&str, &str)]) -> (String, Duration) {
        let t = Instant::now();
        let r = self
            .client
            .get(format!("{}{rpc}", self.server.url()))
            .query(params)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200, "{rpc}");
        let body = r.text().await.expect("body");
        robust::well_formed(&body).unwrap_or_else(|e| panic!("{rpc}: {e}: {body}"));
        (body, t.elapsed())
    }
}

impl Setup {
    /// Requests' asks for a database connection so far (`/metrics`).
    async fn pool_asks(&self) -> f64 {
        let text = self
            .client
            .get(format!("{}metrics", self.server.url()))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body");
        text.lines()
            .find_map(|l| l.strip_prefix("boinc_rpc_db_pool_wait_seconds_count "))
            .unwrap_or_else(|| panic!("no pool wait count in /metrics:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }
}

async fn setup() -> Setup {
    let mariadb = PrivateMariaDb::start().await;
    let settings = mariadb.settings("boinc_outage");
    boinc_db::schema::init(&settings).await.expect("schema");
    let mut c = mysql_async::Conn::new(settings.opts()).await.unwrap();
    c.query_drop(
        "UPDATE consent_type SET enabled = 1 WHERE shortname IN ('ENROLL', 'STATSEXPORT')",
    )
    .await
    .unwrap();
    c.disconnect().await.ok();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("terms_of_use.txt"), TERMS).unwrap();
    let xml = format!(
        "<boinc><config><db_name>{}</db_name><db_host>{}:{}</db_host><db_user>{}</db_user>\
         <db_passwd>{}</db_passwd><master_url>http://127.0.0.1/test/</master_url>\
         <long_name>Outage Project</long_name></config></boinc>",
        settings.name, settings.host, settings.port, settings.user, settings.passwd
    );
    let path = dir.path().join("config.xml");
    std::fs::write(&path, xml).unwrap();
    let config = boinc_db::ProjectConfig::load(&path).unwrap();
    let options = boinc_rpc::Options {
        db_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(3),
        refresh_interval: Duration::from_millis(100),
        ..Default::default()
    };
    let state = boinc_rpc::AppState::with_options(config, options).unwrap();
    let server = boinc_rpc::spawn(state, "127.0.0.1:0").await.unwrap();
    Setup {
        mariadb,
        server,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

const EMAIL: &str = "outage@example.com";

fn calls(key: &str, hash: &str, n: u32) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    vec![
        (
            "create_account.php",
            vec![
                ("email_addr", format!("new{n}@example.com")),
                (
                    "passwd_hash",
                    passwd_hash("pw", &format!("new{n}@example.com")),
                ),
                ("user_name", format!("New {n}")),
                ("consent_flag", "1".into()),
                ("source", "outage-test".into()),
            ],
        ),
        (
            "am_set_info.php",
            vec![
                ("account_key", key.to_owned()),
                ("consent_name", "STATSEXPORT".into()),
                ("consent_flag", (n % 2).to_string()),
                ("consent_not_required", "0".into()),
                ("consent_source", "outage-test".into()),
            ],
        ),
        ("am_get_info.php", vec![("account_key", key.to_owned())]),
        (
            "lookup_account.php",
            vec![
                ("email_addr", EMAIL.into()),
                ("passwd_hash", hash.to_owned()),
            ],
        ),
        ("lookup_account.php", vec![("email_addr", EMAIL.into())]),
    ]
}

async fn all_succeed(s: &Setup, key: &str, hash: &str, n: u32) -> bool {
    for (rpc, params) in calls(key, hash, n) {
        let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (body, _) = s.get(rpc, &p).await;
        if error_num(&body).is_some() {
            return false;
        }
    }
    true
}

#[tokio::test]
async fn every_rpc_survives_a_database_outage_and_recovers() {
    let mut s = setup().await;
    let hash = passwd_hash("secret", EMAIL);
    let (body, _) = s
        .get(
            "create_account.php",
            &[
                ("email_addr", EMAIL),
                ("passwd_hash", &hash),
                ("user_name", "Outage"),
                ("consent_flag", "1"),
                ("source", "outage-test"),
            ],
        )
        .await;
    let key = tag(&body, "authenticator").unwrap_or_else(|| panic!("{body}"));
    assert!(all_succeed(&s, &key, &hash, 0).await);
    // get_project_config has seen the database (terms shown: ENROLL is on).
    let (cfg_before, _) = s.get("get_project_config.php", &[]).await;
    assert!(cfg_before.contains("<terms_of_use>"), "{cfg_before}");

    for round in 1..=2u32 {
        s.mariadb.stop();
        // Every RPC, several times: prompt -138, and the cached config.
        for attempt in 0..3u32 {
            for (rpc, params) in calls(&key, &hash, round * 10 + attempt) {
                let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let (body, took) = s.get(rpc, &p).await;
                assert_error(&body, -138);
                assert!(
                    took < Duration::from_secs(3),
                    "{rpc} took {took:?} during the outage"
                );
            }
            // From its cache: the same reply, and no database connection
            // asked for (the count a request's ask adds to).
            let asks = s.pool_asks().await;
            let (cfg, _) = s.get("get_project_config.php", &[]).await;
            assert_eq!(
                cfg, cfg_before,
                "get_project_config must answer from its cache"
            );
            assert_eq!(
                s.pool_asks().await,
                asks,
                "get_project_config asked the pool"
            );
        }
        // Many concurrent callers during the outage: none hangs.
        let t = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..30u32 {
            let client = s.client.clone();
            let url = format!("{}am_get_info.php?account_key={key}&i={i}", s.server.url());
            tasks.push(tokio::spawn(async move {
                client.get(url).send().await.unwrap().text().await.unwrap()
            }));
        }
        for t in tasks {
            assert_error(&t.await.unwrap(), -138);
        }
        assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());

        s.mariadb.resume().await;
        let back = Instant::now();
        let mut n = 100 * round;
        loop {
            n += 1;
            if all_succeed(&s, &key, &hash, n).await {
                break;
            }
            assert!(
                back.elapsed() < Duration::from_secs(5),
                "not serving 5 s after the database returned"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Nothing half-written: every user has its ENROLL row.
    let mut c = mysql_async::Conn::new(s.mariadb.settings("boinc_outage").opts())
        .await
        .unwrap();
    assert_eq!(robust::users_without_consent(&mut c, "%").await, 0);
    c.disconnect().await.ok();
    s.server.stop().await;
}
