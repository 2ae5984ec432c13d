//! The mixed run: 100,000+ requests of every RPC, then the consistency
//! checks (issue 5's acceptance run).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use mysql_async::prelude::*;

use super::probe::Http;
use crate::load;

/// 32 keep-alive connections; per 1000 requests: 3 create_account with
/// consent, 97 am_set_info flips, 150 am_get_info, 150 lookup_account,
/// 600 get_project_config. Then the consistency checks.
pub async fn mixed(
    port: u16,
    keys: &[String],
    total: usize,
    conn: &mut mysql_async::Conn,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(AtomicUsize::new(0));
    let bad = Arc::new(AtomicUsize::new(0));
    let keys = Arc::new(keys.to_vec());
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (next, created, bad, keys) = (next.clone(), created.clone(), bad.clone(), keys.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = Http::connect(port).await?;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let key = &keys[n % keys.len()];
                let slot = n % 1000;
                let target = if slot < 3 {
                    format!(
                        "/create_account.php?email_addr=mix{n}%40bench.test&passwd_hash=0123456789abcdef0123456789abcdef\
                         &user_name=Mix{n}&consent_flag={}&source=mixed",
                        n % 2
                    )
                } else if slot < 100 {
                    format!(
                        "/am_set_info.php?account_key={key}&consent_name=STATSEXPORT&consent_flag={}\
                         &consent_not_required=0&consent_source=mixed",
                        (n / 1000) % 2
                    )
                } else if slot < 250 {
                    format!("/am_get_info.php?account_key={key}")
                } else if slot < 400 {
                    format!("/lookup_account.php?email_addr=seed{}%40bench.test", n % 70)
                } else {
                    "/get_project_config.php".to_owned()
                };
                let (status, body) = c.get(&target).await?;
                if status != 200 || !body.starts_with("<?xml") {
                    bad.fetch_add(1, Ordering::Relaxed);
                }
                if slot < 3 {
                    if body.contains("<authenticator>") {
                        created.fetch_add(1, Ordering::Relaxed);
                    } else {
                        bad.fetch_add(1, Ordering::Relaxed);
                        eprintln!("create_account failed: {body}");
                    }
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let took = t.elapsed();
    let accounts: i64 = conn
        .query_first("SELECT COUNT(*) FROM user WHERE email_addr LIKE 'mix%'")
        .await?
        .unwrap_or(0);
    let orphans: i64 = conn
        .query_first(
            "SELECT COUNT(*) FROM user u WHERE NOT EXISTS (SELECT 1 FROM consent c \
             JOIN consent_type t ON t.id = c.consent_type_id WHERE c.userid = u.id AND t.shortname = 'ENROLL')",
        )
        .await?
        .unwrap_or(0);
    let line = format!(
        "| mixed run, 32 conns: {total} requests | {:.0} | | | {} bad | {} | accounts {} == successful creates {}; users without consent row {} |",
        total as f64 / took.as_secs_f64(),
        bad.load(Ordering::Relaxed),
        load(),
        accounts,
        created.load(Ordering::Relaxed),
        orphans
    );
    println!("{line}");
    if bad.load(Ordering::Relaxed) != 0
        || accounts as usize != created.load(Ordering::Relaxed)
        || orphans != 0
    {
        bail!("mixed run failed its checks");
    }
    Ok(())
}
