//! Fault-injection soak: what a reply promises (SPEC section 3) holds
//! under everything at once. Two boinc-rpc processes behind HAProxy on a
//! private MariaDB; mixed requests (grouped and alone consent changes,
//! sign-ups with consent, reads) while the test kills random database
//! connections, holds random accounts' rows past the request deadline,
//! restarts MariaDB once and SIGHUPs one instance. Afterwards:
//! - every `<success/>` is in the database, every error-answered change
//!   is not (each change carries a unique source, each sign-up a unique
//!   email);
//! - each account's consent history is its acknowledged changes in the
//!   order they were acknowledged (each account's calls are sequential);
//! - every account a sign-up created has the consent row it asked for.
//!
//! Size: `BOINC_SOAK_REQUESTS` (default 4,000, what CI runs). The full
//! run, as a bench:
//! `BOINC_SOAK_REQUESTS=100000 cargo nextest run --release -p boinc-rpc -E 'binary(soak)' --no-capture`

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boinc_db::testing::{free_port, insert_account, PrivateMariaDb};
use common::passwd_hash;
use common::procs::{start_haproxy, start_rpc, wait_up};
use mysql_async::prelude::*;
use rand::{Rng, SeedableRng};

/// Client tasks; each owns its accounts, so one account's calls are
/// sequential and their order is known.
const CLIENTS: usize = 24;
const ACCOUNTS_PER_CLIENT: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Error(i32),
    /// No XML reply (HTTP 503 "outcome unknown", a broken connection):
    /// the change may or may not be written.
    Unknown,
}

fn outcome(status: Option<u16>, body: &str) -> Outcome {
    if status != Some(200) {
        return Outcome::Unknown;
    }
    if let Some(n) = common::error_num(body) {
        Outcome::Error(n)
    } else if body.contains("<success/>") || body.contains("<authenticator>") {
        Outcome::Success
    } else {
        Outcome::Unknown
    }
}

/// One consent change sent: (account index, flag, source, outcome).
#[derive(Debug, Clone)]
struct Flip {
    account: usize,
    flag: bool,
    source: String,
    outcome: Outcome,
}

#[derive(Debug, Clone)]
struct SignUp {
    email: String,
    outcome: Outcome,
}

