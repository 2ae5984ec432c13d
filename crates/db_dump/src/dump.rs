//! One dump run: lock, build every file in output_dir, write tables.xml,
//! publish atomically. Any error discards the half-built dump and leaves
//! the published one alone.
//!
//! Every read runs on a connection of one [`Snapshot`]: all files show the
//! database at one point in time. Data flow per enumeration: one
//! connection streams rows (async task) in batches to one thread per
//! `<output>`, which formats and compresses. Enumerations run concurrently
//! up to `jobs` (the snapshot's connections), biggest first, so the host
//! dump (usually the longest) never waits behind the small ones.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use boinc_db::schema::shape::{HostDetails, Shape};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use mysql_async::prelude::*;
use mysql_async::Conn;

use boinc_db::config::ConfigError;

use crate::config::DumpConfig;
use crate::credit_by_app::{parse_subprojects, subprojects_from_apps, SubProject, SUBPROJECTS_KEY};
use crate::ctx::{Ctx, EnumSummary};
use crate::enumerate::enumerate;
use crate::error::{db, DumpError};
use crate::optout::OPTOUT_WINDOW_SECS;
use crate::publish;
use crate::query;
use crate::record::{self, Badge, Totals};
use crate::replica;
use crate::retain;
use crate::snapshot::Snapshot;
use crate::spec::{DumpSpec, Enumeration, Sort, Table};
use crate::totals::{badges, totals};

pub struct Options {
    pub config: DumpConfig,
    pub spec: DumpSpec,
    /// gzip/zip deflate level (0-9).
    pub level: u32,
    /// Enumerations (and DB connections) at once.
    pub jobs: usize,
    pub progress: Option<MultiProgress>,
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub enumerations: Vec<EnumSummary>,
    pub totals: Totals,
    pub consent_filter: bool,
    pub wall: Duration,
    pub publish_time: Duration,
    pub final_dir: PathBuf,
    /// Connections that shared the dump's snapshot.
    pub snapshot_connections: usize,
    /// Lines for the admin beyond the table (snapshot fallback, pruned
    /// archives, replica lag), printed after it.
    pub notes: Vec<String>,
    /// Archives removed after the publish (`<archive_days>`).
    pub pruned: Vec<PathBuf>,
}

pub async fn run(opts: Options) -> Result<Summary, DumpError> {
    let started = Instant::now();
    let spec = &opts.spec;
    let _lock = publish::lock(&spec.output_dir)?;
    publish::prepare(&spec.output_dir, &spec.final_output_dir)?;
    let built = build(&opts).await;
    let mut summary = match built {
        Ok(s) => s,
        Err(e) => {
            publish::discard(&spec.output_dir);
            return Err(e);
        }
    };
    let t = Instant::now();
    let stamp = publish::stamp(chrono::Local::now());
    if let Err(e) = publish::publish(
        &spec.output_dir,
        &spec.final_output_dir,
        spec.archive_dir.as_deref(),
        &stamp,
    ) {
        publish::discard(&spec.output_dir);
        return Err(e.into());
    }
    summary.publish_time = t.elapsed();
    // Retention runs only after a successful publish; failing to prune
    // does not undo the dump, it is reported.
    match retain::expired(spec, spec.archive_days, chrono::Local::now()) {
        Ok(list) => {
            let p = retain::prune(&list);
            if !p.removed.is_empty() {
                let names: Vec<String> =
                    p.removed.iter().map(|d| d.display().to_string()).collect();
                summary.notes.push(format!(
                    "pruned {} archive(s) older than {} days: {}",
                    p.removed.len(),
                    spec.archive_days,
                    names.join(", ")
                ));
            }
            for (d, e) in &p.failed {
                tracing::warn!("could not prune archive {}: {e}", d.display());
                summary
                    .notes
                    .push(format!("could not prune archive {}: {e}", d.display()));
            }
            summary.pruned = p.removed;
        }
        Err(e) => {
            tracing::warn!("could not list archives to prune: {e}");
            summary
                .notes
                .push(format!("could not list archives to prune: {e}"));
        }
    }
    summary.wall = started.elapsed();
    Ok(summary)
}

