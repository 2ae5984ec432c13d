//! Slow, idle and numerous clients: the header-read timeout, the idle
//! keep-alive timeout, the connection cap with shedding of the longest-idle
//! connections, and the real binary under a low descriptor limit.

mod common;

use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::process::Command;
use std::time::{Duration, Instant};

use boinc_db::testing::{free_port, TestDb};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GPC: &[u8] = b"GET /get_project_config.php HTTP/1.1\r\nHost: x\r\n\r\n";

/// Wait until the server closes `s` (EOF or reset); how long it took.
/// Whatever the server sends before closing is read and ignored.
async fn closed_within(s: &mut TcpStream, max: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(max.saturating_sub(t.elapsed()), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// One request/response on a kept-alive connection; the status code.
async fn request(s: &mut TcpStream, req: &[u8]) -> u16 {
    s.write_all(req).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("reply within 10 s")
            .unwrap();
        assert!(n > 0, "closed before the reply was complete");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                return head.split(' ').nth(1).unwrap().parse().unwrap();
            }
        }
    }
}

fn quick(extra: &str) -> String {
    format!("{extra}<rpc_request_timeout>3</rpc_request_timeout>")
}

#[tokio::test]
async fn silent_and_trickling_clients_are_cut_off_at_the_header_timeout() {
    let h = Harness::new(
        &quick("<rpc_header_read_timeout>1</rpc_header_read_timeout><rpc_idle_timeout>30</rpc_idle_timeout>"),
        None,
    )
    .await;
    // Connects and sends nothing.
    let mut silent = TcpStream::connect(h.server.addr).await.unwrap();
    // Sends a header byte every 200 ms, forever.
    let trickle_addr = h.server.addr;
    let trickler = tokio::spawn(async move {
        let mut s = TcpStream::connect(trickle_addr).await.unwrap();
        s.write_all(b"GET /get_project_config.php HTTP/1.1\r\n")
            .await
            .unwrap();
        let t = Instant::now();
        loop {
            if s.write_all(b"X").await.is_err() {
                return t.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut probe = [0u8; 64];
            if let Ok(Ok(0) | Err(_)) =
                tokio::time::timeout(Duration::from_millis(1), s.read(&mut probe)).await
            {
                return t.elapsed();
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "trickler never cut off"
            );
        }
    });
    let took = closed_within(&mut silent, Duration::from_secs(10))
        .await
        .expect("silent connection closed");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let took = trickler.await.unwrap();
    assert!(took < Duration::from_secs(3), "{took:?}");
    // A normal client is served meanwhile and afterwards.
    assert!(h
        .get("get_project_config.php")
        .await
        .contains("<project_config>"));
}

#[tokio::test]
async fn idle_keep_alive_connections_close_after_the_idle_timeout() {
    let h = Harness::new(
        &quick("<rpc_header_read_timeout>5</rpc_header_read_timeout><rpc_idle_timeout>1</rpc_idle_timeout>"),
        None,
    )
    .await;
    // A connection in use stays open across many idle timeouts...
    let mut busy = TcpStream::connect(h.server.addr).await.unwrap();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3) {
        assert_eq!(request(&mut busy, GPC).await, 200);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // ...and closes once it sits idle for longer.
    let took = closed_within(&mut busy, Duration::from_secs(10))
        .await
        .expect("idle keep-alive closed");
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn at_the_cap_the_longest_idle_connections_make_room() {
    let h = Harness::new(
        &quick("<rpc_max_connections>20</rpc_max_connections><rpc_idle_timeout>60</rpc_idle_timeout><rpc_header_read_timeout>60</rpc_header_read_timeout>"),
        None,
    )
    .await;
    let mut idle = Vec::new();
    for _ in 0..60 {
        idle.push(TcpStream::connect(h.server.addr).await.unwrap());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A new client is still served, at once.
    let t = Instant::now();
    let mut s = TcpStream::connect(h.server.addr).await.unwrap();
    assert_eq!(request(&mut s, GPC).await, 200);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    drop(s);
    // The longest idle went first: the closed ones are the oldest, every
    // one of them older than every one still open. A connection shed
    // before the new client was served shows its EOF at once, so the
    // probe only bounds how long an open one is watched.
    let mut closed = Vec::new();
    for s in idle.iter_mut() {
        closed.push(closed_within(s, Duration::from_millis(200)).await.is_some());
    }
    let n_closed = closed.iter().filter(|c| **c).count();
    assert!(n_closed >= 40, "{n_closed} of 60 closed: {closed:?}");
    assert!(
        closed.iter().take(n_closed).all(|c| *c),
        "a newer connection went before an older one: {closed:?}"
    );
}

#[tokio::test]
async fn reaching_the_cap_sheds_nothing_until_another_client_arrives() {
    // Cap 2, reached by two clients that connect and are slow to send
    // their first bytes (well within the header timeout). Nobody else is
    // waiting, so both must be served.
    let h = Harness::new(
        &quick("<rpc_max_connections>2</rpc_max_connections><rpc_header_read_timeout>10</rpc_header_read_timeout>"),
        None,
    )
    .await;
    let mut a = TcpStream::connect(h.server.addr).await.unwrap();
    let mut b = TcpStream::connect(h.server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(request(&mut a, GPC).await, 200);
    assert_eq!(request(&mut b, GPC).await, 200);
}

#[tokio::test]
async fn busy_connections_are_never_shed() {
    // Cap 3, all taken by requests whose bodies stall (busy until the
    // 3 s request timeout answers them).
    let h = Harness::new(&quick("<rpc_max_connections>3</rpc_max_connections>"), None).await;
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(h.server.addr).await.unwrap();
        s.write_all(
            b"POST /create_account.php HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nemail_addr=",
        )
        .await
        .unwrap();
        stalled.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    let mut s = TcpStream::connect(h.server.addr).await.unwrap();
    assert_eq!(request(&mut s, GPC).await, 200);
    let waited = t.elapsed();
    // The newcomer waited for a busy one to finish instead of cutting it:
    // when it is served, a stalled request's answer is already waiting in
    // its socket (the server wrote it, then closed that connection, before
    // it took the newcomer).
    let waiting: Vec<bool> = stalled.iter().map(answer_waiting).collect();
    assert!(
        waiting.iter().any(|w| *w),
        "served before any busy connection finished: {waiting:?}"
    );
    for mut s in stalled {
        let mut text = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut text)).await;
        let text = String::from_utf8_lossy(&text);
        // Answered by the request timeout, not cut.
        assert!(text.contains("not received in time"), "{text}");
    }
    assert!(waited >= Duration::from_secs(2), "{waited:?}");
}

/// Whether the server's bytes are in `s`'s receive buffer now (a peek
/// that never waits, straight at the socket).
fn answer_waiting(s: &TcpStream) -> bool {
    use std::os::fd::AsRawFd as _;
    let mut byte = [0u8; 1];
    // SAFETY: a one-byte peek into a buffer we own, on a socket we own.
    let n = unsafe {
        libc::recv(
            s.as_raw_fd(),
            byte.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n > 0
}

/// CPU seconds (user + system) a process has used.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// The real binary with at most 256 descriptors, flooded with 300 idle
/// sockets, 20 trickling headers and 20 idle keep-alives: get_project_config
/// still answers promptly, the process does not spin on accept errors.
async fn under_256_descriptors(extra: &str, expect_emfile: bool) {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let config = db.write_project(dir.path(), extra, None);
    let port = free_port();
    let log = dir.path().join("stderr.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_boinc-rpc"));
    cmd.arg("--config")
        .arg(&config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn");
    // The log goes to stdout or stderr (whichever main.rs chooses): both.
    let file = std::fs::File::create(&log).unwrap();
    cmd.stdout(file.try_clone().unwrap()).stderr(file);
    // SAFETY: only setrlimit between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 256,
                rlim_max: 256,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("start boinc-rpc");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let pid = child.id();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let t = Instant::now();
    loop {
        if let Ok(mut s) = TcpStream::connect(addr).await {
            if request(&mut s, GPC).await == 200 {
                break;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "boinc-rpc did not come up"
        );
        if let Some(st) = child.try_wait().unwrap() {
            panic!("boinc-rpc exited: {st:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let child = Kill(child);

    let mut held = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        assert_eq!(request(&mut s, GPC).await, 200);
        held.push(s);
    }
    let mut tricklers = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /get_project_config.php HTTP/1.1\r\n")
            .await
            .unwrap();
        tricklers.push(s);
    }
    for _ in 0..300 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    let trickling = tokio::spawn(async move {
        for _ in 0..20 {
            for s in tricklers.iter_mut() {
                let _ = s.write_all(b"X").await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });

    let cpu0 = cpu_secs(pid);
    let wall = Instant::now();
    for round in 0..8 {
        let t = Instant::now();
        let mut s = TcpStream::connect(addr).await.unwrap();
        assert_eq!(request(&mut s, GPC).await, 200, "round {round}");
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "round {round}: {:?}",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Hold the flood a little longer: nothing to do means no CPU.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu = cpu_secs(pid) - cpu0;
    let wall = wall.elapsed().as_secs_f64();
    assert!(
        cpu < wall * 0.25,
        "{cpu:.2} s CPU in {wall:.1} s: spinning?"
    );
    trickling.await.unwrap();
    drop(held);
    drop(child);
    let mut text = String::new();
    std::fs::File::open(&log)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    // Accept failures are logged at most every 10 s.
    let warnings = text.matches("cannot accept").count();
    if expect_emfile {
        assert!(
            (1..=2).contains(&warnings),
            "{warnings} accept warnings:\n{text}"
        );
    } else {
        assert_eq!(warnings, 0, "{text}");
    }
    assert!(!text.contains("panicked"), "{text}");
    eprintln!("{cpu:.2} s CPU in {wall:.1} s; {warnings} accept warnings");
}

#[tokio::test]
async fn low_descriptor_limit_cap_from_the_limit() {
    // Default cap: what 256 descriptors leave after the reserve.
    under_256_descriptors("", false).await;
}

#[tokio::test]
async fn low_descriptor_limit_cap_above_the_limit() {
    // A cap the descriptors cannot back: accept fails with EMFILE and the
    // server sheds idle connections instead of retrying every second.
    under_256_descriptors("<rpc_max_connections>5000</rpc_max_connections>", true).await;
}
