//! The bounded pool that runs password hashing (bcrypt) off the async
//! reactor: a fixed set of threads behind a semaphore, so a
//! sign-up flood queues here instead of taking every core from the cheap
//! RPCs. Interface: `init_hash_pool` once at start-up, then
//! `hash_pool().run(closure)`.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::error::RpcError;

type Job = Box<dyn FnOnce() + Send>;

static HASH_POOL: std::sync::OnceLock<HashPool> = std::sync::OnceLock::new();

/// Size the process's hashing pool (`rpc_hash_threads`, default: one
/// thread per core). The first call wins; later ones change nothing.
pub fn init_hash_pool(threads: Option<usize>) {
    HASH_POOL.get_or_init(|| {
        HashPool::new(threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }))
    });
}

/// The process's hashing pool.
pub fn hash_pool() -> &'static HashPool {
    init_hash_pool(None);
    HASH_POOL.get_or_init(|| HashPool::new(1))
}

/// A fixed set of threads for bcrypt. At most `threads`
/// hashes run at once (waiting is async and cancellable), so a flood of
/// sign-ups cannot take every core from the reactor serving the cheap RPCs.
pub struct HashPool {
    permits: Arc<Semaphore>,
    tx: Mutex<mpsc::Sender<Job>>,
}

impl HashPool {
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("rpc-hash-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // pool dropped
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a hashing thread");
            }
        }
        Self {
            permits: Arc::new(Semaphore::new(threads)),
            tx: Mutex::new(tx),
        }
    }

    /// Run `f` on a hashing thread once one is free.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, RpcError> {
        let internal = || RpcError::generic("internal error");
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| internal())?;
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            drop(permit);
            let _ = done.send(r);
        });
        self.tx
            .lock()
            .map_err(|_| internal())?
            .send(job)
            .map_err(|_| internal())?;
        match result.await {
            Ok(Ok(v)) => Ok(v),
            _ => {
                tracing::error!("password hashing task failed");
                Err(internal())
            }
        }
    }
}

/// Niceness of the hashing threads. 0, as PHP's workers run: measured at
/// nice 5 they yielded to every other process on the host (a BOINC server
/// always runs some), halving sign-ups against upstream's, while
/// get_project_config's p99 during a flood was no better than at 0; the
/// bounded pool is what keeps hashing from taking the reactor's CPU.
/// `HASH_NICE_ENV` lowers their priority on hosts that want that.
pub const HASH_NICE: i32 = 0;

/// Environment variable overriding `HASH_NICE` (0..=19), read once when the
/// pool starts; for measuring what the nice level costs (benchmarks).
pub const HASH_NICE_ENV: &str = "BOINC_RPC_HASH_NICE";

/// The nice level the hashing threads use: `HASH_NICE_ENV` if it holds a
/// number in 0..=19 (no privilege needed to go there), else `HASH_NICE`.
fn hash_nice() -> i32 {
    static NICE: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    *NICE.get_or_init(|| {
        let Ok(v) = std::env::var(HASH_NICE_ENV) else {
            return HASH_NICE;
        };
        match parse_nice(&v) {
            Some(n) => n,
            None => {
                tracing::warn!(value = %v, "{HASH_NICE_ENV} must be 0..=19; using {HASH_NICE}");
                HASH_NICE
            }
        }
    })
}

fn parse_nice(v: &str) -> Option<i32> {
    v.trim()
        .parse::<i32>()
        .ok()
        .filter(|n| (0..=19).contains(n))
}

/// Nice the calling thread (Linux: per thread) so the reactor wins ties.
fn lower_priority() {
    let nice = hash_nice();
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on the calling thread; no memory is shared.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid, nice as libc::c_int);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_pool_runs_jobs_and_survives_panics() {
        let p = HashPool::new(2);
        assert_eq!(p.run(|| 21 * 2).await.unwrap(), 42);
        assert!(p.run(|| -> i32 { panic!("boom") }).await.is_err());
        assert_eq!(p.run(|| 1).await.unwrap(), 1);
    }

    #[test]
    fn nice_override_accepts_only_0_to_19() {
        assert_eq!(parse_nice("0"), Some(0));
        assert_eq!(parse_nice(" 19 "), Some(19));
        for bad in ["-1", "20", "", "five", "5.0"] {
            assert_eq!(parse_nice(bad), None, "{bad:?}");
        }
    }
}
