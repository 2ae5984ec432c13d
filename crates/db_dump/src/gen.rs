//! Test data: fills a BOINC database with `users` users, 2x hosts, users/50
//! teams, realistic credits (many zero), names with non-ASCII and
//! XML-special characters, STATSEXPORT histories (consented, withdrawn,
//! same-second ties, never asked), deleted users/hosts with their
//! user_deleted/host_deleted rows, badges (badge, badge_user, badge_team)
//! and per-application credit (credit_user, credit_team).
//!
//! Every property of a row is a pure function of (seed, id), so the three
//! streams (users, hosts, consent) run on their own connections in parallel
//! and still agree, and tests can recompute what a row should be.

use mysql_async::prelude::*;
use mysql_async::Conn;

use boinc_db::ident::quote_ident;
use boinc_db::DbSettings;

#[derive(Debug, Clone)]
pub struct GenOptions {
    pub users: u64,
    pub seed: u64,
    /// Set STATSEXPORT's `enabled`.
    pub statsexport_enabled: bool,
    /// "Now" for consent and credit times.
    pub now: i64,
    /// Rows per INSERT statement.
    pub rows_per_insert: usize,
}

impl GenOptions {
    pub fn new(users: u64) -> Self {
        Self {
            users,
            seed: 1,
            statsexport_enabled: true,
            now: boinc_db::now(),
            rows_per_insert: 1000,
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct GenStats {
    pub users: u64,
    pub hosts: u64,
    pub teams: u64,
    pub consent_rows: u64,
    pub users_deleted: u64,
    pub hosts_deleted: u64,
    pub badge_users: u64,
    pub badge_teams: u64,
    pub credit_users: u64,
    pub credit_teams: u64,
}

/// splitmix64: a well-mixed 64-bit value per (seed, id, salt).
fn mix(seed: u64, id: u64, salt: u64) -> u64 {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(id.wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(salt.wrapping_mul(0x94D0_49BB_1331_11EB))
        .wrapping_add(0x2545_F491_4F6C_DD1D);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in [0, 1).
fn unit(seed: u64, id: u64, salt: u64) -> f64 {
    (mix(seed, id, salt) >> 11) as f64 / (1u64 << 53) as f64
}

fn hex32(seed: u64, id: u64, salt: u64) -> String {
    format!(
        "{:016x}{:016x}",
        mix(seed, id, salt),
        mix(seed, id, salt + 1000)
    )
}

/// A credit: `zero_share` of them 0, the rest spread over six decades.
fn credit(seed: u64, id: u64, salt: u64, zero_share: f64) -> f64 {
    let u = unit(seed, id, salt);
    if u < zero_share {
        0.0
    } else {
        let x = unit(seed, id, salt + 1);
        (10f64.powf(x * 6.0) * 100.0).round() / 100.0
    }
}

/// The STATSEXPORT history of a user, as (flag, time offset from the
/// user's base time) in insertion order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    NeverAsked,
    Consented,
    Declined,
    /// 1 then 0, `days_ago` the withdrawal.
    Withdrew {
        days_ago: i64,
    },
    /// 1 then 0 in the same second (0 inserted later: withdrawn).
    TieWithdrew {
        days_ago: i64,
    },
    /// 0 then 1 in the same second (1 inserted later: consented).
    TieConsented,
    /// 1, 0, 1.
    Reconsented,
}

pub fn history(seed: u64, uid: u64) -> History {
    let u = unit(seed, uid, 7);
    let days = (unit(seed, uid, 8) * 120.0) as i64;
    match u {
        x if x < 0.15 => History::NeverAsked,
        x if x < 0.78 => History::Consented,
        x if x < 0.83 => History::Declined,
        x if x < 0.91 => History::Withdrew { days_ago: days },
        x if x < 0.93 => History::TieWithdrew { days_ago: days },
        x if x < 0.95 => History::TieConsented,
        _ => History::Reconsented,
    }
}

pub fn user_deleted(seed: u64, uid: u64) -> bool {
    unit(seed, uid, 9) < 0.01
}

pub fn user_credit(seed: u64, uid: u64) -> f64 {
    credit(seed, uid, 10, 0.4)
}

const NAMES: &[&str] = &[
    "volunteer",
    "Zoë Straße",
    "Иван Петров",
    "李小龙",
    "A&B <crunchers>",
    "\"quoted\" 'name'",
    "rocket 🚀",
    "tab\there",
    "line\nbreak",
    "]]> cdata end",
    "ctl\u{1}char",
    "ağ café naïve",
];

const COUNTRIES: &[&str] = &[
    "",
    "",
    "United States",
    "Germany",
    "Côte d'Ivoire",
    "Japan",
    "Brazil",
    "Trinidad & Tobago",
];

/// SQL string literal (default sql_mode: backslash escapes on).
fn lit(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('\'');
    for c in s.chars() {
        match c {
            '\'' => o.push_str("''"),
            '\\' => o.push_str("\\\\"),
            '\0' => o.push_str("\\0"),
            c => o.push(c),
        }
    }
    o.push('\'');
    o
}

fn pick<'a>(list: &[&'a str], seed: u64, id: u64, salt: u64) -> &'a str {
    list[(mix(seed, id, salt) % list.len() as u64) as usize]
}

pub async fn generate(
    settings: &DbSettings,
    o: &GenOptions,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<GenStats, mysql_async::Error> {
    let mut conn = Conn::new(settings.opts()).await?;
    conn.query_drop(format!(
        "UPDATE consent_type SET enabled = {} WHERE shortname = 'STATSEXPORT'",
        o.statsexport_enabled as i32
    ))
    .await?;
    let statsexport: i64 = conn
        .query_first("SELECT id FROM consent_type WHERE shortname = 'STATSEXPORT'")
        .await?
        .unwrap_or(0);
    let enroll: i64 = conn
        .query_first("SELECT id FROM consent_type WHERE shortname = 'ENROLL'")
        .await?
        .unwrap_or(0);
    let apps: i64 = conn
        .query_first("SELECT COUNT(*) FROM app")
        .await?
        .unwrap_or(0);
    if apps == 0 {
        conn.query_drop(
            "INSERT INTO app (create_time, name, user_friendly_name) VALUES \
             (1, 'uppercase', 'Upper Case & Co'), (1, 'einstein_o3', 'Gravitational <Waves>')",
        )
        .await?;
    }
    let app_ids: Vec<i64> = conn.query("SELECT id FROM app ORDER BY id").await?;
    let badges: i64 = conn
        .query_first("SELECT COUNT(*) FROM badge")
        .await?
        .unwrap_or(0);
    if badges == 0 {
        conn.query_drop(
            "INSERT INTO badge (create_time, type, name, title, description, image_url, level, \
             tags, sql_rule) VALUES \
             (1, 0, 'bronze', 'Bronze & <co>', '', 'img/bronze.png', '', '', ''), \
             (1, 0, 'silver', 'Silver', '', 'img/silver.png', '', '', ''), \
             (1, 0, 'gold', 'Gold', '', 'img/gold.png', '', '', ''), \
             (1, 1, 'team_bronze', 'Team Bronze', '', 'img/tbronze.png', '', '', ''), \
             (1, 1, 'team_gold', 'Team Gold', '', 'img/tgold.png', '', '', '')",
        )
        .await?;
    }
    let user_badges: Vec<i64> = conn
        .query("SELECT id FROM badge WHERE type = 0 ORDER BY id")
        .await?;
    let team_badges: Vec<i64> = conn
        .query("SELECT id FROM badge WHERE type = 1 ORDER BY id")
        .await?;
    let base: u64 = conn
        .query_first::<Option<u64>, _>("SELECT MAX(id) FROM user")
        .await?
        .flatten()
        .unwrap_or(0);
    let hbase: u64 = conn
        .query_first::<Option<u64>, _>("SELECT MAX(id) FROM host")
        .await?
        .flatten()
        .unwrap_or(0);
    let tbase: u64 = conn
        .query_first::<Option<u64>, _>("SELECT MAX(id) FROM team")
        .await?
        .flatten()
        .unwrap_or(0);
    let nteams = (o.users / 50).max(1);
    let g = Gen {
        o: o.clone(),
        base,
        hbase,
        tbase,
        nteams,
        statsexport,
        enroll,
        app_ids,
        user_badges,
        team_badges,
    };
    g.teams(&mut conn).await?;
    // Into empty tables, secondary indexes are built after the load (one
    // sort per index) instead of row by row: random inserts into unique
    // indexes on hashes crawl once they outgrow the buffer pool.
    let deferred = if base == 0 && hbase == 0 {
        defer_indexes(&mut conn, BULK_TABLES).await?
    } else {
        Vec::new()
    };
    let (u, h, c, extras) = tokio::try_join!(
        g.users(settings, progress),
        g.hosts(settings),
        g.consent(settings),
        g.extras(settings)
    )?;
    let _ = conn.disconnect().await;
    restore_indexes(settings, &deferred).await?;
    Ok(GenStats {
        users: o.users,
        hosts: 2 * o.users,
        teams: nteams,
        consent_rows: c,
        users_deleted: u,
        hosts_deleted: h,
        badge_users: extras.badge_users,
        badge_teams: extras.badge_teams,
        credit_users: extras.credit_users,
        credit_teams: extras.credit_teams,
    })
}

/// The tables the parallel streams fill.
const BULK_TABLES: &[&str] = &[
    "user",
    "user_deleted",
    "host",
    "host_deleted",
    "consent",
    "badge_user",
    "badge_team",
    "credit_user",
    "credit_team",
];

/// A secondary index dropped for the load: table and the `ADD ...` clause
/// that puts it back as it was.
type Deferred = (String, String);

/// Drops the secondary indexes of `tables` (those a foreign key needs
/// stay) and returns how to put them back.
async fn defer_indexes(
    conn: &mut Conn,
    tables: &[&str],
) -> Result<Vec<Deferred>, mysql_async::Error> {
    let mut out = Vec::new();
    for &t in tables {
        // (index, unique, type, column, prefix length), in column order.
        let rows: Vec<(String, i64, String, String, Option<i64>)> = conn
            .exec(
                "SELECT INDEX_NAME, NON_UNIQUE, INDEX_TYPE, COLUMN_NAME, SUB_PART                  FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()                  AND TABLE_NAME = ? AND INDEX_NAME <> 'PRIMARY' ORDER BY INDEX_NAME, SEQ_IN_INDEX",
                (t,),
            )
            .await?;
        let mut indexes: Vec<(String, String, Vec<String>)> = Vec::new();
        for (name, non_unique, kind, col, sub) in rows {
            let col = match sub {
                Some(n) => format!("{}({n})", quote_ident(&col)),
                None => quote_ident(&col),
            };
            match indexes.last_mut() {
                Some((n, _, cols)) if *n == name => cols.push(col),
                _ => {
                    let kind = match (kind.as_str(), non_unique) {
                        ("FULLTEXT", _) => "FULLTEXT INDEX",
                        (_, 0) => "UNIQUE INDEX",
                        _ => "INDEX",
                    };
                    indexes.push((name, kind.to_owned(), vec![col]));
                }
            }
        }
        for (name, kind, cols) in indexes {
            match conn
                .query_drop(format!(
                    "ALTER TABLE {} DROP INDEX {}",
                    quote_ident(t),
                    quote_ident(&name)
                ))
                .await
            {
                Ok(()) => out.push((
                    t.to_owned(),
                    format!("ADD {kind} {} ({})", quote_ident(&name), cols.join(", ")),
                )),
                // 1553: a foreign key needs it; it stays.
                Err(mysql_async::Error::Server(e)) if e.code == 1553 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(out)
}

/// Puts the deferred indexes back: one ALTER per table, two tables at a
/// time (each build is mostly one thread sorting).
async fn restore_indexes(
    settings: &DbSettings,
    deferred: &[Deferred],
) -> Result<(), mysql_async::Error> {
    let mut tables: Vec<&str> = deferred.iter().map(|(t, _)| t.as_str()).collect();
    tables.dedup();
    let next = std::sync::Mutex::new(tables.into_iter());
    let worker = || async {
        let mut conn = Conn::new(settings.opts()).await?;
        loop {
            let Some(t) = next.lock().unwrap_or_else(|p| p.into_inner()).next() else {
                break;
            };
            let adds: Vec<&str> = deferred
                .iter()
                .filter(|(x, _)| x == t)
                .map(|(_, a)| a.as_str())
                .collect();
            conn.query_drop(format!(
                "ALTER TABLE {} {}",
                quote_ident(t),
                adds.join(", ")
            ))
            .await?;
        }
        let _ = conn.disconnect().await;
        Ok::<(), mysql_async::Error>(())
    };
    tokio::try_join!(worker(), worker())?;
    Ok(())
}

struct Gen {
    o: GenOptions,
    base: u64,
    hbase: u64,
    tbase: u64,
    nteams: u64,
    statsexport: i64,
    enroll: i64,
    app_ids: Vec<i64>,
    user_badges: Vec<i64>,
    team_badges: Vec<i64>,
}

/// Collects VALUES tuples and sends one multi-row INSERT per batch, in
/// transactions of many statements (far fewer log flushes).
struct Inserter {
    conn: Conn,
    head: String,
    sql: String,
    rows: usize,
    per: usize,
    stmts: usize,
}

impl Inserter {
    async fn new(
        settings: &DbSettings,
        head: &str,
        per: usize,
    ) -> Result<Self, mysql_async::Error> {
        let mut conn = Conn::new(settings.opts()).await?;
        conn.query_drop("SET SESSION unique_checks = 0, SESSION foreign_key_checks = 0")
            .await?;
        conn.query_drop("START TRANSACTION").await?;
        Ok(Self {
            conn,
            head: head.to_owned(),
            sql: String::new(),
            rows: 0,
            per,
            stmts: 0,
        })
    }

    async fn row(&mut self, values: &str) -> Result<(), mysql_async::Error> {
        if self.rows == 0 {
            self.sql.clear();
            self.sql.push_str(&self.head);
            self.sql.push_str(" VALUES ");
        } else {
            self.sql.push(',');
        }
        self.sql.push('(');
        self.sql.push_str(values);
        self.sql.push(')');
        self.rows += 1;
        if self.rows >= self.per {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), mysql_async::Error> {
        if self.rows > 0 {
            self.conn.query_drop(&self.sql).await?;
            self.rows = 0;
            self.stmts += 1;
            if self.stmts.is_multiple_of(50) {
                self.conn.query_drop("COMMIT").await?;
                self.conn.query_drop("START TRANSACTION").await?;
            }
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<(), mysql_async::Error> {
        self.flush().await?;
        self.conn.query_drop("COMMIT").await?;
        let _ = self.conn.disconnect().await;
        Ok(())
    }
}

impl Gen {
    fn uid(&self, n: u64) -> u64 {
        self.base + 1 + n
    }

    async fn teams(&self, conn: &mut Conn) -> Result<(), mysql_async::Error> {
        let s = self.o.seed;
        let mut values = Vec::new();
        for n in 0..self.nteams {
            let id = self.tbase + 1 + n;
            let founder = self.uid(mix(s, id, 20) % self.o.users);
            let name = format!("Team {id} {}", pick(NAMES, s, id, 21));
            let desc = if unit(s, id, 22) < 0.5 {
                String::new()
            } else {
                format!("We crunch & <share>: {}", pick(NAMES, s, id, 23))
            };
            let name_html = if unit(s, id, 24) < 0.3 {
                format!("<b>{name}</b>")
            } else {
                String::new()
            };
            let url = if unit(s, id, 25) < 0.5 {
                format!("https://team{id}.example/?a=1&b=2")
            } else {
                String::new()
            };
            let tc = credit(s, id, 26, 0.2);
            values.push(format!(
                "({id}, {}, {founder}, {}, {}, {}, {}, {}, {}, 0, {}, {tc}, {}, {}, 1)",
                self.o.now - 86400 * 400 + (mix(s, id, 27) % (86400 * 300)) as i64,
                lit(&name),
                lit(&name.to_lowercase()),
                lit(&url),
                1 + mix(s, id, 28) % 7,
                lit(&name_html),
                lit(&desc),
                lit(pick(COUNTRIES, s, id, 29)),
                tc / 10.0,
                self.o.now as f64 - 3600.0,
            ));
        }
        for chunk in values.chunks(self.o.rows_per_insert) {
            conn.query_drop(format!(
                "INSERT INTO team (id, create_time, userid, name, name_lc, url, type, name_html, \
                 description, nusers, country, total_credit, expavg_credit, expavg_time, joinable) \
                 VALUES {}",
                chunk.join(",")
            ))
            .await?;
        }
        Ok(())
    }

    /// Users (+ user_deleted). Returns the number of deleted users.
    async fn users(
        &self,
        settings: &DbSettings,
        progress: Option<&indicatif::ProgressBar>,
    ) -> Result<u64, mysql_async::Error> {
        let s = self.o.seed;
        let mut ins = Inserter::new(
            settings,
            "INSERT INTO user (id, create_time, email_addr, name, authenticator, country, \
             postal_code, total_credit, expavg_credit, expavg_time, teamid, venue, url, \
             send_email, show_hosts, posts, seti_id, seti_nresults, seti_last_result_time, \
             seti_total_cpu, has_profile, cross_project_id, passwd_hash, email_validated, donated)",
            self.o.rows_per_insert,
        )
        .await?;
        let mut del = Inserter::new(
            settings,
            "INSERT INTO user_deleted (userid, public_cross_project_id, create_time)",
            self.o.rows_per_insert,
        )
        .await?;
        let mut ndel = 0;
        for n in 0..self.o.users {
            let id = self.uid(n);
            let deleted = user_deleted(s, id);
            let cpid = hex32(s, id, 30);
            let email = format!("u{id}@example.org");
            let (name, auth) = if deleted {
                (
                    format!("deleted_{id}"),
                    format!("deleted_{}_{id}", self.o.now),
                )
            } else {
                (format!("{} {id}", pick(NAMES, s, id, 31)), hex32(s, id, 32))
            };
            let tc = user_credit(s, id);
            let ea = if unit(s, id, 33) < 0.5 {
                0.0
            } else {
                tc / 20.0
            };
            let teamid = if unit(s, id, 34) < 0.35 {
                self.tbase + 1 + mix(s, id, 35) % self.nteams
            } else {
                0
            };
            let url = if unit(s, id, 36) < 0.2 {
                format!("https://example.org/~u{id}?a=1&b=<2>")
            } else {
                String::new()
            };
            let create = self.o.now - 86400 * 1000 + (mix(s, id, 37) % (86400 * 500)) as i64;
            ins.row(&format!(
                "{id},{create},{},{},{},{},'',{tc},{ea},{},{teamid},'',{},1,{},0,0,0,0,0,{},{},'x',1,0",
                lit(&email),
                lit(&name),
                lit(&auth),
                lit(pick(COUNTRIES, s, id, 38)),
                self.o.now - 3600,
                lit(&url),
                (unit(s, id, 39) < 0.5) as i32,
                (unit(s, id, 40) < 0.1) as i32,
                lit(&cpid),
            ))
            .await?;
            if deleted {
                ndel += 1;
                let pub_cpid = boinc_db::cpid(&cpid, &email);
                del.row(&format!("{id},{},{}", lit(&pub_cpid), self.o.now - 86400))
                    .await?;
            }
            if let Some(p) = progress {
                p.inc(1);
            }
        }
        ins.finish().await?;
        del.finish().await?;
        Ok(ndel)
    }

    /// Hosts (+ host_deleted). Returns the number of deleted hosts.
    async fn hosts(&self, settings: &DbSettings) -> Result<u64, mysql_async::Error> {
        let s = self.o.seed;
        let mut ins = Inserter::new(
            settings,
            "INSERT INTO host (id, create_time, userid, rpc_seqno, rpc_time, total_credit, \
             expavg_credit, expavg_time, timezone, domain_name, serialnum, last_ip_addr, \
             nsame_ip_addr, on_frac, connected_frac, active_frac, cpu_efficiency, \
             duration_correction_factor, p_ncpus, p_vendor, p_model, p_fpops, p_iops, p_membw, \
             os_name, os_version, m_nbytes, m_cache, m_swap, d_total, d_free, \
             d_boinc_used_total, d_boinc_used_project, d_boinc_max, n_bwup, n_bwdown, \
             credit_per_cpu_sec, venue, nresults_today, avg_turnaround, host_cpid, \
             external_ip_addr, max_results_day, error_rate, product_name, gpu_active_frac, \
             p_ngpus, p_gpu_fpops, misc)",
            self.o.rows_per_insert,
        )
        .await?;
        let mut del = Inserter::new(
            settings,
            "INSERT INTO host_deleted (hostid, public_cross_project_id, create_time)",
            self.o.rows_per_insert,
        )
        .await?;
        const VENDORS: &[&str] = &["GenuineIntel", "AuthenticAMD", "Apple", "ARM"];
        const MODELS: &[&str] = &[
            "Intel(R) Core(TM) i7-9700K CPU @ 3.60GHz [Family 6 Model 158 Stepping 13]",
            "AMD Ryzen 9 5950X 16-Core Processor [Family 25 Model 33 Stepping 0]",
            "Apple M2 Pro",
            "Cortex-A72 <rev 3> & friends",
        ];
        const OS: &[(&str, &str)] = &[
            (
                "Linux Debian",
                "Debian GNU/Linux 12 (bookworm) [6.1.0-18-amd64|libc 2.36]",
            ),
            (
                "Microsoft Windows 11",
                "Professional x64 Edition, (10.00.22631.00)",
            ),
            ("Darwin", "23.4.0"),
        ];
        let mut ndel = 0;
        for n in 0..2 * self.o.users {
            let id = self.hbase + 1 + n;
            let r = unit(s, id, 50);
            let (userid, domain) = if r < 0.02 {
                (0, "deleted".to_owned())
            } else {
                let owner = self.uid(mix(s, id, 51) % self.o.users);
                let d = match r {
                    x if x < 0.03 => "deleted".to_owned(),
                    x if x < 0.033 => "Deleted".to_owned(),
                    x if x < 0.036 => "deleted ".to_owned(),
                    x if x < 0.04 => "deleted-box".to_owned(),
                    _ => format!("host{id}.example"),
                };
                (owner, d)
            };
            let tc = credit(s, id, 52, 0.35);
            let (os_name, os_version) = OS[(mix(s, id, 53) % OS.len() as u64) as usize];
            let misc = match mix(s, id, 54) % 20 {
                0 => "{\"gpu\":\"x]]>y\"}\nsecond line",
                1..=5 => "{\"gpu\":\"NVIDIA GeForce RTX 3080\",\"n\":1}",
                _ => "",
            };
            let cpid = hex32(s, id, 55);
            ins.row(&format!(
                "{id},{},{userid},0,{},{tc},{},{},{},{},'','',0,0.9,0.9,0.9,1,1,{},{},{},\
                 {},{},{},{},{},{},{},{},{},{},0,0,0,{},{},{},'',0,{},{},'',0,0,'',0,0,0,{}",
                self.o.now - 86400 * 500,
                self.o.now - (mix(s, id, 56) % 86400) as i64,
                tc / 30.0,
                self.o.now as f64 - 7200.0,
                (mix(s, id, 57) % 25) as i64 * 3600 - 43200,
                lit(&domain),
                1 + mix(s, id, 58) % 32,
                lit(pick(VENDORS, s, id, 59)),
                lit(pick(MODELS, s, id, 60)),
                3.5e9 + (mix(s, id, 61) % 1000) as f64 * 1e6,
                1.2e10,
                1e9,
                lit(os_name),
                lit(os_version),
                17179869184.0,
                (1u64 << 21) as f64,
                8589934592.0,
                500107862016.0,
                (mix(s, id, 62) % 500_000_000_000) as f64,
                1e6,
                5e6,
                unit(s, id, 63) * 0.01,
                unit(s, id, 64) * 86400.0,
                lit(&cpid),
                lit(misc),
            ))
            .await?;
            if userid == 0 {
                ndel += 1;
                del.row(&format!("{id},{},{}", lit(&cpid), self.o.now - 86400))
                    .await?;
            }
        }
        ins.finish().await?;
        del.finish().await?;
        Ok(ndel)
    }

    /// Badges of users and teams, and credit per application: each user
    /// and team with credit splits it over the apps (credit_type 0).
    async fn extras(&self, settings: &DbSettings) -> Result<GenStats, mysql_async::Error> {
        let s = self.o.seed;
        let per = self.o.rows_per_insert;
        let mut bu = Inserter::new(
            settings,
            "INSERT INTO badge_user (badge_id, user_id, create_time, reassign_time)",
            per,
        )
        .await?;
        let mut cu = Inserter::new(
            settings,
            "INSERT INTO credit_user (userid, appid, njobs, total, expavg, expavg_time, credit_type)",
            per,
        )
        .await?;
        let mut st = GenStats::default();
        let t = self.o.now - 86400;
        for n in 0..self.o.users {
            let id = self.uid(n);
            let tc = user_credit(s, id);
            if tc > 0.0 && unit(s, id, 80) < 0.3 && !self.user_badges.is_empty() {
                let b = self.user_badges[(mix(s, id, 81) % self.user_badges.len() as u64) as usize];
                bu.row(&format!(
                    "{b},{id},{},0",
                    t - (mix(s, id, 82) % 86400) as i64
                ))
                .await?;
                st.badge_users += 1;
            }
            st.credit_users += self.credit_rows(&mut cu, id, tc, 83).await?;
        }
        bu.finish().await?;
        cu.finish().await?;
        let mut bt = Inserter::new(
            settings,
            "INSERT INTO badge_team (badge_id, team_id, create_time, reassign_time)",
            per,
        )
        .await?;
        let mut ct = Inserter::new(
            settings,
            "INSERT INTO credit_team (teamid, appid, njobs, total, expavg, expavg_time, credit_type)",
            per,
        )
        .await?;
        for n in 0..self.nteams {
            let id = self.tbase + 1 + n;
            let tc = credit(s, id, 26, 0.2);
            if unit(s, id, 90) < 0.4 && !self.team_badges.is_empty() {
                let b = self.team_badges[(mix(s, id, 91) % self.team_badges.len() as u64) as usize];
                bt.row(&format!("{b},{id},{t},0")).await?;
                st.badge_teams += 1;
            }
            st.credit_teams += self.credit_rows(&mut ct, id, tc, 93).await?;
        }
        bt.finish().await?;
        ct.finish().await?;
        Ok(st)
    }

    /// One row per app for `id`'s credit `tc` (shares by a pure function).
    async fn credit_rows(
        &self,
        ins: &mut Inserter,
        id: u64,
        tc: f64,
        salt: u64,
    ) -> Result<u64, mysql_async::Error> {
        if tc <= 0.0 || self.app_ids.is_empty() {
            return Ok(0);
        }
        let s = self.o.seed;
        let napps = self.app_ids.len();
        let first = unit(s, id, salt);
        let mut rows = 0;
        for (i, app) in self.app_ids.iter().enumerate() {
            let share = match (napps, i) {
                (1, _) => 1.0,
                (_, 0) => first,
                _ => (1.0 - first) / (napps - 1) as f64,
            };
            let total = (tc * share * 100.0).round() / 100.0;
            if total <= 0.0 {
                continue;
            }
            let njobs = 1 + (total / 50.0) as u64;
            ins.row(&format!(
                "{id},{app},{njobs},{total},{},{},0",
                total / 20.0,
                self.o.now - 3600
            ))
            .await?;
            rows += 1;
        }
        Ok(rows)
    }

    /// Consent histories (STATSEXPORT) and ENROLL rows.
    async fn consent(&self, settings: &DbSettings) -> Result<u64, mysql_async::Error> {
        let s = self.o.seed;
        let mut ins = Inserter::new(
            settings,
            "INSERT INTO consent (userid, consent_type_id, consent_time, consent_flag, \
             consent_not_required, source)",
            self.o.rows_per_insert,
        )
        .await?;
        let mut rows = 0;
        let se = self.statsexport;
        for n in 0..self.o.users {
            let id = self.uid(n);
            let t0 = self.o.now - 86400 * 400 + (mix(s, id, 70) % (86400 * 200)) as i64;
            if unit(s, id, 71) < 0.6 {
                ins.row(&format!("{id},{},{t0},1,0,'create_account'", self.enroll))
                    .await?;
                rows += 1;
            }
            let day = 86400;
            let seq: Vec<(i32, i64)> = match history(s, id) {
                History::NeverAsked => vec![],
                History::Consented => vec![(1, t0)],
                History::Declined => vec![(0, t0)],
                History::Withdrew { days_ago } => {
                    vec![(1, t0), (0, self.o.now - days_ago * day - 5)]
                }
                History::TieWithdrew { days_ago } => {
                    let t = self.o.now - days_ago * day - 5;
                    vec![(1, t), (0, t)]
                }
                History::TieConsented => vec![(0, t0), (1, t0)],
                History::Reconsented => vec![(1, t0), (0, t0 + day), (1, t0 + 2 * day)],
            };
            for (flag, t) in seq {
                ins.row(&format!("{id},{se},{t},{flag},0,'am_set_info'"))
                    .await?;
                rows += 1;
            }
        }
        ins.finish().await?;
        Ok(rows)
    }
}
