//! lookup_account: an account's authenticator for its email and password
//! hash (or md5(authenticator . email)); without a hash, whether it exists.

use boinc_db::{password, queries};

use crate::error::RpcError;
use crate::reply::{self, Xml};
use crate::state::AppState;
use crate::RpcRequest;

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
    state.limiter.check(req.ip)?;
    let mut conn = state.conn().await?;
    // Exact after ASCII lower-casing: a collation-equal look-alike of an
    // address is no account (see `queries::same_email`).
    let user = queries::user_by_email(&mut conn, &la.email_addr).await?;
    drop(conn);
    let Some(user) = user else {
        state.limiter.record_failure(req.ip);
        return Err(RpcError::NotFound);
    };
    let Some(sent) = la.passwd_hash else {
        return Ok(reply::lookup_account_exists());
    };
    let auth_hash = password::md5_hex(&format!("{}{}", user.authenticator(), user.email_addr));
    let ok = super::verify_password(&sent, &user.passwd_hash).await?
        || password::constant_time_eq(auth_hash.as_bytes(), sent.as_bytes());
    if ok {
        Ok(reply::lookup_account(user.authenticator()))
    } else {
        state.limiter.record_failure(req.ip);
        Err(RpcError::BadPassword)
    }
}
