//! One dump run: lock, build every file in output_dir, write tables.xml,
//! publish atomically. Any error discards the half-built dump and leaves
//! the published one alone.
//!
//! Data flow per enumeration: one DB connection streams rows (async task)
//! in batches to one thread per `<output>`, which formats and compresses.
//! Enumerations run concurrently up to `jobs`, biggest first, so the host
//! dump (usually the longest) never waits behind the small ones.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boinc_db::config::ConfigError;
use boinc_db::{DbSettings, ProjectConfig};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use mysql_async::prelude::*;
use mysql_async::{Conn, Row};
use tokio::sync::mpsc;

use crate::output::{FileSet, OutputStats};
use crate::publish::{self, PublishError};
use crate::query;
use crate::record::{self, Badge, Totals, UserFields};
use crate::spec::{DumpSpec, Enumeration, Table};

/// Withdrawals this recent are listed in the optout files (BOINC keeps
/// deletion records as long).
pub const OPTOUT_WINDOW_SECS: i64 = 60 * 86400;
/// Rows per hand-over from the DB reader to the writers.
const BATCH: usize = 512;
/// Batches in flight per output: bounds memory whatever the table size.
const QUEUE: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("database: {what}: {source}")]
    Db {
        what: String,
        source: mysql_async::Error,
    },
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("{0}")]
    Internal(String),
}

fn db(what: impl Into<String>) -> impl FnOnce(mysql_async::Error) -> DumpError {
    let what = what.into();
    move |source| DumpError::Db { what, source }
}

pub struct Options {
    pub config: ProjectConfig,
    pub spec: DumpSpec,
    /// gzip/zip deflate level (0-9).
    pub level: u32,
    /// Enumerations (and DB connections) at once.
    pub jobs: usize,
    pub progress: Option<MultiProgress>,
}

#[derive(Debug, Clone)]
pub struct EnumSummary {
    pub table: Table,
    pub filename: String,
    pub records: u64,
    pub outputs: Vec<OutputStats>,
    pub wall: Duration,
    /// Waiting for and decoding rows from the server.
    pub db_time: Duration,
    /// Writer threads building XML (summed over outputs).
    pub format_time: Duration,
    /// Writer threads in the compressor and file writes (summed).
    pub compress_time: Duration,
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub enumerations: Vec<EnumSummary>,
    pub totals: Totals,
    pub consent_filter: bool,
    pub wall: Duration,
    pub publish_time: Duration,
    pub final_dir: PathBuf,
}

struct Ctx {
    settings: DbSettings,
    /// STATSEXPORT's id when that type exists and is enabled.
    consent: Option<i64>,
    fields: UserFields,
    /// Computed by the first optout enumeration (on its connection).
    optout: tokio::sync::OnceCell<Optout>,
    optout_since: i64,
    output_dir: PathBuf,
    level: u32,
    /// Set on the first error: everyone stops, so the half-built dump can
    /// be removed with no writer still creating files in it.
    cancel: Arc<AtomicBool>,
    /// Built once by the first host enumeration that needs it.
    owners: Arc<tokio::sync::OnceCell<Owners>>,
    /// Exportable hosts before the consent filter (= nhosts_total), seen
    /// by a host enumeration's scan.
    hosts_seen: std::sync::OnceLock<u64>,
}

/// Two bits per user id: may own exported hosts (exists and, with the
/// consent filter, consents) and shows hosts. 1M users take 250 KB.
#[derive(Default)]
pub struct Owners {
    ok: Vec<u64>,
    show: Vec<u64>,
    /// tables.xml's user totals, from the same pass.
    nusers: u64,
    total_credit: f64,
}

impl Owners {
    fn set(bits: &mut Vec<u64>, id: usize) {
        let w = id / 64;
        if bits.len() <= w {
            bits.resize(w + 1, 0);
        }
        bits[w] |= 1 << (id % 64);
    }

    fn get(bits: &[u64], id: i64) -> bool {
        usize::try_from(id)
            .ok()
            .and_then(|i| bits.get(i / 64).map(|w| w & (1 << (i % 64)) != 0))
            .unwrap_or(false)
    }

