//! bcrypt cost 10 hashes per second on one core: ours
//! (`boinc_db::password`) beside PHP's `password_hash` and the `bcrypt`
//! crate (our previous implementation), in one invocation.
//!
//!     cargo bench -p boinc-db --bench password_hash [-- --secs 4 --rounds 3]
//!
//! Rounds interleave the candidates so each sees the same background load;
//! the table gives medians. "per CPU-second" divides by the thread's own CPU
//! time (PHP: the process's), so it stays meaningful when other work shares
//! the cores; "wall" is hashes per elapsed second on one thread.
//! Needs `php` (Debian: php-cli), as the tests do.

use std::process::Command;
use std::time::{Duration, Instant};

use boinc_db::password;

const INPUT: &str = "0123456789abcdef0123456789abcdef";

/// PHP side: hash for `$argv[1]` seconds, print "wall_rate cpu_rate".
const PHP: &str = r#"
$secs = (float)$argv[1];
$cpu = function () { $r = getrusage();
  return $r["ru_utime.tv_sec"] + $r["ru_utime.tv_usec"] / 1e6 + $r["ru_stime.tv_sec"] + $r["ru_stime.tv_usec"] / 1e6; };
$c0 = $cpu(); $t0 = microtime(true); $n = 0;
while (microtime(true) - $t0 < $secs) {
  $h = password_hash($argv[2], PASSWORD_BCRYPT, ["cost" => 10]);
  if (substr($h, 0, 7) !== '$2y$10$') { exit(1); }
  $n++;
}
printf("%f %f", $n / (microtime(true) - $t0), $n / ($cpu() - $c0));
"#;

struct Rate {
    wall: f64,
    cpu: f64,
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn measure(secs: f64, mut f: impl FnMut()) -> Rate {
    f(); // warm-up (page faults, lazy symbol binding)
    let (t0, c0) = (Instant::now(), thread_cpu());
    let mut n = 0u32;
    while t0.elapsed().as_secs_f64() < secs {
        f();
        n += 1;
    }
    Rate {
        wall: f64::from(n) / t0.elapsed().as_secs_f64(),
        cpu: f64::from(n) / (thread_cpu() - c0).as_secs_f64(),
    }
}

fn php(secs: f64) -> Rate {
    let out = Command::new("php")
        .args(["-r", PHP, &secs.to_string(), INPUT])
        .output()
        .expect("php (Debian package php-cli) must be installed for this bench");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<f64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    assert!(
        out.status.success() && v.len() == 2,
        "php bench failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Rate {
        wall: v[0],
        cpu: v[1],
    }
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn arg(args: &[String], name: &str, default: f64) -> f64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs = arg(&args, "--secs", 4.0);
    let rounds = arg(&args, "--rounds", 3.0).max(1.0) as usize;
    let stored = password::hash_for_storage(INPUT).expect("hash");
    assert!(password::verify(INPUT, &stored), "round trip");
    let php_version = Command::new("php")
        .args(["-r", "echo PHP_VERSION;"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    println!(
        "# password_hash bench: bcrypt cost {}, {} s per run, {rounds} rounds, {} cores, PHP {php_version}, load at start {}",
        password::BCRYPT_COST,
        secs,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        load()
    );

    let names = [
        "ours: password::hash_for_storage (libcrypt crypt_rn, $2y$10$)",
        "ours: password::verify ($2y$10$)",
        "PHP password_hash(PASSWORD_BCRYPT, cost 10)",
        "bcrypt crate 0.17 (previous implementation)",
    ];
    let mut runs: Vec<Vec<Rate>> = names.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        runs[0].push(measure(secs, || {
            password::hash_for_storage(INPUT).expect("hash");
        }));
        runs[1].push(measure(secs, || {
            assert!(password::verify(INPUT, &stored));
        }));
        runs[2].push(php(secs));
        runs[3].push(measure(secs, || {
            bcrypt::hash_with_result(INPUT, password::BCRYPT_COST).expect("bcrypt");
        }));
        eprintln!("round {round}/{rounds} done, load {}", load());
    }

    let php_cpu = median(runs[2].iter().map(|r| r.cpu).collect());
    let php_wall = median(runs[2].iter().map(|r| r.wall).collect());
    println!("| implementation | hashes/s, one thread (wall) | hashes per CPU-second | vs PHP (CPU) | runs (per CPU-second) |");
    println!("|---|---|---|---|---|");
    for (name, r) in names.iter().zip(&runs) {
        let wall = median(r.iter().map(|x| x.wall).collect());
        let cpu = median(r.iter().map(|x| x.cpu).collect());
        let each: Vec<String> = r.iter().map(|x| format!("{:.2}", x.cpu)).collect();
        println!(
            "| {name} | {wall:.2} ({:+.0}% vs PHP) | {cpu:.2} | {:+.1}% | {} |",
            (wall / php_wall - 1.0) * 100.0,
            (cpu / php_cpu - 1.0) * 100.0,
            each.join(", ")
        );
    }
    println!("(load at end {})", load());
}
