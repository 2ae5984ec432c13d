//! am_set_info: account managers change profile fields and consent.
//!
//! Authenticates by account_key alone, so email and password changes are
//! refused unless the project opts in (`<am_set_info_allow_credentials/>`).

mod consent;
mod not_written;
mod profile;
mod request;
mod write;

use request::{applied, disabled_warning, enroll_withdrawal, unknown_warning};
pub use request::{AmSetInfo, ConsentChange};

use boinc_db::consent::group::{Flip, FlipOutcome};

use crate::error::RpcError;
use crate::flip_group::{FlipError, FlipGroups, Reply};
use crate::limits::Budget;
use crate::reply::Xml;
use crate::request::RpcRequest;
use crate::state::AppState;
use crate::validate;

/// A consent-only request: the same checks, then the change goes into the
/// next group commit. None: nothing was written and it goes alone (its
/// account is busy or unknown, or its group failed before committing).
async fn grouped(
    state: &AppState,
    groups: &FlipGroups,
    req: &RpcRequest,
    r: &AmSetInfo,
    c: &ConsentChange,
    failures: &Budget<'_>,
) -> Result<Option<Xml>, RpcError> {
    let charset = match state.known_charset() {
        Some(cs) => cs,
        None => state.charset(&mut state.conn().await?).await?,
    };
    validate::stored_in(charset, &r.stored_text())?;
    // An address past its failed-login budget is refused whether its key
    // is right or wrong (as alone: wrong keys are refused by the count).
    if failures.is_counted() {
        failures.admit(&mut state.conn().await?).await?;
    }
    let flip = Flip {
        account_key: r.account_key.clone(),
        type_name: c.name.clone(),
        flag: c.flag,
        not_required: c.not_required,
        source: c.source.clone(),
    };
    let outcome = match groups.submit(flip, req.guard.clone()).await {
        Ok(Reply::Done(o)) => o,
        Ok(Reply::Alone) => return Ok(None),
        Err(FlipError::OutcomeUnknown) => return Err(RpcError::OutcomeUnknown),
        // Never queued, or left out of its group after the deadline.
        Err(FlipError::Stopped) => return Err(RpcError::DbUnavailable),
    };
    match outcome {
        FlipOutcome::EnrollWithdrawal { .. } => Err(enroll_withdrawal()),
        FlipOutcome::TypeDisabled { userid, shortname } => Ok(Some(applied(
            state,
            "grouped",
            userid,
            Some(disabled_warning(&shortname)),
            false,
        ))),
        FlipOutcome::UnknownType { userid } => Ok(Some(applied(
            state,
            "grouped",
            userid,
            Some(unknown_warning(&c.name)),
            false,
        ))),
        FlipOutcome::Applied { userid, recorded } => {
            Ok(Some(applied(state, "grouped", userid, None, recorded)))
        }
        FlipOutcome::Busy => Ok(None),
    }
}

pub async fn handle(state: &AppState, req: &RpcRequest) -> Result<Xml, RpcError> {
    state.check_web_running()?;
    let r = AmSetInfo::parse(
        AmSetInfo::source(req),
        state.rules.profile.country,
        state.rules.profile.url,
    )?;
    // Unknown keys count as failed logins per address (key guessing).
    let failures = crate::limits::failed_logins(state, req.ip);
    failures.check_local()?;
    if let (Some(c), Some(groups)) = (r.consent_only(), state.flip_groups()) {
        if let Some(done) = grouped(state, groups, req, &r, c, &failures).await? {
            return Ok(done);
        }
    }
    write::alone(state, req, &r, &failures).await
}
