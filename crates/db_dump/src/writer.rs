//! Writer thread: turns batches of rows into records and feeds the
//! compressor of one output.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boinc_db::schema::shape::HostDetails;
use tokio::sync::mpsc;

use crate::batch::Batch;
use crate::credit_by_app::SubProject;
use crate::output::{FileSet, OutputStats};
use crate::owners::Owners;
use crate::query;
use crate::record::{self, UserFields};
use crate::spec::Table;

/// What a writer needs to know about people beyond the rows.
#[derive(Clone)]
pub(crate) struct People {
    pub fields: UserFields,
    pub host_details: HostDetails,
    /// The owner map, when the table needs it.
    pub owners: Option<Arc<Owners>>,
    /// The consent filter is on.
    pub filter: bool,
    /// credit_by_app's grouping of apps.
    pub subprojects: Arc<Vec<SubProject>>,
}

impl People {
    fn owners(&self) -> io::Result<&Owners> {
        self.owners
            .as_deref()
            .ok_or_else(|| io::Error::other("rows before the owner map"))
    }
}

/// Writer thread: formats records and feeds the compressor.
pub(crate) fn write_output(
    mut fs: FileSet,
    table: Table,
    people: People,
    mut rx: mpsc::Receiver<Arc<Batch>>,
    cancel: &AtomicBool,
) -> io::Result<(OutputStats, Duration)> {
    let fields = people.fields;
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
                let owners = people.owners()?;
                for r in rows {
                    fs.begin()?;
                    let mut h = query::host(r, people.host_details);
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
                        let mut t = query::team(r);
                        let o = people.owners()?;
                        t.founder_name = t.userid.and_then(|u| o.founder_name(u));
                        // A founder who would not be exported stays
                        // unnamed, as in the member listings and the
                        // public lookups (one rule: boinc_db::exportable).
                        if people.filter {
                            let shown = t.userid.is_some_and(|u| o.ok(u));
                            if !boinc_db::exportable::founder_shown(true, shown) {
                                t.userid = None;
                                t.founder_name = None;
                            }
                        }
                        record::team_start(fs.buf(), &t);
                        in_team = true;
                    }
                    fs.maybe_flush()?;
                }
            }
            (Batch::Rows(rows), Table::BadgeUser | Table::BadgeTeam) => {
                for r in rows {
                    fs.begin()?;
                    record::badge_holder(
                        fs.buf(),
                        table == Table::BadgeTeam,
                        query::int(r, 0),
                        query::int(r, 1),
                        query::dbl(r, 2),
                    );
                    fs.maybe_flush()?;
                }
            }
            (Batch::Work(items), Table::UserWork | Table::TeamWork) => {
                let mut sums: Vec<record::SubprojectCredit> = people
                    .subprojects
                    .iter()
                    .map(|sp| record::SubprojectCredit {
                        name: &sp.name,
                        njobs: 0,
                        total: 0.0,
                        expavg: 0.0,
                    })
                    .collect();
                for (id, rows) in items {
                    for (sum, sp) in sums.iter_mut().zip(people.subprojects.iter()) {
                        sum.njobs = 0;
                        sum.total = 0.0;
                        sum.expavg = 0.0;
                        for r in rows.iter().filter(|r| sp.appids.contains(&r.appid)) {
                            sum.njobs += r.njobs;
                            sum.total += r.total;
                            sum.expavg += r.expavg;
                        }
                    }
                    fs.begin()?;
                    record::work(fs.buf(), table == Table::TeamWork, *id, &sums);
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