    pub fn insert(&mut self, id: i64, show_hosts: bool) {
        if let Ok(i) = usize::try_from(id) {
            Self::set(&mut self.ok, i);
            if show_hosts {
                Self::set(&mut self.show, i);
            }
        }
    }

    pub fn ok(&self, id: i64) -> bool {
        Self::get(&self.ok, id)
    }

    /// None: no such owner (upstream then leaves out userid).
    pub fn show_hosts(&self, id: i64) -> Option<bool> {
        self.ok(id).then(|| Self::get(&self.show, id))
    }
}

impl Ctx {
    async fn optout(&self) -> Result<&Optout, DumpError> {
        self.optout
            .get_or_try_init(|| async {
                match self.consent {
                    Some(id) => {
                        let mut conn = connect(&self.settings).await?;
                        let o = optout_users(&mut conn, id, self.optout_since).await?;
                        let _ = conn.disconnect().await;
                        Ok(o)
                    }
                    None => Ok(Optout::default()),
                }
            })
            .await
    }

    fn check(&self) -> Result<(), DumpError> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(DumpError::Internal("cancelled after another error".into()))
        } else {
            Ok(())
        }
    }
}

#[derive(Default)]
struct Optout {
    /// (user id, cpid), by id.
    users: Vec<(i64, [u8; 32])>,
    ids: HashSet<i64>,
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
    summary.wall = started.elapsed();
    Ok(summary)
}

async fn connect(settings: &DbSettings) -> Result<Conn, DumpError> {
    let mut conn = Conn::new(settings.opts())
        .await
        .map_err(db(format!("connect to {settings:?}")))?;
    // One snapshot per connection: each file is internally consistent even
    // while the project keeps writing. A slow consumer must not make the
    // server drop us mid-stream.
    conn.query_drop("SET SESSION net_write_timeout = 3600, SESSION net_read_timeout = 3600")
        .await
        .map_err(db("session setup"))?;
    conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await
        .map_err(db("session setup"))?;
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        .await
        .map_err(db("start snapshot"))?;
    Ok(conn)
}

async fn build(opts: &Options) -> Result<Summary, DumpError> {
    let spec = &opts.spec;
    let settings = opts.config.replica_database()?;
    let mut conn = connect(&settings).await?;
    let consent = statsexport(&mut conn).await?;
    match consent {
        Some(id) => {
            tracing::info!("STATSEXPORT (id {id}) enabled: exporting consenting users only")
        }
        None => tracing::info!("STATSEXPORT absent or disabled: no consent filter"),
    }
    let now = boinc_db::now();
    let optout_since = now - OPTOUT_WINDOW_SECS;
    let ctx = Arc::new(Ctx {
        settings: settings.clone(),
        consent,
        fields: UserFields {
            country: opts.config.bool("user_country"),
            url: opts.config.bool("user_url"),
        },
        optout: tokio::sync::OnceCell::new(),
        optout_since,
        output_dir: spec.output_dir.clone(),
        level: opts.level,
        cancel: Arc::new(AtomicBool::new(false)),
        owners: Arc::new(tokio::sync::OnceCell::new()),
        hosts_seen: std::sync::OnceLock::new(),
    });

    // Totals on a connection of their own, alongside the enumerations.
    let totals_task = {
        let ctx = ctx.clone();
        let tables: Vec<Table> = spec.enumerations.iter().map(|e| e.table).collect();
        tokio::spawn(async move { totals(&ctx, &tables).await })
    };

    let jobs = opts.jobs.max(1);
    let sem = Arc::new(tokio::sync::Semaphore::new(jobs));
    let mut order: Vec<usize> = (0..spec.enumerations.len()).collect();
    order.sort_by_key(|&i| weight(spec.enumerations[i].table));
    let mut set = tokio::task::JoinSet::new();
    for i in order {
        let e = spec.enumerations[i].clone();
        let ctx = ctx.clone();
        let sem = sem.clone();
        let pb = progress_bar(opts.progress.as_ref(), &e.filename);
        set.spawn(async move {
            let _permit = sem
                .acquire_owned()
                .await
                .map_err(|_| DumpError::Internal("semaphore closed".into()))?;
            ctx.check()?;
            let r = enumerate(&ctx, &e, &pb).await;
            match &r {
                Ok(s) => pb.finish_with_message(format!("{} records", s.records)),
                Err(_) => pb.abandon_with_message("failed"),
            }
            r.map(|s| (i, s))
        });
    }
    let mut done: Vec<Option<EnumSummary>> = vec![None; spec.enumerations.len()];
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
                    ctx.cancel.store(true, Ordering::Relaxed);
                    first_err = Some(e);
                }
                continue;
            }
        };
        tracing::info!(
            "{}: {} records in {:.1}s ({} file(s))",
            s.filename,
            s.records,
            s.wall.as_secs_f64(),
            s.outputs.iter().map(|o| o.files.len()).sum::<usize>()
        );
        done[i] = Some(s);
    }
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

    let apps: Vec<Vec<u8>> = conn
        .query_map(query::APPS, |name: Option<Vec<u8>>| {
            name.unwrap_or_default()
        })
        .await
        .map_err(db("list apps"))?;
    let badges = badges(&mut conn).await?;
    let _ = conn.disconnect().await;

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
    })
}

