//! Real-browser test of the consent page's charts (issue 24): consent rows
//! spread over 30 months, the expected monthly numbers computed here in
//! Rust from the rows inserted (calendar months by chrono, the latest row
//! per account by a plain search), then checked in headless Chromium's
//! DOM: each chart has axes, month labels and one series per kind, its
//! bars and line follow its numbers, the table beside it has the same
//! numbers, and ENROLL's chart marks the terms version first seen in the
//! window. The account page shows one person's history as a timeline.
//!
//! With `BOINC_SCREENSHOT_DIR=/some/dir` the test writes
//! `ops-consent-charts.png` and `ops-account-timeline.png` there.

mod browser;

use std::collections::HashMap;
use std::time::Duration;

use boinc_db::mysql_async::prelude::*;
use boinc_db::testing::TestDb;
use browser::{PASS, USER};
use chrono::{Datelike, Months, NaiveDate, TimeZone, Utc};
use fantoccini::{Client, Locator};

const LIVE_USERS: i64 = 40;
const DELETED_USER: i64 = 99;
const TYPES: [&str; 2] = ["ENROLL", "STATSEXPORT"];
const KINDS: [&str; 3] = ["consented", "withdrawn", "not-required"];

#[derive(Clone, Copy, PartialEq, Debug)]
enum St {
    Consented,
    Withdrawn,
    NotRequired,
}

#[derive(Clone, Debug)]
struct Row {
    id: i64,
    user: i64,
    ty: &'static str,
    t: i64,
    st: St,
}

/// A small deterministic generator (the rows must not depend on a crate's
/// random source to be reproducible).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn month_start(d: NaiveDate) -> i64 {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
        .timestamp()
}

/// The 24 month labels ending with this month, and each month's end
/// (exclusive; the last is "now and later").
fn window(now: i64) -> Vec<(String, i64)> {
    let today = Utc.timestamp_opt(now, 0).unwrap().date_naive();
    let first = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap();
    (0..24u32)
        .map(|k| {
            let m = first.checked_sub_months(Months::new(23 - k)).unwrap();
            let end = if k == 23 {
                i64::MAX
            } else {
                month_start(m.checked_add_months(Months::new(1)).unwrap())
            };
            (m.format("%Y-%m").to_string(), end)
        })
        .collect()
}

fn label(t: i64) -> String {
    Utc.timestamp_opt(t, 0).unwrap().format("%Y-%m").to_string()
}

fn rows(now: i64) -> Vec<Row> {
    let mut g = Lcg(24);
    let span = 945 * 86400; // 31 months
    let mut out = Vec::new();
    let mut push = |user, ty, t, st| {
        out.push(Row {
            id: 0,
            user,
            ty,
            t,
            st,
        })
    };
    // Four live users have no rows at all ("never asked").
    for user in 1..=36 {
        for ty in TYPES {
            let n = 1 + g.next() % 4;
            let mut times: Vec<i64> = (0..n)
                .map(|_| now - 60 - (g.next() % span as u64) as i64)
                .collect();
            times.sort_unstable();
            if user % 7 == 0 && times.len() > 1 {
                // A tie: the later row (higher id) is the latest.
                times[1] = times[0];
            }
            for t in times {
                let st = match g.next() % 20 {
                    0..=9 => St::Consented,
                    10..=16 => St::Withdrawn,
                    _ => St::NotRequired,
                };
                push(user, ty, t, st);
            }
        }
    }
    // Month edges: the last second of a month and the first of the next.
    let w = window(now);
    let edge = w[10].1;
    push(37, "STATSEXPORT", edge - 1, St::Consented);
    push(37, "STATSEXPORT", edge, St::Withdrawn);
    push(38, "STATSEXPORT", edge - 1, St::Consented);
    // A deleted account's rows count nowhere.
    push(DELETED_USER, "STATSEXPORT", now - 86400 * 20, St::Consented);
    push(DELETED_USER, "ENROLL", now - 86400 * 20, St::Consented);
    for (i, r) in out.iter_mut().enumerate() {
        r.id = i as i64 + 1;
    }
    out
}

