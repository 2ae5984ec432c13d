//! rpc_bench's parts (the binary is `src/bin/rpc_bench.rs`): the server
//! under test ([`server`]), wrk runs and the report's rows ([`wrk`]), the
//! wrk scenarios ([`scenario`]), the Rust probes ([`probe`]), MariaDB's
//! ceilings without HTTP ([`ceiling`]) and the mixed run with its checks
//! ([`mixed`]).

use std::path::PathBuf;

use boinc_db::testing::TestDb;

pub mod ceiling;
pub mod mixed;
pub mod probe;
pub mod scenario;
pub mod server;
pub mod wrk;

/// The wrk scripts: boinc-rpc's `bench/` folder.
pub fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../rpc/bench")
}

/// What the phases share: the bench database, the server under test and
/// the accounts seeded on it.
pub struct Bench<'a> {
    pub db: &'a TestDb,
    /// Seconds per wrk run.
    pub secs: u64,
    pub port: u16,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The seeded accounts' authenticators, and a file of them for wrk.
    pub keys: Vec<String>,
    pub keys_file: PathBuf,
    /// [`scripts_dir`].
    pub scripts: PathBuf,
    /// Makes this run's new emails unique.
    pub nonce: String,
}

impl Bench<'_> {
    pub fn gpc_url(&self) -> String {
        format!("{}/get_project_config.php", self.base)
    }
}
