//! am_get_info: an account's profile for account managers.

use boinc_db::{password, queries};

use crate::error::RpcError;
use crate::reply::{self, AmGetInfo, Xml};
use crate::request::RpcRequest;
use crate::state::AppState;

pub async fn handle(state: &AppState, req: &RpcRequest) -> Result<Xml, RpcError> {
    state.check_web_running()?;
    let params = req.params();
    let key = params.required("account_key")?;
    // Unknown keys count as failed logins per address (key guessing).
    let failures = crate::limits::failed_logins(state, req.ip);
    failures.check_local()?;
    let mut conn = state.conn().await?;
    let Some(user) = queries::user_by_authenticator(&mut conn, key).await? else {
        failures.count_failure(&mut conn).await?;
        return Err(RpcError::NotFound);
    };
    failures.admit(&mut conn).await?;
    let team_founder = if user.teamid != 0 {
        queries::team_by_id(&mut conn, user.teamid)
            .await?
            .is_some_and(|t| t.userid == user.id)
    } else {
        false
    };
    // BOINC's weak authenticator: id _ md5(authenticator . passwd_hash).
    let weak_auth = format!(
        "{}_{}",
        user.id,
        password::md5_hex(&format!("{}{}", user.authenticator(), user.passwd_hash))
    );
    let cpid = user.cpid();
    Ok(reply::am_get_info(&AmGetInfo {
        user: &user,
        weak_auth,
        cpid,
        team_founder,
    }))
}
