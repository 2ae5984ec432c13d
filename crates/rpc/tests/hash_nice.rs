//! The hashing threads' nice level in the real binary: 0 by default,
//! `BOINC_RPC_HASH_NICE` overrides it (benchmarks compare the two).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use boinc_db::testing::{free_port, TestDb};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Nice levels of the `rpc-hash-*` threads of `pid`, once all `want` exist.
fn hash_thread_nices(pid: u32, want: usize) -> Vec<i64> {
    let start = Instant::now();
    loop {
        let mut nices = Vec::new();
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
            let dir = task.unwrap().path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if !comm.starts_with("rpc-hash-") {
                continue;
            }
            let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
            // Fields after "(comm)": state is field 3, nice field 19.
            let after = &stat[stat.rfind(')').unwrap() + 1..];
            let nice = after.split_whitespace().nth(16).unwrap();
            nices.push(nice.parse().unwrap());
        }
        // A thread reports its nice only after it has set it: wait until
        // every thread has left the default 0 or the deadline says it won't.
        if nices.len() == want
            && (nices.iter().all(|n| *n != 0) || start.elapsed() > Duration::from_secs(2))
        {
            return nices;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "hashing threads did not start: {nices:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start(config: &std::path::Path, nice: Option<&str>) -> Server {
    let port = free_port();
    let mut c = Command::new(env!("CARGO_BIN_EXE_boinc-rpc"));
    c.arg("--config")
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .env_remove("BOINC_RPC_HASH_NICE")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(n) = nice {
        c.env("BOINC_RPC_HASH_NICE", n);
    }
    Server(c.spawn().expect("start boinc-rpc"))
}

#[tokio::test]
async fn hashing_threads_run_at_nice_0_unless_overridden() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let config = db.write_project(dir.path(), "<rpc_hash_threads>2</rpc_hash_threads>", None);
    for (env, want) in [(None, 0), (Some("5"), 5), (Some("12"), 12), (Some("-3"), 0)] {
        let s = start(&config, env);
        let nices = hash_thread_nices(s.0.id(), 2);
        assert_eq!(nices, vec![want; 2], "BOINC_RPC_HASH_NICE={env:?}");
    }
}
