//! What the enumerations of one run share: the snapshot, the consent
//! filter, the owner map and optout lists (each built once, by whoever
//! needs it first, or by the scan that gathers it on its way), and the
//! cancel flag; and what an enumeration reports.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use boinc_db::schema::shape::HostDetails;

use crate::credit_by_app::SubProject;
use crate::error::DumpError;
use crate::id_bytes::IdBytes;
use crate::optout::{withdrawn_users, Optout};
use crate::output::OutputStats;
use crate::owners::{owner_map, Owners};
use crate::record::UserFields;
use crate::snapshot::Snapshot;
use crate::spec::Table;

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

/// (id, cpid) records: host_optout's hosts.
pub(crate) type IdRecords = IdBytes;

pub(crate) struct Ctx {
    /// Every read of the run goes through this one snapshot.
    pub(crate) snap: Snapshot,
    /// STATSEXPORT's id when that type exists and is enabled.
    pub(crate) consent: Option<i64>,
    pub(crate) fields: UserFields,
    /// What describes a host's GPUs, client and VirtualBox in this
    /// database's release (`boinc_db::schema::shape`).
    pub(crate) host_details: HostDetails,
    /// Computed by the first optout enumeration.
    pub(crate) optout: tokio::sync::OnceCell<Optout>,
    pub(crate) optout_since: i64,
    /// The spec writes user_optout or host_optout.
    pub(crate) optout_files: bool,
    pub(crate) output_dir: PathBuf,
    pub(crate) level: u32,
    /// Set on the first error: everyone stops, so the half-built dump can
    /// be removed with no writer still creating files in it.
    pub(crate) cancel: Arc<AtomicBool>,
    /// Built once by the first enumeration that needs it.
    pub(crate) owners: tokio::sync::OnceCell<Arc<Owners>>,
    /// The owner pass keeps team founders' names (a team file is written).
    pub(crate) team_founders: bool,
    /// A user file by id builds the owner map from its own scan (the user
    /// table is read once); the first to start claims the job, everyone
    /// else waits for `owners_ready`.
    pub(crate) owners_from_user_file: bool,
    pub(crate) owners_claimed: AtomicBool,
    pub(crate) owners_ready: tokio::sync::watch::Sender<Option<Arc<Owners>>>,
    /// host_optout's hosts come from a host enumeration's scan (the spec
    /// has both and the filter is on): the host table, the largest, is
    /// read once. The first host enumeration to start claims the job and
    /// publishes the list when its scan ends.
    pub(crate) optout_hosts_from_host_scan: bool,
    pub(crate) optout_hosts_claimed: AtomicBool,
    pub(crate) optout_hosts: tokio::sync::watch::Sender<Option<Arc<IdRecords>>>,
    /// Exportable hosts before the consent filter (= nhosts_total), seen
    /// by a host enumeration's scan.
    pub(crate) hosts_seen: std::sync::OnceLock<u64>,
    /// credit_by_app's grouping of apps (empty without credit_by_app).
    pub(crate) subprojects: Arc<Vec<SubProject>>,
}

impl Ctx {
    /// The owner map (built by the first caller, on a connection of its
    /// own: never call this while holding one, or a one-connection
    /// snapshot would wait for itself).
    pub(crate) async fn owners(&self) -> Result<Arc<Owners>, DumpError> {
        if self.owners_from_user_file {
            return self.wait_for(&self.owners_ready).await;
        }
        self.owners
            .get_or_try_init(|| async {
                owner_map(
                    &self.snap,
                    self.consent,
                    self.team_founders,
                    self.owner_optout_since(),
                    || self.check(),
                )
                .await
                .map(Arc::new)
            })
            .await
            .cloned()
    }

    /// The optout window's start for the owner pass, when an optout file
    /// is written under the filter (the pass then keeps the candidates).
    pub(crate) fn owner_optout_since(&self) -> Option<i64> {
        (self.consent.is_some() && self.optout_files).then_some(self.optout_since)
    }

    /// The optout lists (same rule as [`Ctx::owners`]): who withdrew, from
    /// the consent histories (a connection of its own, given back before
    /// waiting for the owner map), and who of them was exportable, with
    /// their cpid, from the owner pass.
    pub(crate) async fn optout(&self) -> Result<&Optout, DumpError> {
        self.optout
            .get_or_try_init(|| async {
                match self.consent {
                    Some(id) => {
                        let withdrawn = {
                            let mut conn = self.snap.lease().await?;
                            withdrawn_users(&mut conn, id, self.optout_since).await?
                        };
                        let owners = self.owners().await?;
                        Ok(Optout::new(&withdrawn, &owners))
                    }
                    None => Ok(Optout::default()),
                }
            })
            .await
    }

    /// host_optout's hosts, once the host scan that gathers them is done
    /// (an error anywhere cancels the wait).
    pub(crate) async fn optout_hosts(&self) -> Result<Arc<IdRecords>, DumpError> {
        self.wait_for(&self.optout_hosts).await
    }

    /// The owner map built by the user file's scan: kept for the totals
    /// and handed to everyone waiting.
    pub(crate) fn publish_owners(&self, owners: Owners) {
        let owners = Arc::new(owners);
        let _ = self.owners.set(owners.clone());
        self.owners_ready.send_replace(Some(owners));
    }

    /// Waits for another enumeration to publish a value; an error anywhere
    /// in the run ends the wait.
    async fn wait_for<T: Clone>(
        &self,
        tx: &tokio::sync::watch::Sender<Option<T>>,
    ) -> Result<T, DumpError> {
        let mut rx = tx.subscribe();
        loop {
            if let Some(list) = rx.borrow_and_update().clone() {
                return Ok(list);
            }
            self.check()?;
            let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
        }
    }

    pub(crate) fn check(&self) -> Result<(), DumpError> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(DumpError::Internal("cancelled after another error".into()))
        } else {
            Ok(())
        }
    }

    /// Stop everyone after an error, including tasks waiting for a
    /// connection.
    pub(crate) fn cancel_all(&self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.snap.close_leases();
    }
}