/// What the page must show for one type, computed from `rows` alone.
struct Expected {
    rows: HashMap<(String, &'static str), i64>,
    consenting: Vec<i64>,
    latest_consented: i64,
}

fn expected(all: &[Row], ty: &str, now: i64) -> Expected {
    let live: Vec<&Row> = all
        .iter()
        .filter(|r| r.ty == ty && r.user != DELETED_USER)
        .collect();
    let mut rows = HashMap::new();
    for r in &live {
        let kind = match r.st {
            St::Consented => "consented",
            St::Withdrawn => "withdrawn",
            St::NotRequired => "not-required",
        };
        *rows.entry((label(r.t), kind)).or_insert(0) += 1;
    }
    let latest_before = |user: i64, end: i64| {
        live.iter()
            .filter(|r| r.user == user && r.t < end)
            .max_by_key(|r| (r.t, r.id))
            .map(|r| r.st)
    };
    let consenting = window(now)
        .iter()
        .map(|(_, end)| {
            (1..=LIVE_USERS)
                .filter(|&u| latest_before(u, *end) == Some(St::Consented))
                .count() as i64
        })
        .collect::<Vec<_>>();
    let latest_consented = (1..=LIVE_USERS)
        .filter(|&u| latest_before(u, i64::MAX) == Some(St::Consented))
        .count() as i64;
    Expected {
        rows,
        consenting,
        latest_consented,
    }
}

async fn setup(db: &TestDb, all: &[Row], now: i64) -> i64 {
    let mut c = db.conn().await;
    for id in (1..=LIVE_USERS).chain([DELETED_USER]) {
        let auth = if id == DELETED_USER {
            format!("deleted_{now}")
        } else {
            format!("auth{id:028}")
        };
        c.exec_drop(
            "INSERT INTO user SET id = ?, create_time = ?, email_addr = ?, name = ?, \
             authenticator = ?, country = '', postal_code = '', total_credit = 0, \
             expavg_credit = 0, expavg_time = 0, teamid = 0, venue = '', url = '', \
             send_email = 1, show_hosts = 1, posts = 0, seti_id = 0, seti_nresults = 0, \
             seti_last_result_time = 0, seti_total_cpu = 0, has_profile = 0, \
             cross_project_id = 'x', passwd_hash = '$2y$10$x', email_validated = 1, donated = 0",
            (
                id,
                now - 86400 * 1200,
                format!("u{id}@example.org"),
                format!("user {id}"),
                auth,
            ),
        )
        .await
        .unwrap();
    }
    let types: HashMap<String, i64> = c
        .query("SELECT shortname, id FROM consent_type")
        .await
        .unwrap()
        .into_iter()
        .collect();
    for r in all {
        let (flag, nr) = match r.st {
            St::Consented => (1, 0),
            St::Withdrawn => (0, 0),
            St::NotRequired => (0, 1),
        };
        c.exec_drop(
            "INSERT INTO consent (id, userid, consent_type_id, consent_time, consent_flag, \
             consent_not_required, source) VALUES (?, ?, ?, ?, ?, ?, 'test')",
            (r.id, r.user, types[r.ty], r.t, flag, nr),
        )
        .await
        .unwrap();
    }
    // Terms: one version from before the window (no mark), one inside it.
    boinc_db::consent::terms::ensure_terms_version(&mut c, "Old terms", now - 86400 * 1300)
        .await
        .unwrap();
    boinc_db::consent::terms::ensure_terms_version(&mut c, "New terms", now - 86400 * 150)
        .await
        .unwrap()
}

fn ints(s: &str) -> Vec<i64> {
    s.split(',')
        .filter(|v| !v.is_empty())
        .map(|v| v.parse().unwrap())
        .collect()
}

/// "1,234" -> 1234
fn count(s: &str) -> i64 {
    s.trim().replace(',', "").parse().unwrap()
}

async fn attr(e: &fantoccini::elements::Element, name: &str) -> anyhow::Result<String> {
    Ok(e.attr(name).await?.unwrap_or_default())
}

async fn text_of(e: &fantoccini::elements::Element) -> anyhow::Result<String> {
    Ok(e.prop("textContent")
        .await?
        .unwrap_or_default()
        .trim()
        .to_owned())
}

/// A PNG of the element with id `id` (the browser scrolls to it).
async fn screenshot(c: &Client, id: &str, name: &str) -> anyhow::Result<()> {
    if let Some(dir) = std::env::var_os("BOINC_SCREENSHOT_DIR") {
        std::fs::create_dir_all(&dir)?;
        let png = c.find(Locator::Id(id)).await?.screenshot().await?;
        std::fs::write(std::path::Path::new(&dir).join(name), png)?;
    }
    Ok(())
}

async fn check_chart(
    c: &Client,
    ty: &str,
    exp: &Expected,
    now: i64,
    terms_version: i64,
) -> anyhow::Result<()> {
    let win = window(now);
    let labels: Vec<&str> = win.iter().map(|(l, _)| l.as_str()).collect();
    let svg = c.find(Locator::Css(&format!("svg#chart-{ty}"))).await?;

    // Axes: lines and the two axis titles, month labels on the x axis.
    let lines = svg.find_all(Locator::Css("g.axes line")).await?;
    assert!(lines.len() >= 2, "{ty}: axis lines");
    let mut texts = Vec::new();
    for t in svg.find_all(Locator::Css("g.axes text")).await? {
        texts.push(text_of(&t).await?);
    }
    assert!(
        texts.iter().any(|t| t == "rows written per month"),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t == "accounts consenting at month end"),
        "{texts:?}"
    );
    let months: Vec<&String> = texts
        .iter()
        .filter(|t| t.len() == 7 && t.as_bytes()[4] == b'-' && t[..4].parse::<u32>().is_ok())
        .collect();
    assert!(months.len() >= 8, "{ty}: month labels {texts:?}");
    assert!(months.iter().all(|m| labels.contains(&m.as_str())));
    assert!(months.iter().any(|m| m.as_str() == labels[23]));

