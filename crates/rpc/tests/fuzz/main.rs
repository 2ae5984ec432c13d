//! Property tests at the RPCs over real HTTP, one module per strategy:
//!
//! * `every_rpc`: arbitrary parameter bytes at every RPC (also on a legacy
//!   latin1 database);
//! * `look_alikes`: consent-type names and emails that look or collate like
//!   a real one;
//! * `long_values`: stored parameters just over, and exactly at, their
//!   column's size;
//! * `forwarded_for`: repeated and malformed `X-Forwarded-For` lines.
//!
//! Here what they share: the number of cases (`RPC_FUZZ_CASES`), the
//! runtime, the runner's settings and a project with one consenting owner.

#[path = "../common/mod.rs"]
mod common;
#[path = "../robust/mod.rs"]
mod robust;

mod every_rpc;
mod forwarded_for;
mod long_values;
mod look_alikes;

use common::Harness;
use proptest::test_runner::{Config, TestRunner};

/// The runtime a property's requests run on (the test itself is a plain
/// `#[test]`: proptest's runner is synchronous).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The runner's settings: `RPC_FUZZ_CASES` cases, else `default_cases`; no
/// persisted failures; a bounded shrink. The seed is proptest's (random
/// unless `PROPTEST_RNG_SEED` names one).
fn config(default_cases: u32) -> Config {
    let cases: u32 = std::env::var("RPC_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    }
}

/// A runtime and a runner with [`config`].
fn runner(default_cases: u32) -> (tokio::runtime::Runtime, TestRunner) {
    (runtime(), TestRunner::new(config(default_cases)))
}

const OWNER: &str = "fuzz@example.com";

/// A project with ENROLL and STATSEXPORT enabled and one consenting
/// owner; (harness, owner's authenticator).
async fn owner_project(extra: &str) -> (Harness, String) {
    let h = Harness::consent_project(&format!(
        "<rpc_failed_logins_per_ip>1000000</rpc_failed_logins_per_ip>\
         <rpc_create_account_per_ip_per_hour>0</rpc_create_account_per_ip_per_hour>{extra}"
    ))
    .await;
    h.set_type_enabled("STATSEXPORT", true).await;
    let key = h
        .new_account(OWNER, "Owner", &[("consent_flag", "1"), ("source", "fuzz")])
        .await;
    (h, key)
}
