//! One enumeration: a database reader streaming rows in batches to one
//! writer thread per `<output>`.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use mysql_async::prelude::*;
use tokio::sync::mpsc;

use crate::batch::{send, Batch, BATCH, QUEUE};
use crate::credit_by_app::read_work;
use crate::ctx::{Ctx, EnumSummary, IdRecords};
use crate::error::{db, DumpError};
use crate::optout::Optout;
use crate::output::{FileSet, OutputStats};
use crate::owners::{OwnerPass, OwnerRow, Owners};
use crate::query;
use crate::spec::{Enumeration, Sort, Table};
use crate::writer::{write_output, People};

struct Writer {
    handle: std::thread::JoinHandle<io::Result<(OutputStats, Duration)>>,
    tx: mpsc::Sender<Arc<Batch>>,
}

pub(crate) async fn enumerate(
    ctx: &Arc<Ctx>,
    e: &Enumeration,
    pb: &ProgressBar,
) -> Result<EnumSummary, DumpError> {
    let started = Instant::now();
    // What the records depend on comes first, holding no connection: the
    // shared owner map and optout lists each take one of their own.
    let t = Instant::now();
    // The first user file by id builds the owner map from its own scan.
    let builds_owners = e.table == Table::User
        && matches!(e.sort, Sort::None | Sort::Id)
        && ctx.owners_from_user_file
        && !ctx.owners_claimed.swap(true, Ordering::SeqCst);
    let owners = if needs_owners(ctx, e) && !builds_owners {
        Some(ctx.owners().await?)
    } else {
        None
    };
    // The first host enumeration gathers host_optout's hosts on its way.
    let gathers = e.table == Table::Host
        && ctx.optout_hosts_from_host_scan
        && !ctx.optout_hosts_claimed.swap(true, Ordering::SeqCst);
    let optout = match (e.table, ctx.consent) {
        (Table::UserOptout | Table::HostOptout, Some(_)) => Some(ctx.optout().await?),
        (Table::Host, Some(_)) if gathers => Some(ctx.optout().await?),
        _ => None,
    };
    let waited = t.elapsed();
    let people = People {
        fields: ctx.fields,
        host_details: ctx.host_details,
        owners: owners.clone(),
        filter: ctx.consent.is_some(),
        subprojects: ctx.subprojects.clone(),
    };
    let mut writers = Vec::new();
    for o in &e.outputs {
        let fs = FileSet::new(&ctx.output_dir, &e.filename, e.table, o.clone(), ctx.level);
        let (tx, rx) = mpsc::channel::<Arc<Batch>>(QUEUE);
        let (table, people, cancel) = (e.table, people.clone(), ctx.cancel.clone());
        let handle = std::thread::Builder::new()
            .name(format!("dump-{}", e.filename))
            .spawn(move || write_output(fs, table, people, rx, &cancel))
            .map_err(|source| DumpError::Io {
                what: "start writer thread".into(),
                source,
            })?;
        writers.push(Writer { handle, tx });
    }
    let txs: Vec<_> = writers.iter().map(|w| w.tx.clone()).collect();
    let read = read_enumeration(ctx, e, owners.as_deref(), optout, builds_owners, &txs, pb).await;
    drop(txs);
    let handles: Vec<_> = writers.into_iter().map(|w| w.handle).collect();
    // Writers finish their files once the channels close.
    let joined = tokio::task::spawn_blocking(move || {
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "writer thread panicked".to_owned()))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| DumpError::Internal(format!("join writers: {e}")))?;
    let mut outputs = Vec::new();
    let mut busy = Duration::ZERO;
    let mut write_err = None;
    for j in joined {
        match j {
            Ok(Ok((s, b))) => {
                busy += b;
                outputs.push(s);
            }
            Ok(Err(err)) => {
                write_err.get_or_insert(DumpError::Io {
                    what: format!("writing {}", e.filename),
                    source: err,
                });
            }
            Err(msg) => {
                write_err.get_or_insert(DumpError::Internal(msg));
            }
        }
    }
    // A writer's own error explains a reader's "writer gone".
    if let Some(err) = write_err {
        return Err(err);
    }
    let (records, db_time) = read?;
    let db_time = db_time + waited;
    let compress_time: Duration = outputs.iter().map(|o| o.compress_time).sum();
    Ok(EnumSummary {
        table: e.table,
        filename: e.filename.clone(),
        records,
        outputs,
        wall: started.elapsed(),
        db_time,
        format_time: busy.saturating_sub(compress_time),
        compress_time,
    })
}