    // One series per kind, bars on one shared scale.
    let mut drawn: HashMap<&str, Vec<i64>> = HashMap::new();
    let mut bars: Vec<(i64, f64)> = Vec::new();
    for kind in KINDS {
        let groups = svg
            .find_all(Locator::Css(&format!("g.series[data-kind='{kind}']")))
            .await?;
        assert_eq!(groups.len(), 1, "{ty} {kind}");
        let values = ints(&attr(&groups[0], "data-values").await?);
        let want: Vec<i64> = labels
            .iter()
            .map(|l| exp.rows.get(&(l.to_string(), kind)).copied().unwrap_or(0))
            .collect();
        assert_eq!(values, want, "{ty} {kind}: chart vs rows inserted");
        let rects = groups[0].find_all(Locator::Css("rect")).await?;
        assert_eq!(rects.len(), 24, "{ty} {kind}: a bar per month");
        for (r, v) in rects.iter().zip(&values) {
            bars.push((*v, attr(r, "height").await?.parse()?));
        }
        drawn.insert(kind, values);
    }
    let (vmax, hmax) = bars.iter().copied().max_by(|a, b| a.0.cmp(&b.0)).unwrap();
    assert!(vmax > 0 && hmax > 20.0, "{ty}: bars drawn");
    for (v, h) in &bars {
        let want = *v as f64 * hmax / vmax as f64;
        assert!(
            (h - want).abs() <= 1.5,
            "{ty}: bar {v} is {h}px, want {want}"
        );
    }

