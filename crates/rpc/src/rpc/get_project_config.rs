//! get_project_config: the project's name, URLs, state, terms of use and
//! the other facts upstream sends, from the same sources. Answers from a
//! reply pre-rendered into the state's `ProjectCache` by the background
//! refresh loops (files and database), so file edits show within 2 s and
//! it keeps working while the database is down.

use std::sync::Arc;

use base64::Engine as _;

use boinc_db::models::CONSENT_ENROLL;
use boinc_db::queries;

use crate::error::RpcError;
use crate::reply::{self, ProjectConfigReply, Xml};
use crate::request::RpcRequest;
use crate::state::{AppState, DbFacts, ProjectFiles};

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

/// The server release whose web RPCs ours answer like (upstream's
/// html/inc/server_version.inc of that release).
pub const SERVER_VERSION: &str = "1.6.2";

/// Re-read the project's files and the database facts once.
pub async fn refresh(state: &AppState) {
    refresh_files(state);
    refresh_db(state).await;
}

pub fn refresh_files(state: &AppState) {
    state.project.set_files(read_files(&state.config));
    rerender(state);
}

/// PHP's truthiness of a string: "" and "0" are false.
fn php_true(s: &str) -> bool {
    !s.is_empty() && s != "0"
}

/// The files upstream's get_project_config.php reads on every call; a
/// missing or unreadable file is simply left out, as there.
pub fn read_files(cfg: &boinc_db::ProjectConfig) -> ProjectFiles {
    let local_revision = std::fs::read(cfg.local_revision_path())
        .ok()
        .map(|b| boinc_db::consent::terms::php_trim(&String::from_utf8_lossy(&b)).to_owned())
        .filter(|s| php_true(s));
    let keywords = std::fs::read(cfg.project_keywords_path())
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let ownership_key = cfg
        .account_ownership_public_key_path()
        .and_then(|p| std::fs::read(p).ok())
        .map(|b| base64::engine::general_purpose::STANDARD.encode(b));
    ProjectFiles {
        terms: boinc_db::consent::terms::read_terms_file(&cfg.terms_of_use_path()).map(Arc::from),
        local_revision,
        keywords,
        ownership_key,
    }
}

/// Database facts; on failure the cached copy stays.
pub async fn refresh_db(state: &AppState) {
    let fetch = async {
        let mut conn = state.pool.get_conn().await?;
        // Learn the session's character set here, so no request pays for it.
        if let Err(e) = state.charset(&mut conn).await {
            tracing::debug!(error = %e, "session character set not read");
        }
        warn_if_converted(state, &mut conn).await;
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
    let files = state.project.files();
    // The consent design's rule (shared with create_account): terms only
    // while ENROLL is enabled and the file holds text.
    let terms = boinc_db::consent::terms::offered_terms(files.terms.clone(), facts.enroll_enabled);
    reply::project_config(&ProjectConfigReply {
        long_name: cfg.long_name(),
        master_url: cfg.master_url(),
        web_rpc_url_base: &cfg.web_rpc_url_base(),
        server_version: SERVER_VERSION,
        local_revision: files.local_revision.as_deref(),
        account_manager: state.rules.account_manager,
        web_stopped: cfg.web_stopped(),
        // As upstream: invite-only projects say both.
        account_creation_disabled: state.rules.account_creation_disabled
            || state.limits.invite_code.is_some(),
        client_account_creation_disabled: state.rules.account_creation_rpc_disabled,
        invite_code_required: state.limits.invite_code.is_some(),
        min_passwd_length: cfg.min_passwd_length(),
        sched_stopped: cfg.sched_stopped(),
        platforms: &facts.platforms,
        min_client_version: state
            .rules
            .min_core_client_version
            .as_deref()
            .filter(|v| php_true(v)),
        terms_of_use: terms.as_deref(),
        // upstream: LDAP_HOST in project.inc.
        ldap_auth: state.rules.ldap_auth,
        keywords: files.keywords.as_deref(),
        account_ownership_public_key: files.ownership_key.as_deref(),
    })
}

/// A latin1 database converted to utf8mb4 while we run (`boinc-ops db
/// convert-utf8mb4`): pooled sessions still talk latin1, so text they
/// write would be converted twice. Said loudly, once: a restart is needed.
async fn warn_if_converted(state: &AppState, conn: &mut mysql_async::Conn) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static WARNED: AtomicBool = AtomicBool::new(false);
    if state.known_charset() != Some(boinc_db::text::charset::Charset::Latin1)
        || WARNED.load(Ordering::Relaxed)
    {
        return;
    }
    if let Ok(boinc_db::text::charset::Charset::Utf8mb4) =
        boinc_db::text::charset::wanted(conn).await
    {
        WARNED.store(true, Ordering::Relaxed);
        tracing::error!(
            "the database's tables are utf8mb4 now (converted while boinc-rpc runs), but this \
             process's connections talk latin1: RESTART boinc-rpc (bin/stop, bin/start) before \
             accounts are created or renamed"
        );
    }
}
