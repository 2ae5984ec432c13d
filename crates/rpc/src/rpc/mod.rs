//! One file per RPC: parse the parameters into a typed request, apply it,
//! render the reply through `crate::reply`.

pub mod am_get_info;
pub mod am_set_info;
pub mod create_account;
pub mod get_project_config;
pub mod lookup_account;

use crate::error::RpcError;

/// Run CPU-heavy password work (bcrypt) off the async reactor, on the
/// bounded hashing pool (`crate::hashing::HashPool`): a burst
/// queues there instead of growing tokio's blocking pool to hundreds of
/// threads that all fight the reactor for the same CPUs.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, RpcError> {
    crate::hashing::hash_pool().run(f).await
}

/// `password::hash_for_storage` on the hashing pool, errors as a reply.
pub(crate) async fn hash_password(sent: &str) -> Result<String, RpcError> {
    let sent = sent.to_owned();
    blocking(move || boinc_db::password::hash_for_storage(&sent))
        .await?
        .map_err(|e| {
            tracing::error!(error = %e, "bcrypt failed");
            RpcError::generic("internal error")
        })
}

/// `password::verify` on the hashing pool.
pub(crate) async fn verify_password(sent: &str, stored: &str) -> Result<bool, RpcError> {
    let (sent, stored) = (sent.to_owned(), stored.to_owned());
    blocking(move || boinc_db::password::verify(&sent, &stored)).await
}
