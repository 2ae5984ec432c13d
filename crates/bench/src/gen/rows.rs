//! Each table's rows: values from `values`, sent through `load`'s
//! [`Inserter`]s.

use mysql_async::prelude::*;
use mysql_async::Conn;

use boinc_db::DbSettings;

use super::load::Inserter;
use super::values::{credit, hex32, lit, mix, pick, unit, COUNTRIES, NAMES};
use super::{history, user_credit, user_deleted, Gen, GenStats, History};

impl Gen {
    fn uid(&self, n: u64) -> u64 {
        self.base + 1 + n
    }

    pub(super) async fn teams(&self, conn: &mut Conn) -> Result<(), mysql_async::Error> {
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
    pub(super) async fn users(
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
                let pub_cpid = boinc_db::models::cpid_string(&cpid, &email);
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
    pub(super) async fn hosts(&self, settings: &DbSettings) -> Result<u64, mysql_async::Error> {
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
    pub(super) async fn extras(
        &self,
        settings: &DbSettings,
    ) -> Result<GenStats, mysql_async::Error> {
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
    pub(super) async fn consent(&self, settings: &DbSettings) -> Result<u64, mysql_async::Error> {
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
