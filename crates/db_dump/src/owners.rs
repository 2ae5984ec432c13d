//! The owner map: one pass over the users gives, per user id, whether
//! the user may own exported hosts (exists and, with the consent filter,
//! consents), shows hosts, and would be in the user file; plus tables.xml's
//! user totals. Users, hosts, team members and founders are filtered
//! against it without per-row queries.
//!
//! The same pass keeps the names of team founders (read from the team
//! table first), so the team file names them without a lookup into user
//! per team (at 10M users, with the data beyond memory, those random reads
//! took minutes).
//!
//! Compressed bitmaps (roaring): dense ids cost about a bit each, sparse
//! ones a few bytes each, so memory follows the number of users, not the
//! highest id (one user with id 2,000,000,000 costs bytes, not 500 MB).

use mysql_async::prelude::*;
use mysql_async::Conn;
use roaring::RoaringTreemap;

use crate::error::{db, DumpError};
use crate::id_bytes::IdBytes;
use crate::query;
use crate::snapshot::Snapshot;

#[derive(Default)]
pub struct Owners {
    ok: RoaringTreemap,
    show: RoaringTreemap,
    exported: RoaringTreemap,
    /// Names of the users who found a team with credit (whoever they
    /// are: the writer applies the rule).
    founders: IdBytes,
    /// Exportable users whose latest STATSEXPORT row is a refusal made
    /// since the optout window opened, by id, with their cpid and
    /// show_hosts: a superset of the optout list (see `optout`).
    optout_candidates: std::sync::Mutex<Vec<(i64, [u8; 32], bool)>>,
    /// tables.xml's user totals, from the same pass.
    pub nusers: u64,
    pub total_credit: f64,
}

fn key(id: i64) -> Option<u64> {
    u64::try_from(id).ok().filter(|&i| i > 0)
}

impl Owners {
    /// A user who may own exported hosts (ids arrive in ascending order,
    /// which roaring appends cheaply; any order works).
    pub fn insert(&mut self, id: i64, show_hosts: bool) {
        if let Some(k) = key(id) {
            self.ok.insert(k);
            if show_hosts {
                self.show.insert(k);
            }
        }
    }

    /// A user the user file lists (exportable and, with the filter, consenting).
    pub fn insert_exported(&mut self, id: i64) {
        if let Some(k) = key(id) {
            self.exported.insert(k);
        }
    }

    pub fn ok(&self, id: i64) -> bool {
        key(id).is_some_and(|k| self.ok.contains(k))
    }

    pub fn exported(&self, id: i64) -> bool {
        key(id).is_some_and(|k| self.exported.contains(k))
    }

    /// Exported users in id order.
    pub fn exported_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.exported.iter().map(|k| k as i64)
    }

    /// The exportable users who may have withdrawn recently (id, cpid,
    /// show_hosts), by id; the first caller takes them.
    pub(crate) fn take_optout_candidates(&self) -> Vec<(i64, [u8; 32], bool)> {
        std::mem::take(
            &mut *self
                .optout_candidates
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        )
    }

    /// The name of user `id` if they found a team with credit and exist.
    pub fn founder_name(&self, id: i64) -> Option<&[u8]> {
        key(id)?;
        self.founders.get(id)
    }

    /// None: no such owner (upstream then leaves out userid).
    pub fn show_hosts(&self, id: i64) -> Option<bool> {
        self.ok(id)
            .then(|| key(id).is_some_and(|k| self.show.contains(k)))
    }

    /// Bytes the three bitmaps take when serialized: a close measure of
    /// their size in memory.
    pub fn size_bytes(&self) -> u64 {
        (self.ok.serialized_size() + self.show.serialized_size() + self.exported.serialized_size())
            as u64
    }
}

/// Builds the owner map from one pass over the users in id order: the
/// owner query's, or the user file's own scan (see `enumerate`).
pub(crate) struct OwnerPass {
    owners: Owners,
    founders: RoaringTreemap,
    /// The optout window's start (None: no optout file or no filter).
    optout_since: Option<i64>,
    started: std::time::Instant,
}

/// One user as the pass sees it.
pub(crate) struct OwnerRow<'a> {
    pub id: i64,
    pub show_hosts: bool,
    /// May be shown (`boinc_db::exportable::shown`).
    pub ok: bool,
    /// Would be in the user file without the consent filter.
    pub exportable: bool,
    pub total_credit: f64,
    pub name: &'a [u8],
    pub cross_project_id: &'a [u8],
    pub email_addr: &'a [u8],
    /// Time of the latest STATSEXPORT row (None: none, or no filter).
    pub latest_consent: Option<i64>,
}

impl OwnerPass {
    /// Reads the team founders first when the team file needs their names.
    pub(crate) async fn start(
        team_founders: bool,
        optout_since: Option<i64>,
        conn: &mut Conn,
    ) -> Result<Self, DumpError> {
        let mut founders = RoaringTreemap::new();
        if team_founders {
            let ids: Vec<i64> = conn
                .query(query::TEAM_FOUNDERS)
                .await
                .map_err(db("team founders"))?;
            founders.extend(ids.into_iter().filter_map(key));
        }
        Ok(Self {
            owners: Owners::default(),
            founders,
            optout_since,
            started: std::time::Instant::now(),
        })
    }