#[derive(Default)]
struct Faults {
    kills: AtomicU64,
    locks: AtomicU64,
    restarts: AtomicU64,
    sighups: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replies_keep_their_promise_under_faults() {
    let total: usize = std::env::var("BOINC_SOAK_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let mut server = PrivateMariaDb::start().await;
    let settings = server.settings("soak");
    boinc_db::schema::init(&settings).await.unwrap();
    let pool = boinc_db::pool(&settings);
    let mut c = pool.get_conn().await.unwrap();
    c.query_drop("UPDATE consent_type SET enabled = 1 WHERE shortname IN ('ENROLL','STATSEXPORT')")
        .await
        .unwrap();
    let n_accounts = CLIENTS * ACCOUNTS_PER_CLIENT;
    let mut ids = Vec::new();
    let mut keys = Vec::new();
    for i in 0..n_accounts {
        let key = format!("{:032x}", 0x50A4_0000_0000_u64 + i as u64);
        ids.push(insert_account(&mut c, i, &key).await);
        keys.push(key);
    }
    drop(c);

    let dir = tempfile::tempdir().unwrap();
    let config = boinc_db::testing::write_project(
        &settings,
        dir.path(),
        "<rpc_request_timeout>3</rpc_request_timeout>\
         <rpc_trusted_proxies>127.0.0.1</rpc_trusted_proxies>\
         <rpc_create_account_per_ip_per_hour>0</rpc_create_account_per_ip_per_hour>\
         <rpc_failed_logins_per_ip>1000000</rpc_failed_logins_per_ip>",
        Some("Terms of the soak."),
    );
    let ports = [free_port(), free_port()];
    let rpcs = [
        start_rpc(&config, ports[0], dir.path().join("rpc0.log")),
        start_rpc(&config, ports[1], dir.path().join("rpc1.log")),
    ];
    for p in ports {
        wait_up(p, "boinc-rpc").await;
    }
    let lb = free_port();
    let _haproxy = start_haproxy(dir.path(), lb, &ports);
    wait_up(lb, "haproxy").await;

    let sent = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let faults = Arc::new(Faults::default());

    // The fault injector: kills and row locks all along.
    let injector = {
        let (pool, ids, done, faults, db_name) = (
            pool.clone(),
            ids.clone(),
            done.clone(),
            faults.clone(),
            settings.name.clone(),
        );
        tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(7);
            let mut holders: Vec<(Instant, mysql_async::Conn)> = Vec::new();
            while !done.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(rng.random_range(20..120))).await;
                // Let go of locks whose time is up.
                let now = Instant::now();
                let mut kept = Vec::new();
                for (until, mut h) in holders.drain(..) {
                    if until <= now {
                        let _ = h.query_drop("ROLLBACK").await;
                    } else {
                        kept.push((until, h));
                    }
                }
                holders = kept;
                let Ok(mut c) = pool.get_conn().await else {
                    continue;
                };
                if rng.random_bool(0.6) {
                    // A random connection of the servers' (not ours).
                    let victims: Vec<u64> = c
                        .exec(
                            "SELECT id FROM information_schema.PROCESSLIST \
                             WHERE db = ? AND id <> CONNECTION_ID() AND command <> 'Daemon'",
                            (&db_name,),
                        )
                        .await
                        .unwrap_or_default();
                    if !victims.is_empty() {
                        let v = victims[rng.random_range(0..victims.len())];
                        if c.query_drop(format!("KILL CONNECTION {v}")).await.is_ok() {
                            faults.kills.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                } else if holders.len() < 4 {
                    // Hold a random account past the request deadline (3 s)
                    // or briefly.
                    let Ok(mut h) = pool.get_conn().await else {
                        continue;
                    };
                    let id = ids[rng.random_range(0..ids.len())];
                    let held = async {
                        h.query_drop("START TRANSACTION").await?;
                        h.exec_drop("SELECT id FROM user WHERE id = ? FOR UPDATE", (id,))
                            .await
                    };
                    if held.await.is_ok() {
                        faults.locks.fetch_add(1, Ordering::Relaxed);
                        let ms = rng.random_range(100..5000);
                        holders.push((Instant::now() + Duration::from_millis(ms), h));
                    }
                }
            }
            for (_, mut h) in holders {
                let _ = h.query_drop("ROLLBACK").await;
            }
        })
    };

