//! Generators and benchmarks; nothing here ships.
//!
//! * [`gen`] fills a database with realistic test data (`db_dump_gen`).
//! * [`rpc`] is boinc-rpc's load benchmark (`rpc_bench`).
//! * `ops_bench` (the admin paths at 1M users) is one file,
//!   `src/bin/ops_bench.rs`.

pub mod gen;
pub mod rpc;

/// The load average (1, 5, 15 min) as `/proc/loadavg` shows it.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
