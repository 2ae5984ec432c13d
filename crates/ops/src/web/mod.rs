//! The ops page: the consent-type table with Enable/Disable and
//! PrivacyPref buttons, the add form, the "why can't I delete" note and the
//! audit history, the consent records report (users per consent state,
//! ENROLL per terms version), and the data-subject requests, rendered from
//! `html_ops/` templates.
//!
//! Security model: admin-only HTTP basic auth (user + bcrypt hash from
//! config.xml); the server refuses to start without them. Every POST needs
//! a CSRF token that is an HMAC of the session cookie and the user under a
//! key made at start-up, so a token from another session or an earlier run
//! is stale. Templates escape everything; responses carry strict headers.
//!
//! This file only wires the modules together; none of them imports from it.
//! From the bottom up: `error` (why the server refuses to start) and
//! `state` (what handlers share); `auth` (login, throttle, bcrypt pool),
//! `security` (headers, session cookie, CSRF, origin), `respond` (shared
//! responses), `posted` (the checked POST form); `numbers`, `plot`,
//! `chart`, `timeline` (drawing), `report` (the background report),
//! `fetch` (what a GET is); `pages/` (one module per page); `router`
//! (routes, layers, serving).

mod auth;
pub mod chart;
mod error;
mod fetch;
pub mod numbers;
mod pages;
mod plot;
mod posted;
pub mod report;
mod respond;
mod router;
mod security;
mod state;
mod timeline;

pub use auth::{bcrypt_peak, Credentials, BCRYPT_POOL, FAILURE_WINDOW, MAX_FAILURES};
pub use error::{ServeError, HASH_KEY, USER_KEY};
pub use router::{router, serve, serve_until, ServeOptions};
