//! What the database reader hands to the writers, and how.

use std::sync::Arc;

use mysql_async::Row;
use tokio::sync::mpsc;

use crate::error::DumpError;

/// Rows per hand-over from the DB reader to the writers.
pub(crate) const BATCH: usize = 512;
/// Batches in flight per output: bounds memory whatever the table size.
pub(crate) const QUEUE: usize = 4;

/// What the reader hands to the writers.
pub(crate) enum Batch {
    Rows(Vec<Row>),
    /// (id, cpid) records: deleted and optout tables.
    Ids(Vec<(i64, Vec<u8>)>),
    /// (user or team id, its credit rows): user_work / team_work.
    Work(Vec<(i64, Vec<CreditRow>)>),
}

/// One credit_user / credit_team row.
#[derive(Debug, Clone, Copy)]
pub struct CreditRow {
    pub appid: i64,
    pub njobs: i64,
    pub total: f64,
    pub expavg: f64,
}

/// Hands one batch to every output of the enumeration (shared, not copied).
pub(crate) async fn send(txs: &[mpsc::Sender<Arc<Batch>>], b: Batch) -> Result<(), DumpError> {
    let b = Arc::new(b);
    for tx in txs {
        tx.send(b.clone())
            .await
            .map_err(|_| DumpError::Internal("an output writer stopped".into()))?;
    }
    Ok(())
}