fn weight(t: Table) -> u8 {
    match t {
        Table::Host => 0,
        Table::User => 1,
        Table::Team => 2,
        _ => 3,
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

/// STATSEXPORT's id if the type exists and is enabled. A database without
/// a consent_type table (older BOINC) has no consent filter, as upstream.
async fn statsexport(conn: &mut Conn) -> Result<Option<i64>, DumpError> {
    let r: Result<Option<(i64, i64)>, _> = conn
        .query_first("SELECT id, enabled FROM consent_type WHERE shortname = 'STATSEXPORT'")
        .await;
    match r {
        Ok(Some((id, enabled))) => Ok((enabled != 0).then_some(id)),
        Ok(None) => Ok(None),
        Err(mysql_async::Error::Server(e)) if e.code == 1146 => Ok(None),
        Err(e) => Err(db("look up STATSEXPORT")(e)),
    }
}

type BadgeRow = (i64, Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);

async fn badges(conn: &mut Conn) -> Result<Vec<Badge>, DumpError> {
    let exists: Option<i64> = conn
        .query_first(
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name = 'badge'",
        )
        .await
        .map_err(db("look for badge table"))?;
    if exists.unwrap_or(0) == 0 {
        return Ok(Vec::new());
    }
    conn.query_map(query::BADGES, |(id, name, title, image_url): BadgeRow| {
        Badge {
            id,
            name: name.unwrap_or_default(),
            title: title.unwrap_or_default(),
            image_url: image_url.unwrap_or_default(),
        }
    })
    .await
    .map_err(db("list badges"))
}

/// Users whose latest STATSEXPORT consent is a withdrawal made since
/// `since` after having consented. One ordered pass over the candidates'
/// histories; the result is as small as the number of recent withdrawals.
async fn optout_users(conn: &mut Conn, type_id: i64, since: i64) -> Result<Optout, DumpError> {
    let mut result = conn
        .exec_iter(query::optout_candidates(type_id, since), ())
        .await
        .map_err(db("optout candidates"))?;
    let mut out = Optout::default();
    let mut cur: Option<(i64, [u8; 32])> = None;
    let mut tracker = Tracker::default();
    let finish = |cur: Option<(i64, [u8; 32])>, t: &Tracker, out: &mut Optout| {
        if let Some((id, cpid)) = cur {
            if t.withdrawn_at.is_some_and(|w| w >= since) {
                out.users.push((id, cpid));
                out.ids.insert(id);
            }
        }
    };
    while let Some(row) = result.next().await.map_err(db("optout candidates"))? {
        let uid = query::int(&row, 0);
        if cur.as_ref().map(|c| c.0) != Some(uid) {
            finish(cur.take(), &tracker, &mut out);
            tracker = Tracker::default();
            cur = Some((
                uid,
                record::cpid(query::bytes(&row, 3), query::bytes(&row, 4)),
            ));
        }
        tracker.push(query::int(&row, 2) != 0, query::int(&row, 1));
    }
    finish(cur.take(), &tracker, &mut out);
    drop(result);
    Ok(out)
}

/// Walks one user's consent history in (time, id) order.
#[derive(Default)]
struct Tracker {
    had_consent: bool,
    /// Time of the first refusal after the last consent, while the latest
    /// row is a refusal.
    withdrawn_at: Option<i64>,
}

impl Tracker {
    fn push(&mut self, flag: bool, time: i64) {
        if flag {
            self.had_consent = true;
            self.withdrawn_at = None;
        } else if self.had_consent && self.withdrawn_at.is_none() {
            self.withdrawn_at = Some(time);
        }
    }
}

async fn totals(ctx: &Ctx, tables: &[Table]) -> Result<Totals, DumpError> {
    let mut conn = connect(&ctx.settings).await?;
    let mut t = Totals::default();
    let has = |x: Table| tables.contains(&x);
    let count = |v: Option<i64>| v.unwrap_or(0).max(0) as u64;
    // With a host enumeration, its scans give the user and host totals.
    if has(Table::User) && !has(Table::Host) {
        let r: Option<(i64, f64)> = conn
            .exec_first(query::count_users(), ())
            .await
            .map_err(db("count users"))?;
        let (n, credit) = r.unwrap_or((0, 0.0));
        t.nusers = n.max(0) as u64;
        t.total_credit = credit;
    }
    if has(Table::Team) {
        t.nteams = count(
            conn.query_first(query::COUNT_TEAMS)
                .await
                .map_err(db("count teams"))?,
        );
    }
    if has(Table::UserDeleted) {
        t.nusers_deleted = count(
            conn.query_first(query::COUNT_USERS_DELETED)
                .await
                .map_err(db("count user_deleted"))?,
        );
    }
    if has(Table::HostDeleted) {
        t.nhosts_deleted = count(
            conn.query_first(query::COUNT_HOSTS_DELETED)
                .await
                .map_err(db("count host_deleted"))?,
        );
    }
    let _ = conn.disconnect().await;
    Ok(t)
}

/// What the reader hands to the writers.
enum Batch {
    Rows(Vec<Row>),
    /// (id, cpid) records: deleted and optout tables.
    Ids(Vec<(i64, Vec<u8>)>),
}

struct Writer {
    handle: std::thread::JoinHandle<io::Result<(OutputStats, Duration)>>,
    tx: mpsc::Sender<Arc<Batch>>,
}

async fn enumerate(
    ctx: &Arc<Ctx>,
    e: &Enumeration,
    pb: &ProgressBar,
) -> Result<EnumSummary, DumpError> {
    let started = Instant::now();
    let mut writers = Vec::new();
    for o in &e.outputs {
        let fs = FileSet::new(&ctx.output_dir, &e.filename, e.table, o.clone(), ctx.level);
        let (tx, rx) = mpsc::channel::<Arc<Batch>>(QUEUE);
        let (table, fields, cancel) = (e.table, ctx.fields, ctx.cancel.clone());
        let owners = ctx.owners.clone();
        let handle = std::thread::Builder::new()
            .name(format!("dump-{}", e.filename))
            .spawn(move || write_output(fs, table, fields, rx, &cancel, &owners))
            .map_err(|source| DumpError::Io {
                what: "start writer thread".into(),
                source,
            })?;
        writers.push(Writer { handle, tx });
    }
    let txs: Vec<_> = writers.iter().map(|w| w.tx.clone()).collect();
    let read = read_enumeration(ctx, e, &txs, pb).await;
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

async fn send(txs: &[mpsc::Sender<Arc<Batch>>], b: Batch) -> Result<(), DumpError> {
    let b = Arc::new(b);
    for tx in txs {
        tx.send(b.clone())
            .await
            .map_err(|_| DumpError::Internal("an output writer stopped".into()))?;
    }
    Ok(())
}

/// Streams the enumeration's rows to the writers. Returns (records, time
/// spent waiting for the database).
async fn read_enumeration(
    ctx: &Ctx,
    e: &Enumeration,
    txs: &[mpsc::Sender<Arc<Batch>>],
    pb: &ProgressBar,
) -> Result<(u64, Duration), DumpError> {
    let what = format!("{} ({})", e.filename, e.table.name());
    if e.table == Table::UserOptout {
        // Small (recent withdrawals only): sent from memory.
        let t = Instant::now();
        let optout = ctx.optout().await?;
        let db_time = t.elapsed();
        let mut n = 0;
        for chunk in optout.users.chunks(BATCH) {
            let ids = chunk.iter().map(|(id, c)| (*id, c.to_vec())).collect();
            send(txs, Batch::Ids(ids)).await?;
            n += chunk.len() as u64;
            pb.inc(chunk.len() as u64);
        }
        return Ok((n, db_time));
    }
    let sql = match e.table {
        // The consent filter for users, hosts and team members is the owner
        // map: one pass over the consent index for the whole run.
        Table::User => query::users(e.sort, None),
        Table::Host => query::hosts(e.sort),
        Table::Team => query::teams(e.sort, e.outputs.iter().any(|o| o.detail), None),
        Table::UserDeleted => query::USERS_DELETED.to_owned(),
        Table::HostDeleted => query::HOSTS_DELETED.to_owned(),
        Table::HostOptout => match ctx.consent {
            Some(_) => query::OPTOUT_HOSTS.to_owned(),
            None => return Ok((0, Duration::ZERO)),
        },
        Table::UserOptout => unreachable_table()?,
    };
    tracing::debug!("{what}: {sql}");
    let mut conn = connect(&ctx.settings).await?;
    let mut db_time = Duration::ZERO;
    let optout = if e.table == Table::HostOptout {
        let t = Instant::now();
        let o = ctx.optout().await?;
        db_time += t.elapsed();
        if o.ids.is_empty() {
            // Nobody withdrew: no need to scan the host table.
            let _ = conn.disconnect().await;
            return Ok((0, db_time));
        }
        Some(o)
    } else {
        None
    };
    let needs_owners = e.table == Table::Host
        || (ctx.consent.is_some()
            && (e.table == Table::User
                || (e.table == Table::Team && e.outputs.iter().any(|o| o.detail))));
    let owners = if needs_owners {
        let t = Instant::now();
        let o = ctx.owners.get_or_try_init(|| owner_map(ctx)).await?;
        db_time += t.elapsed();
        Some(o)
    } else {
        None
    };
    let id_rows = matches!(
        e.table,
        Table::UserDeleted | Table::HostDeleted | Table::HostOptout
    );
    let mut records = 0u64;
    let mut seen = 0u64;
    {
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
                    if !o.ids.contains(&query::int(&row, 2)) {
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
                }
                if let (Some(o), Some(_)) = (owners, ctx.consent) {
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
        pb.inc((rows.len() + ids.len()) as u64);
        if !rows.is_empty() {
            send(txs, Batch::Rows(rows)).await?;
        }
        if !ids.is_empty() {
            send(txs, Batch::Ids(ids)).await?;
        }
    }
    let _ = conn.disconnect().await;
    if e.table == Table::Host {
        let _ = ctx.hosts_seen.set(seen);
    }
    Ok((records, db_time))
}

/// The owner bitmap, on a connection of its own.
async fn owner_map(ctx: &Ctx) -> Result<Owners, DumpError> {
    let mut conn = connect(&ctx.settings).await?;
    let mut owners = Owners::default();
    {
        let mut result = conn
            .exec_iter(query::owners(ctx.consent), ())
            .await
            .map_err(db("host owners"))?;
        while let Some(row) = result.next().await.map_err(db("host owners"))? {
            ctx.check()?;
            if query::int(&row, 2) == 1 {
                owners.insert(query::int(&row, 0), query::int(&row, 1) != 0);
            }
            if query::int(&row, 3) == 1 {
                owners.nusers += 1;
                owners.total_credit += query::dbl(&row, 4);
            }
        }
    }
    let _ = conn.disconnect().await;
    Ok(owners)
}

fn unreachable_table() -> Result<String, DumpError> {
    Err(DumpError::Internal("user_optout has no query".into()))
}

/// Writer thread: formats records and feeds the compressor.
fn write_output(
    mut fs: FileSet,
    table: Table,
    fields: UserFields,
    mut rx: mpsc::Receiver<Arc<Batch>>,
    cancel: &AtomicBool,
    owners: &tokio::sync::OnceCell<Owners>,
) -> io::Result<(OutputStats, Duration)> {
    let detail = fs.detail();
    let mut in_team = false;
    let mut busy = Duration::ZERO;
    while let Some(batch) = rx.blocking_recv() {
        if cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("cancelled after another error"));
        }
        let t = Instant::now();
        match (&*batch, table) {
            (Batch::Rows(rows), Table::User) => {
                for r in rows {
                    fs.begin()?;
                    record::user(fs.buf(), &query::user_at(r, 0), fields);
                    fs.maybe_flush()?;
                }
            }
            (Batch::Rows(rows), Table::Host) => {
                let owners = owners
                    .get()
                    .ok_or_else(|| io::Error::other("host rows before the owner map"))?;
                for r in rows {
                    fs.begin()?;
                    let mut h = query::host(r);
                    h.owner_show_hosts = owners.show_hosts(h.userid);
                    record::host(fs.buf(), &h, detail);
                    fs.maybe_flush()?;
                }
            }
            (Batch::Rows(rows), Table::Team) => {
                for r in rows {
                    if query::team_row_is_member(r) {
                        if detail && in_team {
                            let u = query::user_at(r, query::TEAM_MEMBER_BASE);
                            record::user(fs.buf(), &u, fields);
                        }
                    } else {
                        if in_team {
                            record::team_end(fs.buf());
                        }
                        fs.begin()?;
                        record::team_start(fs.buf(), &query::team(r));
                        in_team = true;
                    }
                    fs.maybe_flush()?;
                }
            }
            (Batch::Ids(ids), Table::UserDeleted | Table::UserOptout) => {
                for (id, cpid) in ids {
                    fs.begin()?;
                    record::user_id_cpid(fs.buf(), *id, cpid);
                    fs.maybe_flush()?;
                }
            }
            (Batch::Ids(ids), Table::HostDeleted | Table::HostOptout) => {
                for (id, cpid) in ids {
                    fs.begin()?;
                    record::host_id_cpid(fs.buf(), *id, cpid);
                    fs.maybe_flush()?;
                }
            }
            _ => return Err(io::Error::other("batch does not match the table")),
        }
        busy += t.elapsed();
    }
    if in_team {
        record::team_end(fs.buf());
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(io::Error::other("cancelled after another error"));
    }
    let t = Instant::now();
    let stats = fs.finish()?;
    busy += t.elapsed();
    Ok((stats, busy))
}

#[cfg(test)]
mod tests {
    use super::{Owners, Tracker};

    #[test]
    fn owner_bitmap() {
        let mut o = Owners::default();
        o.insert(1, true);
        o.insert(64, false);
        o.insert(1000, true);
        assert_eq!(o.show_hosts(1), Some(true));
        assert_eq!(o.show_hosts(64), Some(false));
        assert_eq!(o.show_hosts(1000), Some(true));
        assert_eq!(o.show_hosts(2), None);
        assert!(!o.ok(-5) && !o.ok(0) && !o.ok(5000));
    }

    fn run(rows: &[(bool, i64)]) -> Option<i64> {
        let mut t = Tracker::default();
        for &(f, time) in rows {
            t.push(f, time);
        }
        t.withdrawn_at
    }

    #[test]
    fn withdrawal_time_is_first_refusal_after_last_consent() {
        assert_eq!(run(&[(true, 1), (false, 5), (false, 9)]), Some(5));
        assert_eq!(run(&[(false, 1)]), None, "never consented");
        assert_eq!(
            run(&[(true, 1), (false, 2), (true, 3)]),
            None,
            "consents again"
        );
        assert_eq!(run(&[(false, 1), (true, 2), (false, 7)]), Some(7));
        assert_eq!(run(&[]), None);
    }
}
