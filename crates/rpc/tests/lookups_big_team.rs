//! The public lookups at size: a team of 100,000 members is streamed
//! (memory flat, the body sent as it is read), and every lookup statement
//! finds its rows through an index (EXPLAIN shows no table or index scan
//! and no sort of the member list).

mod common;

use std::time::Instant;

use boinc_db::{account::public_lookup, exportable};
use common::*;
use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Value};

const MEMBERS: i64 = 100_000;
const TEAMS: i64 = 5_000;

/// 100,000 members of team 10 (every second one consents), 20,000 more
/// users in teams 11-30 (1,000 each), 5,000 more teams: INSERT ... SELECT
/// from MariaDB's sequence tables, a few seconds.
async fn big_project(c: &mut Conn) {
    c.query_drop(format!(
        "INSERT INTO user (id, create_time, email_addr, name, authenticator, country, \
         postal_code, total_credit, expavg_credit, expavg_time, teamid, venue, url, send_email, \
         show_hosts, posts, seti_id, seti_nresults, seti_last_result_time, seti_total_cpu, \
         has_profile, cross_project_id, passwd_hash, email_validated, donated) \
         SELECT seq, 1500000000 + seq, CONCAT('m', seq, '@example.com'), \
         CONCAT('Member ', seq, ' & friends'), CONCAT('key', seq), 'Germany', '', seq * 1.5, \
         seq / 7, 1700000000, 10, '', 'example.org/m', 0, 1, 0, 0, 0, 0, 0, 0, \
         CONCAT('xp', seq), 'x', 1, 0 FROM seq_1_to_{MEMBERS}"
    ))
    .await
    .unwrap();
    c.query_drop(format!(
        "INSERT INTO user (id, create_time, email_addr, name, authenticator, country, \
         postal_code, total_credit, expavg_credit, expavg_time, teamid, venue, url, send_email, \
         show_hosts, posts, seti_id, seti_nresults, seti_last_result_time, seti_total_cpu, \
         has_profile, cross_project_id, passwd_hash, email_validated, donated) \
         SELECT seq, 1500000000, CONCAT('m', seq, '@example.com'), CONCAT('Member ', seq), \
         CONCAT('key', seq), '', '', 1, 1, 0, 11 + seq % 20, '', '', 0, 1, 0, 0, 0, 0, 0, 0, \
         CONCAT('xp', seq), 'x', 1, 0 FROM seq_{}_to_{}",
        MEMBERS + 1,
        MEMBERS + 20_000
    ))
    .await
    .unwrap();
    c.query_drop(format!(
        "INSERT INTO consent (userid, consent_type_id, consent_time, consent_flag, \
         consent_not_required, source) \
         SELECT s.seq, t.id, 100, 1, 0, 'bulk' FROM seq_1_to_{MEMBERS} s \
         JOIN consent_type t ON t.shortname = 'STATSEXPORT' WHERE s.seq % 2 = 0"
    ))
    .await
    .unwrap();
    c.query_drop(format!(
        "INSERT INTO team (id, create_time, userid, name, name_lc, url, type, name_html, \
         description, nusers, country, total_credit, expavg_credit, expavg_time) \
         SELECT 9 + seq, 1400000000, seq, CONCAT('Team ', seq), CONCAT('team ', seq), '', 1, \
         '', '', 0, 'Germany', seq, seq % 97, 0 FROM seq_1_to_{TEAMS}"
    ))
    .await
    .unwrap();
    c.query_drop("ANALYZE TABLE user, team, consent")
        .await
        .unwrap();
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Read the member list chunk by chunk (never holding it whole): (members,
/// bytes, chunks, the last bytes).
async fn read_list(h: &Harness, extra: &str) -> (usize, usize, usize, Vec<u8>) {
    let mut r = h
        .client
        .get(h.url(&format!("team_email_list.php?teamid=10&xml=1{extra}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Streamed: no length known up front.
    assert!(
        r.headers().get("content-length").is_none(),
        "{:?}",
        r.headers()
    );
    let (mut members, mut bytes, mut chunks) = (0, 0, 0);
    let mut last: Vec<u8> = Vec::new();
    let mut tail: Vec<u8> = Vec::new();
    while let Some(chunk) = r.chunk().await.unwrap() {
        chunks += 1;
        bytes += chunk.len();
        // Count "<user>\n" across chunk borders: the 6 bytes kept from the
        // chunks before are shorter than the pattern, so no match is
        // counted twice.
        let mut joined = std::mem::take(&mut tail);
        joined.extend_from_slice(&chunk);
        members += joined.windows(7).filter(|w| w == b"<user>\n").count();
        let keep = joined.len().min(6);
        tail = joined[joined.len() - keep..].to_vec();
        last = joined[joined.len().saturating_sub(32)..].to_vec();
    }
    (members, bytes, chunks, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100k_member_team_is_streamed_with_flat_memory() {
    let h = Harness::new("", None).await;
    let mut c = h.conn().await;
    let t = Instant::now();
    big_project(&mut c).await;
    eprintln!("generated {MEMBERS} members in {:?}", t.elapsed());
    h.set_type_enabled("STATSEXPORT", true).await;
    // Warm up (buffer pool, statement cache, allocator).
    let (members, _, _, _) = read_list(&h, "&creditonly=1").await;
    assert_eq!(members as i64, MEMBERS / 2);

    let before = rss_kib();
    // Resets VmHWM to the current RSS (Linux 4.0+).
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let t = Instant::now();
    let (members, bytes, chunks, tail) = read_list(&h, "").await;
    let took = t.elapsed();
    let grew = peak_rss_kib().saturating_sub(before);
    eprintln!(
        "team_email_list: {members} members, {bytes} bytes in {chunks} chunks, {took:?}, \
         peak RSS +{grew} KiB"
    );
    assert_eq!(members as i64, MEMBERS / 2, "only consenting members");
    assert!(
        tail.ends_with(b"</user>\n</users>\n"),
        "{:?}",
        String::from_utf8_lossy(&tail)
    );
    assert!(bytes > 15_000_000, "{bytes}");
    assert!(chunks > 100, "sent in pieces, not at once: {chunks}");
    // The whole body held in memory would take at least its size (~17
    // MB); streamed, a few chunks of 64 KiB are in flight.
    assert!(
        (grew as usize) * 1024 < bytes / 2,
        "peak RSS grew by {grew} KiB for a {bytes}-byte body"
    );

    // Filter off: all 100,000.
    h.set_type_enabled("STATSEXPORT", false).await;
    let (members, _, _, _) = read_list(&h, "").await;
    assert_eq!(members as i64, MEMBERS);
}

/// EXPLAIN's rows: (table, type, key, Extra).
async fn explain(
    c: &mut Conn,
    sql: &str,
    params: Vec<Value>,
) -> Vec<(String, String, String, String)> {
    let rows: Vec<Row> = c.exec(format!("EXPLAIN {sql}"), params).await.unwrap();
    let text = |r: &Row, name: &str| -> String {
        match r.get_opt::<Option<String>, _>(name) {
            Some(Ok(v)) => v.unwrap_or_default(),
            _ => String::new(),
        }
    };
    rows.iter()
        .map(|r| {
            (
                text(r, "table"),
                text(r, "type"),
                text(r, "key"),
                text(r, "Extra"),
            )
        })
        .collect()
}

#[track_caller]
fn assert_indexed(what: &str, plan: &[(String, String, String, String)]) {
    eprintln!("{what}:");
    for (table, kind, key, extra) in plan {
        eprintln!("  {table:10} {kind:8} {key:24} {extra}");
        assert!(
            !matches!(kind.as_str(), "ALL" | "index") && !key.is_empty(),
            "{what}: {table} is scanned ({kind}, key {key:?})"
        );
        assert!(
            !extra.contains("filesort") || what.contains("name"),
            "{what}: {extra}"
        );
    }
}

#[tokio::test]
async fn every_lookup_statement_uses_an_index() {
    let h = Harness::new("", None).await;
    let mut c = h.conn().await;
    big_project(&mut c).await;
    h.set_type_enabled("STATSEXPORT", true).await;
    let filter = exportable::consent_filter(&mut c).await.unwrap();
    assert!(filter.is_some());
    for f in [filter, None] {
        let plan = explain(
            &mut c,
            &public_lookup::user_by_id_sql(f),
            vec![Value::Int(4242)],
        )
        .await;
        assert_indexed("show_user by id", &plan);
        // A team of 1,000 among 120,000 users, and one holding most of
        // them: both read the team index, never the whole table.
        for team in [10, 11] {
            for credit_only in [false, true] {
                let sql = public_lookup::members_sql(f, credit_only);
                let plan = explain(&mut c, &sql, vec![Value::Int(team)]).await;
                assert_indexed("team_email_list", &plan);
                assert_eq!(
                    (plan[0].0.as_str(), plan[0].1.as_str()),
                    ("m", "ref"),
                    "{plan:?}"
                );
                assert!(plan[0].3.contains("Using index"), "{plan:?}");
            }
        }
        let plan = explain(
            &mut c,
            &public_lookup::team_by_id_sql(f),
            vec![Value::Int(17)],
        )
        .await;
        assert_indexed("team_lookup by id", &plan);
        let plan = explain(
            &mut c,
            &public_lookup::teams_by_name_sql(f, 100),
            vec![Value::from("Team 12%")],
        )
        .await;
        // A range of the name index; the few teams found are sorted.
        assert!(
            plan.iter().any(|p| p.0 == "t" && p.1 == "range"),
            "{plan:?}"
        );
        assert_indexed("team_lookup by name", &plan);
    }
    let plan = explain(
        &mut c,
        "SELECT id, enabled FROM consent_type \
         WHERE shortname = 'STATSEXPORT' AND shortname = BINARY 'STATSEXPORT'",
        vec![],
    )
    .await;
    assert_indexed("consent filter", &plan);
    // And the answers are right at this size.
    let b = h.call("show_user.php", &[("userid", "4242")]).await;
    assert!(b.contains("<name>Member 4242 &amp; friends</name>"), "{b}");
    assert_error(&h.call("show_user.php", &[("userid", "4243")]).await, -136);
    let b = h
        .call(
            "team_lookup.php",
            &[("team_name", "Team 12"), ("format", "xml")],
        )
        .await;
    assert_eq!(b.matches("<team>").count(), 100, "{b}");
}
