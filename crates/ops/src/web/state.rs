//! What every handler of one server shares. Imports nothing from the
//! handlers, the security checks or the router that use it.

use std::sync::Arc;

use super::report::ReportCache;
use crate::ops::ConsentOps;

pub(super) struct AppState {
    pub(super) ops: ConsentOps,
    pub(super) read_only: bool,
    /// Per-run key: CSRF tokens from an earlier run are stale.
    pub(super) csrf_key: [u8; 32],
    /// The consent report scans every consent row (seconds on a big
    /// project): computed in the background, one at a time.
    pub(super) report: Arc<ReportCache>,
}

pub(super) type Shared = Arc<AppState>;
