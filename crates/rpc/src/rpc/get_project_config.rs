//! get_project_config: the project's name, URLs, state and terms of use.
//! Answers from a reply pre-rendered into the state's `ProjectCache` by
//! the background refresh loops, so it keeps working while the database
//! is down.

use std::sync::Arc;

use boinc_db::models::CONSENT_ENROLL;
use boinc_db::queries;

use crate::error::RpcError;
use crate::reply::{self, ProjectConfigReply, Xml};
use crate::state::{AppState, DbFacts};
use crate::RpcRequest;

/// The reply as served: rendered by the cache on every refresh.
pub async fn handle(state: &AppState, _req: &RpcRequest) -> Result<Xml, RpcError> {
    Ok(render(state))
}

/// The whole reply (XML header included), rendered once per refresh: the
/// hot path only clones a reference-counted buffer.
pub fn bytes(state: &AppState) -> axum::body::Bytes {
    // The stop files are checked on every call (two stat()s), as
    // upstream does, so creating one shows at once.
    let flags = (state.config.web_stopped(), state.config.sched_stopped());
    match state.project.rendered() {
        Some((f, b)) if f == flags => b,
        _ => rerender(state),
    }
}

fn rerender(state: &AppState) -> axum::body::Bytes {
    let _serial = state.project.render_lock.lock();
    let flags = (state.config.web_stopped(), state.config.sched_stopped());
    let xml = render(state);
    let mut full = String::with_capacity(reply::XML_HEADER.len() + xml.0.len());
    full.push_str(reply::XML_HEADER);
    full.push_str(&xml.0);
    let bytes = axum::body::Bytes::from(full);
    state.project.set_rendered(flags, bytes.clone());
    bytes
}

/// Re-read the terms file and the database facts once.
pub async fn refresh(state: &AppState) {
    refresh_terms(state);
    refresh_db(state).await;
}

pub fn refresh_terms(state: &AppState) {
    state.project.set_terms(state.read_terms());
    rerender(state);
}

/// Database facts; on failure the cached copy stays.
pub async fn refresh_db(state: &AppState) {
    let fetch = async {
        let mut conn = state.pool.get_conn().await?;
        let enroll = queries::consent_type_by_name(&mut conn, CONSENT_ENROLL).await?;
        let platforms = queries::platforms(&mut conn).await?;
        Ok::<_, boinc_db::DbError>((enroll.is_some_and(|t| t.is_enabled()), platforms))
    };
    match tokio::time::timeout(state.options.db_timeout, fetch).await {
        Ok(Ok((enroll_enabled, platforms))) => {
            state.project.set_db(DbFacts {
                loaded: true,
                enroll_enabled,
                platforms: Arc::new(platforms),
            });
            rerender(state);
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "project facts not refreshed; serving cached copy")
        }
        Err(_) => tracing::debug!("project facts refresh timed out; serving cached copy"),
    }
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
