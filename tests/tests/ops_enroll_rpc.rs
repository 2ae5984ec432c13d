//! Cross-crate: enabling ENROLL on the ops page makes get_project_config
//! show the terms of use within 2 s (and disabling hides them again), with
//! the RPC server's default cache settings.

use std::time::{Duration, Instant};

use boinc_db::testing::TestDb;
use boinc_db::ProjectConfig;
use boinc_ops::{ConsentOps, Credentials, ServeOptions};

const USER: &str = "admin";
const PASS: &str = "EnrollPass123";
const TERMS: &str = "Be nice to the volunteers.";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Poll get_project_config until `want(body)`; returns how long it took.
async fn until(rpc: &str, within: Duration, want: impl Fn(&str) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        let body = client()
            .get(format!("{rpc}get_project_config.php"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if want(&body) {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "not within {within:?}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Press the Enable/Disable button for ENROLL the way a browser would.
async fn set_enroll(ops_base: &str, on: bool) {
    let page = client()
        .get(format!("{ops_base}/"))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    let cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    let key = "name=\"csrf\" value=\"";
    let i = html.find(key).expect("csrf field") + key.len();
    let csrf = &html[i..i + html[i..].find('"').unwrap()];
    let r = client()
        .post(format!("{ops_base}/set"))
        .basic_auth(USER, Some(PASS))
        .header("cookie", cookie)
        .form(&[
            ("csrf", csrf),
            ("shortname", "ENROLL"),
            ("field", "enabled"),
            ("value", if on { "on" } else { "off" }),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_enroll_toggle_shows_terms_in_get_project_config() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = db.write_project(dir.path(), "", Some(TERMS));
    let config = ProjectConfig::load(&cfg_path).unwrap();
    let rpc = boinc_rpc::spawn(boinc_rpc::AppState::new(config).unwrap(), "127.0.0.1:0")
        .await
        .unwrap();
    let rpc_url = rpc.url();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ops_base = format!("http://{}", listener.local_addr().unwrap());
    let ops = tokio::spawn(boinc_ops::serve(
        listener,
        ConsentOps::new(db.pool()),
        ServeOptions {
            read_only: false,
            credentials: Some(Credentials::new(USER, &bcrypt::hash(PASS, 4).unwrap()).unwrap()),
            ..Default::default()
        },
    ));

    // ENROLL starts disabled: no terms even though the file exists.
    until(&rpc_url, Duration::from_secs(5), |b| {
        b.contains("<project_config>") && !b.contains("<terms_of_use>")
    })
    .await;

    set_enroll(&ops_base, true).await;
    let took = until(&rpc_url, Duration::from_secs(2), |b| {
        b.contains("<terms_of_use>") && b.contains(TERMS)
    })
    .await;
    eprintln!("terms appeared after {took:?}");

    set_enroll(&ops_base, false).await;
    until(&rpc_url, Duration::from_secs(2), |b| {
        !b.contains("<terms_of_use>")
    })
    .await;

    ops.abort();
    rpc.stop().await;
}
