//! One file per RPC: parse the parameters into a typed request, apply it,
//! render the reply through `crate::reply`.

pub mod am_get_info;
pub mod am_set_info;
pub mod create_account;
pub mod get_project_config;
pub mod lookup_account;
pub mod show_user;
pub mod team_email_list;
pub mod team_lookup;

use boinc_db::password::HashError;

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
        .map_err(|e| match e {
            // Parameters never carry NUL (`Params`); should one get here,
            // it is still the client's input, not our failure.
            HashError::Nul => RpcError::generic("password hash contains a NUL byte"),
            other => {
                tracing::error!(error = %other, "bcrypt failed");
                RpcError::generic("internal error")
            }
        })
}

/// `password::verify_account` on the hashing pool: account `userid`'s
/// stored hash against what the client sent.
pub(crate) async fn verify_password(
    userid: i64,
    sent: &str,
    stored: &str,
) -> Result<bool, RpcError> {
    let (sent, stored) = (sent.to_owned(), stored.to_owned());
    blocking(move || boinc_db::password::verify_account(userid, &sent, &stored)).await
}
