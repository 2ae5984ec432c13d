//! One file per RPC: parse the parameters into a typed request, apply it,
//! render the reply through `crate::reply`.

pub mod am_get_info;
pub mod am_set_info;
pub mod create_account;
pub mod get_project_config;
pub mod lookup_account;

use crate::error::RpcError;

/// Run CPU-heavy password work (bcrypt) off the async reactor, on the
/// bounded, lower-priority hashing pool (`crate::limits::HashPool`): a burst
/// queues there instead of growing tokio's blocking pool to hundreds of
/// threads that all fight the reactor for the same CPUs.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, RpcError> {
    crate::limits::hash_pool().run(f).await
}

/// Constant-time comparison for secrets derived from the request.
pub(crate) fn secret_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