    pub(crate) fn add(&mut self, r: OwnerRow<'_>) {
        let owners = &mut self.owners;
        if let Some(k) = key(r.id).filter(|k| self.founders.contains(*k)) {
            owners.founders.push(k as i64, r.name);
        }
        if r.ok {
            owners.insert(r.id, r.show_hosts);
        }
        let recent_refusal = !r.ok
            && self
                .optout_since
                .zip(r.latest_consent)
                .is_some_and(|(since, t)| t >= since);
        if r.exportable && recent_refusal {
            let cpid = boinc_db::models::cpid_hex(r.cross_project_id, r.email_addr);
            owners
                .optout_candidates
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .push((r.id, cpid, r.show_hosts));
        }
        if r.exportable {
            owners.nusers += 1;
            owners.total_credit += r.total_credit;
            if r.ok {
                owners.insert_exported(r.id);
            }
        }
    }

    pub(crate) fn finish(self) -> Owners {
        tracing::info!(
            "owner map: {} exportable users in {:.1}s, {} KiB",
            self.owners.nusers,
            self.started.elapsed().as_secs_f64(),
            self.owners.size_bytes() / 1024
        );
        let mut owners = self.owners;
        // Ids arrive in order from both scans; sorted to be sure.
        let candidates = owners
            .optout_candidates
            .get_mut()
            .unwrap_or_else(|p| p.into_inner());
        candidates.sort_unstable_by_key(|c| c.0);
        candidates.shrink_to_fit();
        owners.founders.sort();
        owners
    }
}

/// The owner map by its own pass, on a connection of the dump's snapshot
/// (`consent`: the filter's type id; `check` stops the pass when the run
/// is cancelled).
pub(crate) async fn owner_map(
    snap: &Snapshot,
    consent: Option<i64>,
    team_founders: bool,
    optout_since: Option<i64>,
    check: impl Fn() -> Result<(), DumpError>,
) -> Result<Owners, DumpError> {
    let mut conn = snap.lease().await?;
    let mut pass = OwnerPass::start(team_founders, optout_since, &mut conn).await?;
    let mut result = conn
        .exec_iter(query::owners(consent), ())
        .await
        .map_err(db("host owners"))?;
    while let Some(row) = result.next().await.map_err(db("host owners"))? {
        check()?;
        pass.add(OwnerRow {
            id: query::int(&row, 0),
            show_hosts: query::int(&row, 1) != 0,
            ok: query::int(&row, 2) == 1,
            exportable: query::int(&row, 3) == 1,
            total_credit: query::dbl(&row, 4),
            name: query::bytes(&row, 5),
            cross_project_id: query::bytes(&row, 6),
            email_addr: query::bytes(&row, 7),
            latest_consent: query::opt_int(&row, 8),
        });
    }
    Ok(pass.finish())
}

#[cfg(test)]
mod tests {
    use super::Owners;

    #[test]
    fn owner_map_lookups() {
        let mut o = Owners::default();
        o.insert(1, true);
        o.insert(64, false);
        o.insert(1000, true);
        o.insert_exported(1000);
        assert_eq!(o.show_hosts(1), Some(true));
        assert_eq!(o.show_hosts(64), Some(false));
        assert_eq!(o.show_hosts(1000), Some(true));
        assert_eq!(o.show_hosts(2), None);
        assert!(!o.ok(-5) && !o.ok(0) && !o.ok(5000));
        assert!(o.exported(1000) && !o.exported(1));
        assert_eq!(o.exported_ids().collect::<Vec<_>>(), vec![1000]);
    }

    /// Memory follows the number of users, not the highest id (a dense
    /// bitmap indexed by id took 496 MB for one user with id 2e9).
    #[test]
    fn huge_ids_cost_nothing_extra() {
        let mut o = Owners::default();
        for id in [1, 2, 3, 2_000_000_000, i32::MAX as i64, i64::MAX] {
            o.insert(id, true);
            o.insert_exported(id);
        }
        assert!(o.ok(2_000_000_000) && o.ok(i64::MAX) && !o.ok(1_999_999_999));
        assert_eq!(o.show_hosts(i32::MAX as i64), Some(true));
        assert!(o.size_bytes() < 1024, "{} bytes", o.size_bytes());
        // A dense project: a million consecutive ids stay at ~2 bits each
        // per bitmap (roaring's bitmap containers: 8 KiB per 65,536 ids).
        let mut d = Owners::default();
        for id in 1..=1_000_000 {
            d.insert(id, id % 3 != 0);
            d.insert_exported(id);
        }
        assert!(d.size_bytes() < 3 * 140_000, "{} bytes", d.size_bytes());
    }
}
