//! lookup_account: an account's authenticator for its email and password
//! hash (or md5(authenticator . email)); without a hash, whether it exists.

use boinc_db::{password, queries};

use crate::error::RpcError;
use crate::reply::{self, Xml};
use crate::request::RpcRequest;
use crate::state::AppState;

pub struct LookupAccount {
    pub email_addr: String,
    pub passwd_hash: Option<String>,
}

impl LookupAccount {
    pub fn parse(p: &crate::Params) -> Result<Self, RpcError> {
        Ok(Self {
            email_addr: p.required("email_addr")?.to_owned(),
            passwd_hash: p.nonempty("passwd_hash").map(str::to_owned),
        })
    }
}

pub async fn handle(state: &AppState, req: &RpcRequest) -> Result<Xml, RpcError> {
    state.check_web_running()?;
    let la = LookupAccount::parse(&req.params())?;
    let failures = crate::limits::failed_logins(state, req.ip);
    failures.check_local()?;
    let mut conn = state.conn().await?;
    // Exact after ASCII lower-casing: a collation-equal look-alike of an
    // address is no account (see `queries::same_email`).
    let user = queries::user_by_email(&mut conn, &la.email_addr).await?;
    // The lookup is cheap: an unknown email is counted after it (one
    // atomic step; refused past the limit), a known one is answered only
    // while the address is under the limit, so the answers cannot be
    // used to test more addresses than the limit allows.
    let Some(user) = user else {
        failures.count_failure(&mut conn).await?;
        return Err(RpcError::NotFound);
    };
    let Some(sent) = la.passwd_hash else {
        failures.admit(&mut conn).await?;
        return Ok(reply::lookup_account_exists());
    };
    // The password check is not: a slot before the bcrypt work, so a
    // burst of guesses gets at most the limit's worth of answers (and of
    // CPU), whatever its timing.
    let slot = failures.reserve(&mut conn).await?;
    drop(conn);
    let auth_hash = password::md5_hex(&format!("{}{}", user.authenticator(), user.email_addr));
    let ok = super::verify_password(user.id, &sent, &user.passwd_hash).await?
        || password::constant_time_eq(auth_hash.as_bytes(), sent.as_bytes());
    if ok {
        slot.release(None).await;
        Ok(reply::lookup_account(user.authenticator()))
    } else {
        slot.keep();
        Err(RpcError::BadPassword)
    }
}