    // The clients.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{lb}");
    let per_client = total / CLIENTS;
    let mut tasks = Vec::new();
    for t in 0..CLIENTS {
        let (client, base, keys, sent, pool, ids) = (
            client.clone(),
            base.clone(),
            keys.clone(),
            sent.clone(),
            pool.clone(),
            ids.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(t as u64);
            let mine: Vec<usize> =
                (t * ACCOUNTS_PER_CLIENT..(t + 1) * ACCOUNTS_PER_CLIENT).collect();
            // What each account's latest flag is, as far as this client knows.
            let mut believed: HashMap<usize, bool> = HashMap::new();
            let mut flips = Vec::new();
            let mut signups = Vec::new();
            for seq in 0..per_client {
                sent.fetch_add(1, Ordering::Relaxed);
                let roll: f64 = rng.random();
                if roll < 0.75 {
                    let account = mine[rng.random_range(0..mine.len())];
                    let flag = !believed.get(&account).copied().unwrap_or(false);
                    let source = format!("s{t}-{seq}");
                    let mut form = vec![
                        ("account_key", keys[account].clone()),
                        ("consent_name", "STATSEXPORT".into()),
                        ("consent_flag", if flag { "1" } else { "0" }.into()),
                        ("consent_not_required", "0".into()),
                        ("consent_source", source.clone()),
                    ];
                    if rng.random_bool(0.3) {
                        // Not consent-only: applied alone.
                        form.push(("venue", format!("v{seq}")));
                    }
                    let r = client
                        .post(format!("{base}/am_set_info.php"))
                        .form(&form)
                        .send()
                        .await;
                    let o = match r {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            outcome(Some(status), &r.text().await.unwrap_or_default())
                        }
                        Err(_) => Outcome::Unknown,
                    };
                    match o {
                        Outcome::Success => {
                            believed.insert(account, flag);
                        }
                        Outcome::Unknown => {
                            // Learn the truth before the next change.
                            believed.insert(account, latest_flag(&pool, ids[account]).await);
                        }
                        Outcome::Error(_) => {}
                    }
                    flips.push(Flip {
                        account,
                        flag,
                        source,
                        outcome: o,
                    });
                } else if roll < 0.80 {
                    let email = format!("soak{t}-{seq}@example.com");
                    let hash = passwd_hash("secret", &email);
                    let r = client
                        .post(format!("{base}/create_account.php"))
                        .form(&[
                            ("email_addr", email.as_str()),
                            ("passwd_hash", hash.as_str()),
                            ("user_name", &format!("Soak {t} {seq}")),
                            ("consent_flag", "1"),
                            ("source", "soak"),
                        ])
                        .send()
                        .await;
                    let o = match r {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            outcome(Some(status), &r.text().await.unwrap_or_default())
                        }
                        Err(_) => Outcome::Unknown,
                    };
                    signups.push(SignUp { email, outcome: o });
                } else {
                    let _ = client
                        .get(format!("{base}/get_project_config.php"))
                        .send()
                        .await;
                }
            }
            (flips, signups)
        }));
    }

    // Once, a third of the way in: MariaDB restarts. Two thirds in: one
    // instance is stopped the way BOINC's bin/stop does it.
    let mut restarted = false;
    let mut stopped = false;
    while !tasks.iter().all(|t| t.is_finished()) {
        let progress = sent.load(Ordering::Relaxed) as usize;
        if !restarted && progress >= total / 3 {
            server.stop();
            tokio::time::sleep(Duration::from_millis(500)).await;
            server.resume().await;
            faults.restarts.fetch_add(1, Ordering::Relaxed);
            restarted = true;
        }
        if !stopped && progress >= 2 * total / 3 {
            rpcs[0].signal(libc::SIGHUP);
            faults.sighups.fetch_add(1, Ordering::Relaxed);
            stopped = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut flips = Vec::new();
    let mut signups = Vec::new();
    for t in tasks {
        let (f, s) = t.await.unwrap();
        flips.extend(f);
        signups.extend(s);
    }
    done.store(true, Ordering::SeqCst);
    injector.await.unwrap();
    assert!(restarted && stopped, "the run was too short for its faults");
    // Whatever is still in flight inside the servers would land now: give
    // it the request deadline and the lookup budget, then look.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let stopped_log = rpcs[0].log();
    assert!(
        stopped_log.contains("Quitting due to SIGHUP"),
        "instance 0 stopped on SIGHUP: {stopped_log}"
    );

    // The checks.
    let mut c = pool.get_conn().await.unwrap();
    let rows: Vec<(i64, i64, String)> = c
        .query(
            "SELECT c.userid, c.consent_flag, c.source FROM consent c \
             JOIN consent_type t ON t.id = c.consent_type_id \
             WHERE t.shortname = 'STATSEXPORT' ORDER BY c.id",
        )
        .await
        .unwrap();
    let by_source: HashMap<&str, (i64, i64)> = rows
        .iter()
        .map(|(u, f, s)| (s.as_str(), (*u, *f)))
        .collect();
    assert_eq!(
        by_source.len(),
        rows.len(),
        "each change recorded at most once"
    );
    let count = |o: fn(&Outcome) -> bool| flips.iter().filter(|f| o(&f.outcome)).count();
    let (ok, err, unknown) = (
        count(|o| *o == Outcome::Success),
        count(|o| matches!(o, Outcome::Error(_))),
        count(|o| *o == Outcome::Unknown),
    );
    let mut missing = Vec::new();
    let mut undone_errors = Vec::new();
    for f in &flips {
        let row = by_source.get(f.source.as_str());
        match f.outcome {
            Outcome::Success => match row {
                Some((u, flag)) if *u == ids[f.account] && (*flag == 1) == f.flag => {}
                _ => missing.push(f.clone()),
            },
            Outcome::Error(_) => {
                if row.is_some() {
                    undone_errors.push(f.clone());
                }
            }
            Outcome::Unknown => {}
        }
    }
    // Per account: its rows, in id order, are its acknowledged changes in
    // the order acknowledged (unknown outcomes may sit in between).
    let mut out_of_order = 0;
    for (a, id) in ids.iter().enumerate() {
        let acked: Vec<&str> = flips
            .iter()
            .filter(|f| f.account == a && f.outcome == Outcome::Success)
            .map(|f| f.source.as_str())
            .collect();
        let unknown: Vec<&str> = flips
            .iter()
            .filter(|f| f.account == a && f.outcome == Outcome::Unknown)
            .map(|f| f.source.as_str())
            .collect();
        let history: Vec<&str> = rows
            .iter()
            .filter(|r| r.0 == *id && !unknown.contains(&r.2.as_str()))
            .map(|r| r.2.as_str())
            .collect();
        if history != acked {
            out_of_order += 1;
        }
    }
    // Sign-ups: a success exists with its ENROLL consent; an error does not
    // exist; an unknown one, if it exists, has its consent too.
    let mut signup_problems = Vec::new();
    for s in &signups {
        let found: Option<(i64, Option<i64>)> = c
            .exec_first(
                "SELECT u.id, (SELECT COUNT(*) FROM consent c JOIN consent_type t \
                   ON t.id = c.consent_type_id \
                   WHERE c.userid = u.id AND t.shortname = 'ENROLL' AND c.consent_flag = 1 \
                   AND c.source = 'soak') \
                 FROM user u WHERE u.email_addr = ?",
                (&s.email,),
            )
            .await
            .unwrap();
        // Success must have written the consented account; an error must
        // have written nothing; an unknown outcome may be either.
        let ok = matches!(
            (s.outcome, found),
            (Outcome::Success, Some((_, Some(1))))
                | (Outcome::Error(_), None)
                | (Outcome::Unknown, None)
                | (Outcome::Unknown, Some((_, Some(1))))
        );
        if !ok {
            signup_problems.push((s.clone(), found));
        }
    }
    let signups_ok = signups
        .iter()
        .filter(|s| s.outcome == Outcome::Success)
        .count();
    println!(
        "soak: {} requests ({} consent changes: {ok} success, {err} error, {unknown} unknown; \
         {} sign-ups: {signups_ok} success); faults: {} connections killed, {} rows held, \
         {} MariaDB restart, {} SIGHUP; successes missing: {}, error-answered changes found: {}, \
         histories out of order: {out_of_order}, sign-ups inconsistent: {}",
        sent.load(Ordering::Relaxed),
        flips.len(),
        signups.len(),
        faults.kills.load(Ordering::Relaxed),
        faults.locks.load(Ordering::Relaxed),
        faults.restarts.load(Ordering::Relaxed),
        faults.sighups.load(Ordering::Relaxed),
        missing.len(),
        undone_errors.len(),
        signup_problems.len(),
    );
    assert!(
        missing.is_empty(),
        "acknowledged but not written: {missing:?}"
    );
    assert!(
        undone_errors.is_empty(),
        "answered with an error, yet written: {undone_errors:?}"
    );
    assert_eq!(out_of_order, 0, "histories out of acknowledged order");
    assert!(signup_problems.is_empty(), "{signup_problems:?}");
    // The faults did bite: some calls failed, and the rest went on.
    assert!(faults.kills.load(Ordering::Relaxed) > 0);
    assert!(faults.locks.load(Ordering::Relaxed) > 0);
    assert!(
        ok > flips.len() / 2,
        "most changes succeed: {ok} of {}",
        flips.len()
    );
}

/// An account's latest STATSEXPORT flag, asked until the database answers.
async fn latest_flag(pool: &mysql_async::Pool, userid: i64) -> bool {
    loop {
        let asked = async {
            let mut c = pool.get_conn().await?;
            c.exec_first::<i64, _, _>(
                "SELECT c.consent_flag FROM consent c JOIN consent_type t \
                   ON t.id = c.consent_type_id \
                 WHERE c.userid = ? AND t.shortname = 'STATSEXPORT' \
                 ORDER BY c.consent_time DESC, c.id DESC LIMIT 1",
                (userid,),
            )
            .await
        };
        if let Ok(flag) = asked.await {
            return flag == Some(1);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
