//! `GET /health` and `GET /metrics` (SPEC section 9): health follows the
//! database (through a proxy the test cuts, stalls and restores), a load
//! balancer acts on it, and the metrics, read by a Prometheus text parser,
//! count exactly what was sent.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use boinc_db::testing::{free_port, insert_account, TestDb};
use common::procs::{start_haproxy_with, start_rpc, wait_up};
use common::proxy::{test_server_addr, DbProxy};
use common::*;

async fn health(client: &reqwest::Client, base: &str) -> (u16, String) {
    match client.get(format!("{base}/health")).send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// Polls `/health` until its status is `want`; how long that took.
async fn until_health(
    client: &reqwest::Client,
    base: &str,
    want: u16,
    limit: Duration,
) -> Duration {
    let t = Instant::now();
    loop {
        let (status, body) = health(client, base).await;
        if status == want {
            if want == 503 {
                assert!(body.contains("database"), "a short reason: {body:?}");
                assert_eq!(body.lines().count(), 1, "one line: {body:?}");
            } else {
                assert_eq!(body, "ok\n");
            }
            return t.elapsed();
        }
        assert!(
            t.elapsed() < limit,
            "/health not {want} within {limit:?}: {status} {body:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Cut (refused connections) and stalled (accepted, never answered) alike:
/// 503 within 3 s, get_project_config still served from its cache, and 200
/// again within 5 s of the database coming back.
#[tokio::test]
async fn health_follows_the_database() {
    let mut proxy = DbProxy::start(test_server_addr()).await;
    let h = Harness::build("", Some(TERMS), test_options(), Some(proxy.port)).await;
    let base = format!("http://{}", h.server.addr);
    let client = reqwest::Client::new();
    until_health(&client, &base, 200, Duration::from_secs(10)).await;
    let cached = h.get("get_project_config.php").await;

    for stall in [false, true] {
        if stall {
            proxy.stall().await;
        } else {
            proxy.cut();
        }
        let down = until_health(&client, &base, 503, Duration::from_secs(10)).await;
        assert!(down <= Duration::from_secs(3), "503 after {down:?}");
        assert_eq!(h.get("get_project_config.php").await, cached);
        proxy.restore().await;
        let up = until_health(&client, &base, 200, Duration::from_secs(10)).await;
        assert!(up <= Duration::from_secs(5), "200 again after {up:?}");
    }
    // Probes are answered from memory: a burst costs the database nothing.
    // Counted at the proxy the server reaches the database through: the
    // server's global `Connections` counter moves with every parallel test.
    let before = proxy.accepted();
    for _ in 0..200 {
        assert_eq!(health(&client, &base).await.0, 200);
    }
    let opened = proxy.accepted() - before;
    assert!(opened < 5, "200 probes opened {opened} connections");
}

fn scrape(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses")
}

/// The value of one sample with exactly these labels (counters: the
/// `_total` series).
fn value(s: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let want: HashMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    s.samples
        .iter()
        .filter(|x| x.metric == metric && *x.labels == want)
        .map(|x| match &x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(b) => b.iter().map(|c| c.count).fold(0.0, f64::max),
            prometheus_parse::Value::Summary(_) => f64::NAN,
        })
        .next()
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_what_was_sent() {
    let h = Harness::consent_project("").await;
    h.set_type_enabled("STATSEXPORT", true).await;
    let mut c = h.conn().await;
    let mut keys = Vec::new();
    for i in 0..6 {
        let key = format!("{:032x}", 0x3E7_0000_u64 + i);
        insert_account(&mut c, i as usize, &key).await;
        keys.push(key);
    }
    for _ in 0..7 {
        h.get("get_project_config.php").await;
    }
    // Three unknown keys: -136.
    for _ in 0..3 {
        let r = h
            .call("am_get_info.php", &[("account_key", "nosuchkey")])
            .await;
        assert_error(&r, -136);
    }
    // Six consent changes at once (grouped), two with a profile field
    // (alone), one repeated (nothing recorded).
    let mut calls = Vec::new();
    for k in &keys {
        let (client, url, k) = (h.client.clone(), h.url("am_set_info.php"), k.clone());
        calls.push(tokio::spawn(async move {
            let p = [
                ("account_key", k.as_str()),
                ("consent_name", "STATSEXPORT"),
                ("consent_flag", "1"),
                ("consent_not_required", "0"),
                ("consent_source", "m"),
            ];
            client
                .post(url)
                .form(&p)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }));
    }
    for call in calls {
        assert!(call.await.unwrap().contains("<success/>"));
    }
    for (k, flag) in [(&keys[0], "0"), (&keys[1], "0")] {
        let r = h
            .call(
                "am_set_info.php",
                &[
                    ("account_key", k),
                    ("consent_name", "STATSEXPORT"),
                    ("consent_flag", flag),
                    ("consent_not_required", "0"),
                    ("consent_source", "m"),
                    ("venue", "home"),
                ],
            )
            .await;
        assert!(r.contains("<success/>"), "{r}");
    }
    let r = h
        .call(
            "am_set_info.php",
            &[
                ("account_key", &keys[2]),
                ("consent_name", "STATSEXPORT"),
                ("consent_flag", "1"),
                ("consent_not_required", "0"),
                ("consent_source", "m"),
            ],
        )
        .await;
    assert!(r.contains("<success/>"), "{r}");

    let resp = h
        .client
        .get(format!("http://{}/metrics", h.server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = resp.text().await.unwrap();
    let s = scrape(&text);
    let req = "boinc_rpc_requests_total";
    assert_eq!(
        value(
            &s,
            req,
            &[("rpc", "get_project_config"), ("outcome", "success")]
        ),
        7.0
    );
    assert_eq!(
        value(&s, req, &[("rpc", "am_get_info"), ("outcome", "-136")]),
        3.0
    );
    assert_eq!(
        value(&s, req, &[("rpc", "am_set_info"), ("outcome", "success")]),
        9.0
    );
    // The latency histogram counted each request once.
    assert_eq!(
        value(
            &s,
            "boinc_rpc_request_duration_seconds",
            &[("rpc", "am_set_info")]
        ),
        9.0
    );
    let changes = "boinc_rpc_consent_changes_total";
    assert_eq!(
        value(&s, changes, &[("path", "grouped"), ("recorded", "true")]),
        6.0
    );
    assert_eq!(
        value(&s, changes, &[("path", "grouped"), ("recorded", "false")]),
        1.0
    );
    assert_eq!(
        value(&s, changes, &[("path", "alone"), ("recorded", "true")]),
        2.0
    );
    // Groups: as many changes as were committed grouped (the sum of the
    // group sizes).
    let sum: Option<f64> = text
        .lines()
        .find_map(|l| l.strip_prefix("boinc_rpc_consent_group_size_sum "))
        .and_then(|v| v.trim().parse().ok());
    assert_eq!(sum, Some(7.0), "{text}");
    assert!(text.contains("boinc_rpc_build_info{version=\""), "{text}");
    assert!(text.contains("# TYPE boinc_rpc_db_pool_wait_seconds histogram"));
}

/// `rpc_metrics` 0: nothing is counted or served, the RPCs are unchanged.
#[tokio::test]
async fn metrics_can_be_turned_off() {
    let h = Harness::consent_project("<rpc_metrics>0</rpc_metrics>").await;
    let r = h.get("get_project_config.php").await;
    assert!(r.contains("<project_config>"), "{r}");
    let resp = h
        .client
        .get(format!("http://{}/metrics", h.server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.text().await.unwrap(),
        "metrics are off (rpc_metrics 0 in config.xml)\n"
    );
    assert!(!h.server.state.metrics.enabled());
    // Health is not a metric: it stays.
    let base = format!("http://{}", h.server.addr);
    until_health(&h.client, &base, 200, Duration::from_secs(10)).await;
}

/// HAProxy with `option httpchk GET /health` takes an instance out when
/// its database goes, and back when it returns: meanwhile every request
/// through the balancer is served by the other instance.
#[tokio::test]
async fn a_load_balancer_takes_an_instance_without_its_database_out() {
    let db = TestDb::new().await;
    let mut proxies = [
        DbProxy::start(test_server_addr()).await,
        DbProxy::start(test_server_addr()).await,
    ];
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_port(), free_port()];
    let mut rpcs = Vec::new();
    for (i, proxy) in proxies.iter().enumerate() {
        let pdir = dir.path().join(format!("p{i}"));
        let config = db.write_project(&pdir, "", Some(TERMS));
        let xml = std::fs::read_to_string(&config).unwrap();
        let s = &db.settings;
        let xml = xml.replace(
            &format!("<db_host>{}:{}</db_host>", s.host, s.port),
            &format!("<db_host>127.0.0.1:{}</db_host>", proxy.port),
        );
        std::fs::write(&config, xml).unwrap();
        rpcs.push(start_rpc(&config, ports[i], pdir.join("rpc.log")));
    }
    for p in ports {
        wait_up(p, "boinc-rpc").await;
    }
    let lb = free_port();
    let haproxy = start_haproxy_with(
        dir.path(),
        lb,
        &ports,
        "    option httpchk GET /health\n    http-check expect status 200\n",
    );
    wait_up(lb, "haproxy").await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let key = "00000000000000000000000000abcdef";
    insert_account(&mut db.conn().await, 0, key).await;
    let url = format!("http://127.0.0.1:{lb}/am_get_info.php?account_key={key}");
    let answered = |b: &str| b.contains("<success/>");
    let served_by = |i: usize| {
        rpcs[i]
            .log()
            .lines()
            .filter(|l| l.contains("\"am_get_info\""))
            .count()
    };

    proxies[0].cut();
    // Once HAProxy has seen instance 0's 503 (checks every 200 ms, one
    // failure takes it out), every request is answered by instance 1.
    let t = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = served_by(0);
        let mut bodies = Vec::new();
        for _ in 0..10 {
            bodies.push(client.get(&url).send().await.unwrap().text().await.unwrap());
        }
        if bodies.iter().all(|b| answered(b)) && served_by(0) == before {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "instance 0 never taken out: {bodies:?} {} {}",
            served_by(0),
            haproxy.log()
        );
    }
    proxies[0].restore().await;
    let t = Instant::now();
    let before = served_by(0);
    while served_by(0) == before {
        let body = client.get(&url).send().await.unwrap().text().await.unwrap();
        assert!(answered(&body), "{body}");
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "instance 0 never back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