async fn build(opts: &Options) -> Result<Summary, DumpError> {
    let spec = &opts.spec;
    let settings = &opts.config.database;
    let jobs = opts.jobs.max(1);
    // Every connection's snapshot is taken before anything is read.
    let snap = Snapshot::open(settings, jobs).await?;
    match &snap.fallback {
        None => tracing::info!(
            "consistent snapshot on {} connection(s) ({} attempt(s))",
            snap.connections,
            snap.attempts
        ),
        Some(why) => tracing::warn!("consistent snapshot on 1 connection: {why}"),
    }
    // Every connection ends with the run, on errors too (a dropped one
    // would keep its transaction open until its runtime gets to it).
    let (consent, apps, badges, subprojects, lag, host_details) = match prelude(opts, &snap).await {
        Ok(x) => x,
        Err(e) => {
            snap.close().await;
            return Err(e);
        }
    };
    // Upstream's extra files: badges whenever the badge table has rows,
    // credit by app when configured.
    let mut enums = spec.enumerations.clone();
    if !badges.is_empty() {
        enums.push(Table::BadgeUser.extra());
        enums.push(Table::BadgeTeam.extra());
    }
    let credit_by_app = opts.config.credit_by_app;
    if credit_by_app {
        enums.push(Table::UserWork.extra());
        enums.push(Table::TeamWork.extra());
    }
    match consent {
        Some(id) => {
            tracing::info!("STATSEXPORT (id {id}) enabled: exporting consenting users only")
        }
        None => tracing::info!("STATSEXPORT absent or disabled: no consent filter"),
    }
    let now = boinc_db::now();
    let optout_since = now - OPTOUT_WINDOW_SECS;
    let ctx = Arc::new(Ctx {
        snap,
        consent,
        fields: opts.config.fields,
        host_details,
        optout: tokio::sync::OnceCell::new(),
        optout_since,
        optout_files: spec.has_table(Table::UserOptout) || spec.has_table(Table::HostOptout),
        output_dir: spec.output_dir.clone(),
        level: opts.level,
        cancel: Arc::new(AtomicBool::new(false)),
        owners: tokio::sync::OnceCell::new(),
        team_founders: spec.has_table(Table::Team),
        owners_from_user_file: enums
            .iter()
            .any(|e| e.table == Table::User && matches!(e.sort, Sort::None | Sort::Id)),
        owners_claimed: AtomicBool::new(false),
        owners_ready: tokio::sync::watch::Sender::new(None),
        optout_hosts_from_host_scan: consent.is_some()
            && spec.has_table(Table::Host)
            && spec.has_table(Table::HostOptout),
        optout_hosts_claimed: AtomicBool::new(false),
        optout_hosts: tokio::sync::watch::Sender::new(None),
        hosts_seen: std::sync::OnceLock::new(),
        subprojects: Arc::new(subprojects),
    });

    let r = run_enumerations(opts, &enums, &ctx).await;
    if r.is_err() {
        ctx.cancel_all();
    }
    ctx.snap.close().await;
    let (enumerations, mut totals) = r?;
    totals.credit_by_app = credit_by_app;
    let mut notes = Vec::new();
    if let Some(l) = lag {
        tracing::warn!("{l}");
        notes.push(l);
    }
    if let Some(why) = &ctx.snap.fallback {
        notes.push(format!(
            "consistent snapshot on one connection (enumerations ran one after another): {why}"
        ));
    }
    let mut xml = Vec::new();
    record::tables_xml(&mut xml, now, &totals, &apps, &badges);
    write_synced(&spec.output_dir.join("tables.xml"), &xml)?;
    let spec_copy = std::fs::read(&spec.source).map_err(|source| DumpError::Io {
        what: format!("read {}", spec.source.display()),
        source,
    })?;
    write_synced(&spec.output_dir.join("db_dump.xml"), &spec_copy)?;

    Ok(Summary {
        enumerations,
        totals,
        consent_filter: consent.is_some(),
        wall: Duration::ZERO,
        publish_time: Duration::ZERO,
        final_dir: spec.final_output_dir.clone(),
        snapshot_connections: ctx.snap.connections,
        notes,
        pruned: Vec::new(),
    })
}

