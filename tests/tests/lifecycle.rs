//! Our binaries in a BOINC project, run the way BOINC's `bin/start` and
//! `bin/stop` run daemons and tasks (a stand-in harness in common/, since
//! upstream's scripts can't ship): installed with `boinc-ops project
//! install`, started from `tmp_HOST` with `bin/` on PATH and output in
//! `log_HOST/`, stopped with `stop_daemons` + SIGHUP.

mod common;

use std::time::{Duration, Instant};

use boinc_db::testing::{free_port, write_made_project, TestDb};
use common::{bin_dir, passwd_hash, short_hostname, wait_exit, wait_http, Project};
use mysql_async::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn daemons_and_tasks_under_start_and_stop() {
    let db = TestDb::new().await;
    let mut c = db.conn().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("life");
    let host = short_hostname();
    let config = write_made_project(&dir, &db.settings, "life", &host);
    // The ops page is configured, so install adds its daemon too.
    let ops_hash = bcrypt::hash_with_result("ops-admin-password", 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    let xml = std::fs::read_to_string(&config).unwrap().replace(
        "    </config>",
        &format!("        <ops_user>admin</ops_user>\n        <ops_password_hash>{ops_hash}</ops_password_hash>\n        <rpc_create_account_per_ip_per_hour>0</rpc_create_account_per_ip_per_hour>\n    </config>"),
    );
    std::fs::write(&config, xml).unwrap();
    let rpc_port = free_port();
    let ops_port = free_port();
    let bins = bin_dir();
    let out = std::process::Command::new(bins.join("boinc-ops"))
        .args(["project", "install", "--project-dir"])
        .arg(&dir)
        .arg("--from")
        .arg(&bins)
        .args(["--listen", &format!("127.0.0.1:{rpc_port}")])
        .args(["--ops-listen", &format!("127.0.0.1:{ops_port}")])
        .arg("--enable-db-dump")
        .arg("--web-conf-dir")
        .arg(tmp.path().join("web"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = Project::new(&dir, &host);
    assert_eq!(
        p.daemon_cmds(),
        vec![
            format!("boinc-rpc --listen 127.0.0.1:{rpc_port}"),
            format!("boinc-ops serve --listen 127.0.0.1:{ops_port}")
        ]
    );

    // bin/start: both daemons come up and answer.
    let mut daemons = p.start();
    let base = format!("http://127.0.0.1:{rpc_port}/");
    let reply = wait_http(&format!("{base}get_project_config.php")).await;
    assert!(reply.contains("<name>life</name>"), "{reply}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let start = Instant::now();
    loop {
        // The ops page asks for its login: it runs, behind basic auth.
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{ops_port}/"))
            .send()
            .await
        {
            assert_eq!(r.status(), 401);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "ops page did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The daemons hold start's lock through the descriptor they inherited:
    // `start --cron` finds them running and starts no second copy.
    for d in &daemons {
        assert!(
            p.lock_held(&d.program),
            "{} dropped start's lock",
            d.program
        );
    }
    for cmd in p.daemon_cmds() {
        assert!(p.start_daemon(&cmd).is_none(), "a second {cmd} was started");
    }

    // Three sign-ups, then the db_dump task publishes html/stats.
    for i in 0..3 {
        let email = format!("early{i}@example.com");
        let r = client
            .post(format!("{base}create_account.php"))
            .form(&[
                ("email_addr", email.as_str()),
                ("passwd_hash", passwd_hash("pw", &email).as_str()),
                ("user_name", &format!("Early {i}")),
            ])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(r.contains("<authenticator>"), "{r}");
    }
    // Only users with credit are exported (as upstream's db_dump does).
    c.query_drop(
        "UPDATE user SET total_credit = 10, expavg_credit = 1 WHERE email_addr LIKE 'early%'",
    )
    .await
    .unwrap();
    // Upstream's own upgrade (tools/upgrade) copies its programs over bin/,
    // db_dump included, and its spec over db_dump_spec.xml: the task still
    // runs ours, with our spec.
    let upstream = "#!/bin/sh\necho upstream db_dump ran >> ../upstream_db_dump_ran\n";
    std::fs::write(dir.join("bin/db_dump"), upstream).unwrap();
    std::fs::write(
        dir.join("db_dump_spec.xml"),
        "<boinc_db_dump_spec>\n<output_dir>../html/upstream_tmp</output_dir>\n<final_output_dir>../html/upstream</final_output_dir>\n</boinc_db_dump_spec>\n",
    )
    .unwrap();
    let status = p.run_task("boinc_consent_db_dump");
    assert!(status.success(), "{}", p.log("db_dump.out"));
    assert!(!dir.join("upstream_db_dump_ran").exists());
    assert!(!dir.join("html/upstream").exists());
    let stats = dir.join("html/stats");
    for f in ["tables.xml", "user.gz", "host.gz", "team.gz"] {
        assert!(
            stats.join(f).is_file(),
            "{f} not published: {}",
            p.log("db_dump.out")
        );
    }
    let tables = std::fs::read_to_string(stats.join("tables.xml")).unwrap();
    assert!(
        tables.contains("<nusers_total>3</nusers_total>"),
        "{tables}"
    );
    assert!(!dir.join("html/stats_tmp").exists());
    let mut users = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(stats.join("user.gz")).unwrap()),
        &mut users,
    )
    .unwrap();
    assert!(users.contains("<name>Early 2</name>"), "{users}");

    // bin/stop in the middle of a burst of sign-ups: every request the
    // server took is answered and committed; the rest are refused before
    // anything happened; both daemons exit 0.
    let no_keepalive = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut burst = Vec::new();
    for i in 0..40 {
        let client = no_keepalive.clone();
        let url = format!("{base}create_account.php");
        burst.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 15)).await;
            let email = format!("burst{i}@example.com");
            let r = client
                .post(url)
                .form(&[
                    ("email_addr", email.as_str()),
                    ("passwd_hash", passwd_hash("pw", &email).as_str()),
                    ("user_name", &format!("Burst {i}")),
                ])
                .send()
                .await;
            let r = match r {
                Ok(r) => r,
                Err(e) => return (email, Err(e.to_string())),
            };
            assert_eq!(r.status(), 200, "an accepted request must be answered");
            let body = r.text().await.expect("a whole reply");
            (email, Ok(body))
        }));
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    let pids = p.stop();
    assert_eq!(pids.len(), 2);
    let mut answered = 0;
    for t in burst {
        let (email, r) = t.await.unwrap();
        let exists: Option<i64> = c
            .exec_first("SELECT id FROM user WHERE email_addr = ?", (&email,))
            .await
            .unwrap();
        match r {
            Ok(body) if body.contains("<authenticator>") => {
                assert!(exists.is_some(), "{email} answered but not stored");
                answered += 1;
            }
            // A loaded machine may time a sign-up out: a whole error reply,
            // and nothing stored.
            Ok(body) => {
                assert!(body.contains("<error_num>"), "{body}");
                assert!(exists.is_none(), "{email} stored but refused: {body}");
            }
            Err(e) => assert!(exists.is_none(), "{email} stored but its reply lost: {e}"),
        }
    }
    assert!(answered > 0, "the burst never reached the server");
    for d in &mut daemons {
        let s = wait_exit(&mut d.child, Duration::from_secs(40));
        assert_eq!(s.code(), Some(0), "{} exit: {s:?}", d.program);
    }
    let rpc_log = p.log("boinc-rpc.log");
    assert!(rpc_log.contains("Quitting due to SIGHUP"), "{rpc_log}");
    let ops_log = p.log("boinc-ops.log");
    assert!(ops_log.contains("Quitting due to SIGHUP"), "{ops_log}");
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", rpc_port))
        .await
        .is_err());

    // While stop_daemons is there, the db_dump task quits at once and
    // leaves the published dump alone.
    let before: Vec<_> = std::fs::read_dir(&stats)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let mtime = std::fs::metadata(stats.join("tables.xml"))
        .unwrap()
        .modified()
        .unwrap();
    let status = p.run_task("boinc_consent_db_dump");
    assert_eq!(status.code(), Some(0));
    let out = p.log("db_dump.out");
    assert!(out.contains("Quitting because trigger file"), "{out}");
    let after: Vec<_> = std::fs::read_dir(&stats)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(before, after);
    assert_eq!(
        std::fs::metadata(stats.join("tables.xml"))
            .unwrap()
            .modified()
            .unwrap(),
        mtime
    );

    // A daemon also stops by itself when stop_daemons appears (no signal).
    let mut daemons = p.start();
    wait_http(&format!("{base}get_project_config.php")).await;
    std::fs::write(dir.join("stop_daemons"), "<stop/>\n").unwrap();
    for d in &mut daemons {
        let s = wait_exit(&mut d.child, Duration::from_secs(20));
        assert_eq!(s.code(), Some(0), "{}", d.program);
    }
    assert!(p
        .log("boinc-rpc.log")
        .contains("Quitting because trigger file"));

    // Logs are plain text: no escape bytes, a timestamp on every line.
    for (name, bytes) in p.logs() {
        assert!(!bytes.contains(&0x1b), "escape byte in {name}");
        let text = String::from_utf8(bytes).unwrap();
        for line in text
            .lines()
            .filter(|l| l.contains(" INFO ") || l.contains(" ERROR "))
        {
            assert!(
                line.as_bytes()[..4].iter().all(u8::is_ascii_digit),
                "{name}: {line}"
            );
        }
    }
    c.disconnect().await.ok();
}