    // The share line: one point per month, higher share drawn higher.
    let share = svg
        .find_all(Locator::Css("g.series[data-kind='share']"))
        .await?;
    assert_eq!(share.len(), 1);
    let consenting = ints(&attr(&share[0], "data-values").await?);
    assert_eq!(consenting, exp.consenting, "{ty}: consenting at month ends");
    assert_eq!(consenting[23], exp.latest_consented);
    let points = attr(&share[0].find(Locator::Css("polyline")).await?, "points").await?;
    let ys: Vec<f64> = points
        .split_whitespace()
        .map(|p| p.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(ys.len(), 24);
    for i in 0..24 {
        for j in 0..24 {
            if consenting[i] < consenting[j] {
                assert!(ys[i] > ys[j], "{ty}: share points {i} {j}");
            }
        }
    }

    // ENROLL marks the terms version first seen in the window, only it.
    let marks = svg.find_all(Locator::Css("g[data-kind='terms']")).await?;
    if ty == "ENROLL" {
        assert_eq!(marks.len(), 1);
        assert_eq!(
            ints(&attr(&marks[0], "data-values").await?),
            vec![terms_version]
        );
        let t = text_of(&marks[0].find(Locator::Css("text")).await?).await?;
        assert_eq!(t, format!("terms v{terms_version}"));
    } else {
        assert!(marks.is_empty(), "{ty}: no terms marks");
    }

    // The table beside it: the same numbers, a row per month.
    let trs = c
        .find_all(Locator::Css(&format!("#monthly-{ty} tbody tr")))
        .await?;
    assert_eq!(trs.len(), 24);
    for (i, tr) in trs.iter().enumerate() {
        let month = text_of(&tr.find(Locator::Css("th.month")).await?).await?;
        assert_eq!(month, labels[i]);
        for kind in KINDS {
            let cell = text_of(&tr.find(Locator::Css(&format!("td.{kind}"))).await?).await?;
            assert_eq!(count(&cell), drawn[kind][i], "{ty} {month} {kind}");
        }
        let cell = text_of(&tr.find(Locator::Css("td.share")).await?).await?;
        let want = format!(
            "{} ({:.1}%)",
            consenting[i],
            consenting[i] as f64 * 100.0 / LIVE_USERS as f64
        );
        assert_eq!(cell, want, "{ty} {month}");
    }

    // The report's own table agrees with the chart's last month.
    let cell = text_of(
        &c.find(Locator::Css(&format!("#report-{ty} td.consented")))
            .await?,
    )
    .await?;
    assert_eq!(
        cell,
        format!(
            "{} ({:.1}%)",
            exp.latest_consented,
            exp.latest_consented as f64 * 100.0 / LIVE_USERS as f64
        )
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_browser_charts_match_rows_over_30_months() {
    let db = TestDb::new().await;
    let now = boinc_db::now();
    let all = rows(now);
    // The rows really span 30 months, beyond the 24 shown.
    let spanned: std::collections::HashSet<String> = all.iter().map(|r| label(r.t)).collect();
    assert!(spanned.len() >= 30, "{}", spanned.len());
    let terms_version = setup(&db, &all, now).await;
    let exp: Vec<Expected> = TYPES.iter().map(|t| expected(&all, t, now)).collect();

    let (addr, server) = browser::serve_ops(&db, true).await;
    let (c, _driver, _profile) = browser::browser().await;
    let wait = Duration::from_secs(30);

    let result = async {
        c.set_window_size(1400, 2600).await?;
        // The report is computed in the background: reload until shown.
        let t = std::time::Instant::now();
        loop {
            c.goto(&format!("http://{USER}:{PASS}@{addr}/")).await?;
            if c.find(Locator::Id("consent-over-time")).await.is_ok() {
                break;
            }
            anyhow::ensure!(t.elapsed() < wait, "no charts after {wait:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let time = c.find(Locator::Id("report-time")).await?.text().await?;
        assert!(time.ends_with(" UTC"), "{time}");
        let age = c.find(Locator::Id("report-age")).await?.text().await?;
        assert!(age.contains(" old"), "{age}");
        let accounts = c.find(Locator::Id("report-accounts")).await?.text().await?;
        assert_eq!(accounts, LIVE_USERS.to_string());
        for (ty, e) in TYPES.iter().zip(&exp) {
            check_chart(&c, ty, e, now, terms_version).await?;
        }
        screenshot(&c, "consent-over-time", "ops-consent-charts.png").await?;

        // One person's history as a timeline, beside its table.
        let user = 7;
        c.goto(&format!("http://{USER}:{PASS}@{addr}/account?id={user}"))
            .await?;
        let tl = c
            .wait()
            .at_most(wait)
            .for_element(Locator::Css("svg.consent-timeline"))
            .await?;
        let lanes = tl.find_all(Locator::Css("g.lane")).await?;
        assert_eq!(lanes.len(), TYPES.len());
        for ty in TYPES {
            let mut mine: Vec<&Row> = all
                .iter()
                .filter(|r| r.user == user && r.ty == ty)
                .collect();
            mine.sort_by_key(|r| (r.t, r.id));
            let lane = tl
                .find(Locator::Css(&format!("g.lane[data-type='{ty}']")))
                .await?;
            let dots = lane.find_all(Locator::Css("circle")).await?;
            assert_eq!(dots.len(), mine.len(), "{ty}: a dot per row");
            let states: Vec<&str> = mine
                .iter()
                .map(|r| match r.st {
                    St::Consented => "consented",
                    St::Withdrawn => "withdrawn",
                    St::NotRequired => "not required",
                })
                .collect();
            assert_eq!(attr(&lane, "data-states").await?, states.join(","));
        }
        let mut axis = Vec::new();
        for t in tl.find_all(Locator::Css("g.axes text")).await? {
            axis.push(text_of(&t).await?);
        }
        assert!(axis.iter().any(|t| t == "ENROLL") && axis.iter().any(|t| t == "STATSEXPORT"));
        let history_rows = c
            .find_all(Locator::Css("#consent-history tbody tr"))
            .await?;
        assert_eq!(
            history_rows.len(),
            all.iter().filter(|r| r.user == user).count()
        );
        screenshot(&c, "consent", "ops-account-timeline.png").await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    server.abort();
    browser::finish(c, result).await;
}
