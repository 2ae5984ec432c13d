//! show_user (`show_user.php?userid=N&format=xml`, or `auth=KEY`): a
//! volunteer's public record, under the shared rule
//! (`boinc_db::exportable`): while STATSEXPORT is enabled, a user without
//! that consent and an erased account answer exactly as an unknown id
//! (-136, the same bytes). `auth=` is the owner asking: always shown, with
//! the account's venue and hosts, as upstream.

use boinc_db::{account::public_lookup, exportable};

use crate::error::RpcError;
use crate::reply::{self, Xml};
use crate::request::RpcRequest;
use crate::state::AppState;

/// Who is asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum ShowUser {
    /// `auth=KEY` (wins over `userid`, as upstream).
    Owner(String),
    Id(i64),
}

impl ShowUser {
    pub fn parse(p: &crate::Params) -> Result<Self, RpcError> {
        match p.nonempty("auth") {
            Some(auth) => Ok(ShowUser::Owner(auth.to_owned())),
            None => p.required_int("userid").map(ShowUser::Id),
        }
    }
}

pub async fn handle(state: &AppState, req: &RpcRequest) -> Result<Xml, RpcError> {
    state.check_web_running()?;
    let asked = ShowUser::parse(&req.params())?;
    let budget = crate::limits::lookups(state, req.ip);
    budget.check_local()?;
    let mut conn = state.conn().await?;
    budget.count(&mut conn).await?;
    let fields = state.rules.profile;
    match asked {
        ShowUser::Id(id) => {
            let filter = exportable::consent_filter(&mut conn).await?;
            let user = public_lookup::user_shown_by_id(&mut conn, id, filter)
                .await?
                .ok_or(RpcError::NotFound)?;
            Ok(reply::show_user(&user, None, fields))
        }
        ShowUser::Owner(auth) => {
            // A key is a password: unknown keys count as failed logins
            // (as am_get_info's), so this cannot be used to guess keys.
            let failures = crate::limits::failed_logins(state, req.ip);
            failures.check_local()?;
            let Some(user) = public_lookup::owner_by_authenticator(&mut conn, &auth).await? else {
                failures.count_failure(&mut conn).await?;
                return Err(RpcError::NotFound);
            };
            failures.admit(&mut conn).await?;
            let hosts = public_lookup::hosts_of(&mut conn, user.id).await?;
            Ok(reply::show_user(&user, Some(&hosts), fields))
        }
    }
}
