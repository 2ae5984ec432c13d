//! get_project_config: the project's name, URLs, state and terms of use.
//! Answers from the background-refreshed cache, so it keeps working while
//! the database is down.

use crate::error::RpcError;
use crate::reply::{self, ProjectConfigReply, Xml};
use crate::state::AppState;
use crate::RpcRequest;

/// The reply as served: rendered by the cache on every refresh.
pub async fn handle(state: &AppState, _req: &RpcRequest) -> Result<Xml, RpcError> {
    Ok(render(state))
}

/// Render from the cached facts (never touches the database).
pub fn render(state: &AppState) -> Xml {
    let cfg = &state.config;
    let facts = state.project.db();
    // The consent design's rule (shared with create_account): terms only
    // while ENROLL is enabled and the file holds text.
    let terms = boinc_db::terms::offered_terms(state.project.terms(), facts.enroll_enabled);
    let mut base = cfg.master_url().to_owned();
    if !base.is_empty() && !base.ends_with('/') {
        base.push('/');
    }
    reply::project_config(&ProjectConfigReply {
        long_name: cfg.long_name(),
        master_url: cfg.master_url(),
        web_rpc_url_base: &base,
        account_manager: cfg.bool("account_manager"),
        web_stopped: cfg.web_stopped(),
        // As upstream: invite-only projects say both.
        account_creation_disabled: cfg.bool("disable_account_creation")
            || state.limits.invite_code.is_some(),
        invite_code_required: state.limits.invite_code.is_some(),
        min_passwd_length: cfg.min_passwd_length(),
        sched_stopped: cfg.sched_stopped(),
        platforms: &facts.platforms,
        terms_of_use: terms.as_deref(),
    })
}