/// Every enumeration, then the totals, all on the snapshot's connections.
async fn run_enumerations(
    opts: &Options,
    enums: &[Enumeration],
    ctx: &Arc<Ctx>,
) -> Result<(Vec<EnumSummary>, Totals), DumpError> {
    let spec = &opts.spec;
    let mut order: Vec<usize> = (0..enums.len()).collect();
    order.sort_by_key(|&i| weight(enums[i].table));
    let mut set = tokio::task::JoinSet::new();
    for i in order {
        let e = enums[i].clone();
        let ctx = ctx.clone();
        let pb = progress_bar(opts.progress.as_ref(), &e.filename);
        set.spawn(async move {
            ctx.check()?;
            let r = enumerate(&ctx, &e, &pb).await;
            match &r {
                Ok(s) => pb.finish_with_message(format!("{} records", s.records)),
                Err(_) => pb.abandon_with_message("failed"),
            }
            r.map(|s| (i, s))
        });
    }
    let mut done: Vec<Option<EnumSummary>> = vec![None; enums.len()];
    let mut first_err = None;
    // Every task runs to its end (stopping early once cancelled), so no
    // writer outlives this loop.
    while let Some(joined) = set.join_next().await {
        let r = joined
            .map_err(|e| DumpError::Internal(format!("task: {e}")))
            .and_then(|r| r);
        let (i, s) = match r {
            Ok(x) => x,
            Err(e) => {
                if first_err.is_none() {
                    ctx.cancel_all();
                    first_err = Some(e);
                }
                continue;
            }
        };
        tracing::info!(
            "{}: {} records in {:.1}s ({} file(s); waiting for the database {:.1}s, \
             formatting {:.1}s, compressing {:.1}s)",
            s.filename,
            s.records,
            s.wall.as_secs_f64(),
            s.outputs.iter().map(|o| o.files.len()).sum::<usize>(),
            s.db_time.as_secs_f64(),
            s.format_time.as_secs_f64(),
            s.compress_time.as_secs_f64()
        );
        done[i] = Some(s);
    }
    // The totals need a connection while the enumerations hold them all:
    // queued behind them on the snapshot.
    let totals_task = {
        let ctx = ctx.clone();
        let tables: Vec<Table> = spec.enumerations.iter().map(|e| e.table).collect();
        tokio::spawn(async move { totals(&ctx, &tables).await })
    };
    if let Some(e) = first_err {
        totals_task.abort();
        return Err(e);
    }
    let enumerations: Vec<EnumSummary> = done.into_iter().flatten().collect();
    let mut totals = totals_task
        .await
        .map_err(|e| DumpError::Internal(format!("totals task: {e}")))??;
    if spec.has_table(Table::Host) {
        totals.nhosts = ctx.hosts_seen.get().copied().unwrap_or(0);
        if spec.has_table(Table::User) {
            let o = ctx
                .owners
                .get()
                .ok_or_else(|| DumpError::Internal("owner map missing".into()))?;
            totals.nusers = o.nusers;
            totals.total_credit = o.total_credit;
        }
    }
    let optout_count = |t: Table| {
        enumerations
            .iter()
            .find(|s| s.table == t)
            .map(|s| s.records)
    };
    totals.nusers_optout = optout_count(Table::UserOptout);
    totals.nhosts_optout = optout_count(Table::HostOptout);

    Ok((enumerations, totals))
}

type Prelude = (
    Option<i64>,
    Vec<Vec<u8>>,
    Vec<Badge>,
    Vec<SubProject>,
    Option<String>,
    HostDetails,
);

/// What decides the run's files, read first on the snapshot: the consent
/// filter, apps and badges (tables.xml), credit_by_app's sub-projects.
async fn prelude(opts: &Options, snap: &Snapshot) -> Result<Prelude, DumpError> {
    let mut conn = snap.lease().await?;
    // The release's tables: which host columns to read, which optional
    // tables are there.
    let shape = Shape::probe(&mut *conn)
        .await
        .map_err(|e| DumpError::Internal(format!("read the schema's shape: {e}")))?;
    tracing::info!(
        "tables as upstream server release {} makes them",
        shape.release()
    );
    let consent = statsexport(&mut conn).await?;
    let apps: Vec<Vec<u8>> = conn
        .query_map(query::APPS, |name: Option<Vec<u8>>| {
            name.unwrap_or_default()
        })
        .await
        .map_err(db("list apps"))?;
    let badges = badges(&mut conn, &shape).await?;
    let subprojects = match opts.config.subprojects.as_deref() {
        _ if !opts.config.credit_by_app => Vec::new(),
        Some(text) => parse_subprojects(text).map_err(|e| {
            DumpError::Config(ConfigError::Invalid(format!(
                "config.xml <{SUBPROJECTS_KEY}>: {e}"
            )))
        })?,
        None => subprojects_from_apps(&mut conn).await?,
    };
    // Reading from a replica: say when its data is old.
    let lag = match opts.config.replica_host.as_deref() {
        Some(host) => {
            let st = replica::state(&mut conn).await;
            replica::note(host, &st, opts.config.max_lag)
        }
        None => None,
    };
    Ok((
        consent,
        apps,
        badges,
        subprojects,
        lag,
        shape.host_details(),
    ))
}

fn weight(t: Table) -> u8 {
    match t {
        Table::Host => 0,
        Table::User => 1,
        Table::Team => 2,
        Table::UserWork | Table::TeamWork => 3,
        _ => 4,
    }
}

fn progress_bar(mp: Option<&MultiProgress>, name: &str) -> ProgressBar {
    let Some(mp) = mp else {
        return ProgressBar::hidden();
    };
    let pb = mp.add(ProgressBar::new_spinner());
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>16} {spinner} {human_pos:>10} rows {elapsed:>4} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_prefix(name.to_owned());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

fn write_synced(path: &Path, data: &[u8]) -> Result<(), DumpError> {
    use std::io::Write;
    let io = |source| DumpError::Io {
        what: format!("write {}", path.display()),
        source,
    };
    let mut f = std::fs::File::create(path).map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)
}

/// STATSEXPORT's id if the type exists and is enabled: the shared rule's
/// consent filter (`boinc_db::exportable`).
async fn statsexport(conn: &mut Conn) -> Result<Option<i64>, DumpError> {
    boinc_db::exportable::consent_filter(conn)
        .await
        .map_err(|e| match e {
            boinc_db::DbError::Mysql(e) => db("look up STATSEXPORT")(e),
            other => DumpError::Internal(other.to_string()),
        })
}