/// The owner map decides users, hosts and team members/founders under
/// the consent filter, and every host's userid (show_hosts); it holds
/// team founders' names.
fn needs_owners(ctx: &Ctx, e: &Enumeration) -> bool {
    matches!(
        e.table,
        Table::Host | Table::BadgeUser | Table::UserWork | Table::Team
    ) || (ctx.consent.is_some() && e.table == Table::User)
}

/// Streams the enumeration's rows to the writers. Returns (records, time
/// spent waiting for the database).
async fn read_enumeration(
    ctx: &Ctx,
    e: &Enumeration,
    owners: Option<&Owners>,
    optout: Option<&Optout>,
    builds_owners: bool,
    txs: &[mpsc::Sender<Arc<Batch>>],
    pb: &ProgressBar,
) -> Result<(u64, Duration), DumpError> {
    let what = format!("{} ({})", e.filename, e.table.name());
    let sql = match e.table {
        // Small (recent withdrawals only): sent from memory.
        Table::UserOptout => {
            let mut n = 0;
            for chunk in optout.map(|o| &o.users[..]).unwrap_or(&[]).chunks(BATCH) {
                let ids = chunk.iter().map(|(id, c, _)| (*id, c.to_vec())).collect();
                send(txs, Batch::Ids(ids)).await?;
                n += chunk.len() as u64;
                pb.inc(chunk.len() as u64);
            }
            return Ok((n, Duration::ZERO));
        }
        // Nobody withdrew (or no filter): no need to scan the host table.
        Table::HostOptout if optout.is_none_or(|o| o.host_owners.is_empty()) => {
            return Ok((0, Duration::ZERO))
        }
        // Gathered by the host file's scan.
        Table::HostOptout if ctx.optout_hosts_from_host_scan => {
            let t = Instant::now();
            let list = ctx.optout_hosts().await?;
            let waited = t.elapsed();
            for from in (0..list.len()).step_by(BATCH) {
                let to = (from + BATCH).min(list.len());
                send(txs, Batch::Ids(list.batch(from, to))).await?;
                pb.inc((to - from) as u64);
            }
            return Ok((list.len() as u64, waited));
        }
        Table::HostOptout => query::optout_hosts(),
        // The consent filter for users, hosts and team members is the owner
        // map: one pass over the consent index for the whole run.
        Table::User if builds_owners => query::users_with_owners(ctx.consent),
        Table::User => query::users(e.sort, None),
        Table::Host => query::hosts(e.sort, ctx.host_details),
        Table::Team => query::teams(e.sort, e.outputs.iter().any(|o| o.detail), None),
        Table::UserDeleted => query::USERS_DELETED.to_owned(),
        Table::HostDeleted => query::HOSTS_DELETED.to_owned(),
        Table::BadgeUser => query::BADGE_USERS.to_owned(),
        Table::BadgeTeam => query::BADGE_TEAMS.to_owned(),
        Table::UserWork | Table::TeamWork => String::new(),
    };
    tracing::debug!("{what}: {sql}");
    let t = Instant::now();
    let mut conn = ctx.snap.lease().await?;
    let mut db_time = t.elapsed();
    if matches!(e.table, Table::UserWork | Table::TeamWork) {
        let (n, d) = read_work(&mut conn, e.table, owners, || ctx.check(), txs, pb).await?;
        return Ok((n, db_time + d));
    }
    let id_rows = matches!(
        e.table,
        Table::UserDeleted | Table::HostDeleted | Table::HostOptout
    );
    let filter = owners.filter(|_| ctx.consent.is_some());
    let mut pass = match builds_owners {
        true => {
            Some(OwnerPass::start(ctx.team_founders, ctx.owner_optout_since(), &mut conn).await?)
        }
        false => None,
    };
    // host_optout's hosts, when this scan gathers them (see Ctx).
    let mut gathered: Option<IdRecords> =
        (e.table == Table::Host && optout.is_some()).then(IdRecords::default);
    let mut records = 0u64;
    let mut seen = 0u64;
    let t = Instant::now();
    let mut result = conn
        .exec_iter(sql.as_str(), ())
        .await
        .map_err(db(what.clone()))?;
    db_time += t.elapsed();
    let mut rows = Vec::with_capacity(BATCH);
    let mut ids = Vec::new();
    loop {
        let t = Instant::now();
        let row = result.next().await.map_err(db(what.clone()))?;
        db_time += t.elapsed();
        let Some(row) = row else { break };
        ctx.check()?;
        if id_rows {
            if let Some(o) = optout {
                if !owned_by(&o.host_owners, query::int(&row, 2)) {
                    continue;
                }
            }
            ids.push((query::int(&row, 0), query::bytes(&row, 1).to_vec()));
            records += 1;
            if ids.len() == BATCH {
                pb.inc(BATCH as u64);
                send(txs, Batch::Ids(std::mem::take(&mut ids))).await?;
            }
        } else {
            if e.table == Table::Host {
                seen += 1;
                // Before the consent filter: these owners no longer consent.
                if let (Some(list), Some(o)) = (gathered.as_mut(), optout) {
                    if owned_by(&o.host_owners, query::int(&row, 1)) {
                        list.push(query::int(&row, 0), query::bytes(&row, 27));
                    }
                }
            }
            if let Some(pass) = pass.as_mut() {
                // Every user feeds the owner map; the file gets those the
                // user query's WHERE and the consent filter would let by.
                let b = query::USER_OWNER_BASE;
                let ok = query::int(&row, b + 1) == 1;
                let exportable = query::int(&row, b + 2) == 1;
                pass.add(OwnerRow {
                    id: query::int(&row, 0),
                    show_hosts: query::int(&row, b) != 0,
                    ok,
                    exportable,
                    total_credit: query::dbl(&row, 3),
                    name: query::bytes(&row, 1),
                    cross_project_id: query::bytes(&row, 6),
                    email_addr: query::bytes(&row, 7),
                    latest_consent: query::opt_int(&row, b + 3),
                });
                if !exportable || (ctx.consent.is_some() && !ok) {
                    continue;
                }
            }
            if e.table == Table::BadgeUser
                && !owners.is_some_and(|o| o.exported(query::int(&row, 0)))
            {
                // Badges of users the user file lists, no one else's.
                continue;
            }
            if let Some(o) = filter {
                // Consent filter: users who consent, hosts whose owner
                // does, team members who do.
                let uid = match e.table {
                    Table::Host => Some(query::int(&row, 1)),
                    Table::User => Some(query::int(&row, 0)),
                    Table::Team if query::team_row_is_member(&row) => {
                        Some(query::int(&row, query::TEAM_MEMBER_BASE))
                    }
                    _ => None,
                };
                if uid.is_some_and(|u| !o.ok(u)) {
                    continue;
                }
            }
            if e.table != Table::Team || !query::team_row_is_member(&row) {
                records += 1;
            }
            rows.push(row);
            if rows.len() == BATCH {
                pb.inc(BATCH as u64);
                let full = std::mem::replace(&mut rows, Vec::with_capacity(BATCH));
                send(txs, Batch::Rows(full)).await?;
            }
        }
    }
    drop(result);
    drop(conn);
    pb.inc((rows.len() + ids.len()) as u64);
    if !rows.is_empty() {
        send(txs, Batch::Rows(rows)).await?;
    }
    if !ids.is_empty() {
        send(txs, Batch::Ids(ids)).await?;
    }
    if e.table == Table::Host {
        let _ = ctx.hosts_seen.set(seen);
    }
    if let Some(pass) = pass {
        ctx.publish_owners(pass.finish());
    }
    if let Some(mut list) = gathered {
        // host_optout is by id whatever this file's order.
        list.sort();
        ctx.optout_hosts.send_replace(Some(Arc::new(list)));
    }
    Ok((records, db_time))
}

/// Is `userid` one of `owners` (ids as roaring keys; no user has id <= 0)?
fn owned_by(owners: &roaring::RoaringTreemap, userid: i64) -> bool {
    u64::try_from(userid).is_ok_and(|k| owners.contains(k))
}
