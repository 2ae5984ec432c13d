//! Credit by application (`<credit_by_app/>` in config.xml): user_work
//! and team_work, upstream's export_credit_by_app layout.
//!
//! Upstream groups apps into "sub-projects" defined in the project's PHP
//! (`$sub_projects` in project.inc). We read the same grouping from
//! config.xml's `<credit_by_app_subprojects>` (`Name: appid, appid;
//! Other: appid`), else every app is a sub-project of its own, named by
//! its user_friendly_name (its name when that is empty).

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use mysql_async::prelude::*;
use mysql_async::Conn;
use tokio::sync::mpsc;

use crate::batch::{send, Batch, CreditRow, BATCH};
use crate::error::{db, DumpError};
use crate::owners::Owners;
use crate::query;
use crate::spec::Table;

pub const SUBPROJECTS_KEY: &str = "credit_by_app_subprojects";

#[derive(Debug, Clone, PartialEq)]
pub struct SubProject {
    pub name: String,
    pub appids: Vec<i64>,
}

/// `Name: 1, 25; Other: 16` -> sub-projects, in that order.
pub fn parse_subprojects(text: &str) -> Result<Vec<SubProject>, String> {
    let mut out = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, ids) = part
            .rsplit_once(':')
            .ok_or_else(|| format!("'{part}' is not 'Name: appid, appid'"))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("'{part}' has no name"));
        }
        let appids = ids
            .split(',')
            .map(|i| {
                i.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("'{}' in '{part}' is not an app id", i.trim()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push(SubProject {
            name: name.to_owned(),
            appids,
        });
    }
    if out.is_empty() {
        return Err("no sub-project given".into());
    }
    Ok(out)
}

/// Every app its own sub-project.
pub async fn subprojects_from_apps(conn: &mut Conn) -> Result<Vec<SubProject>, DumpError> {
    // As bytes: a legacy latin1 database may hold names that are not UTF-8.
    type Bytes = Option<Vec<u8>>;
    let rows: Vec<(i64, Bytes, Bytes)> = conn
        .query("SELECT id, user_friendly_name, name FROM app ORDER BY id")
        .await
        .map_err(db("list apps for credit_by_app"))?;
    Ok(rows
        .into_iter()
        .map(|(id, friendly, name)| SubProject {
            name: friendly
                .map(|f| boinc_db::text::charset::decode(&f).into_owned())
                .filter(|f| !f.trim().is_empty())
                .or(name.map(|n| boinc_db::text::charset::decode(&n).into_owned()))
                .unwrap_or_default(),
            appids: vec![id],
        })
        .collect())
}

/// Streams user_work (every user the user file lists, with their
/// credit_user rows) or team_work (every team with credit, with its
/// credit_team rows) to the writers, as (id, rows) items in id order.
pub(crate) async fn read_work(
    conn: &mut Conn,
    table: Table,
    owners: Option<&Owners>,
    check: impl Fn() -> Result<(), DumpError>,
    txs: &[mpsc::Sender<Arc<Batch>>],
    pb: &ProgressBar,
) -> Result<(u64, Duration), DumpError> {
    let mut db_time = Duration::ZERO;
    let mut items: Vec<(i64, Vec<CreditRow>)> = Vec::with_capacity(BATCH);
    let mut records = 0u64;
    let row_of = |r: &mysql_async::Row, base: usize| CreditRow {
        appid: query::int(r, base),
        njobs: query::int(r, base + 1),
        total: query::dbl(r, base + 2),
        expavg: query::dbl(r, base + 3),
    };
    let t = Instant::now();
    let mut result = conn
        .exec_iter(
            match table {
                Table::UserWork => query::CREDIT_USERS,
                _ => query::CREDIT_TEAMS,
            },
            (),
        )
        .await
        .map_err(db(table.name()))?;
    db_time += t.elapsed();
    // The next row, timing the wait.
    macro_rules! next {
        () => {{
            let t = Instant::now();
            let r = result.next().await.map_err(db(table.name()));
            db_time += t.elapsed();
            r
        }};
    }
    if table == Table::UserWork {
        // Merge the listed users (owner map, id order) with credit_user
        // (primary-key order): one sequential scan, no per-user query.
        let owners =
            owners.ok_or_else(|| DumpError::Internal("user_work without owners".into()))?;
        let mut pending = next!()?;
        for id in owners.exported_ids() {
            check()?;
            let mut rows = Vec::new();
            while let Some(r) = &pending {
                let uid = query::int(r, 0);
                if uid > id {
                    break;
                }
                if uid == id {
                    rows.push(row_of(r, 1));
                }
                pending = next!()?;
            }
            items.push((id, rows));
            records += 1;
            if items.len() == BATCH {
                pb.inc(BATCH as u64);
                send(txs, Batch::Work(std::mem::take(&mut items))).await?;
            }
        }
        // Rows of users past the last listed one are not needed; dropping
        // the result drains them.
    } else {
        let mut cur: Option<(i64, Vec<CreditRow>)> = None;
        loop {
            let Some(r) = next!()? else { break };
            check()?;
            let tid = query::int(&r, 0);
            if cur.as_ref().map(|c| c.0) != Some(tid) {
                if let Some(done) = cur.take() {
                    items.push(done);
                    records += 1;
                }
                cur = Some((tid, Vec::new()));
            }
            if query::opt_int(&r, 1).is_some() {
                if let Some(c) = cur.as_mut() {
                    c.1.push(row_of(&r, 1));
                }
            }
            if items.len() == BATCH {
                pb.inc(BATCH as u64);
                send(txs, Batch::Work(std::mem::take(&mut items))).await?;
            }
        }
        if let Some(done) = cur.take() {
            items.push(done);
            records += 1;
        }
    }
    drop(result);
    pb.inc(items.len() as u64);
    if !items.is_empty() {
        send(txs, Batch::Work(items)).await?;
    }
    Ok((records, db_time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subproject_list() {
        assert_eq!(
            parse_subprojects("Remote Test: 16; Upper: case: 1, 25;").unwrap(),
            vec![
                SubProject {
                    name: "Remote Test".into(),
                    appids: vec![16]
                },
                SubProject {
                    name: "Upper: case".into(),
                    appids: vec![1, 25]
                },
            ]
        );
        assert!(parse_subprojects("A: x").is_err());
        assert!(parse_subprojects(": 1").is_err());
        assert!(parse_subprojects(" ; ").is_err());
    }
}
