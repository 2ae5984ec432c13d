//! The Rust probes: a minimal HTTP client, bcrypt hashes per core and
//! the latency of one password check at a time.

use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::Bench;
use crate::load;

/// A minimal keep-alive HTTP/1.1 client for the probes.
pub struct Http {
    r: BufReader<TcpStream>,
}

impl Http {
    pub async fn connect(port: u16) -> anyhow::Result<Self> {
        let s = TcpStream::connect(("127.0.0.1", port)).await?;
        s.set_nodelay(true)?;
        Ok(Self {
            r: BufReader::new(s),
        })
    }

    pub async fn get(&mut self, target: &str) -> anyhow::Result<(u16, String)> {
        let req = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        self.r.get_mut().write_all(req.as_bytes()).await?;
        let mut line = String::new();
        self.r.read_line(&mut line).await?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut len = 0usize;
        loop {
            line.clear();
            if self.r.read_line(&mut line).await? == 0 {
                bail!("connection closed");
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        self.r.read_exact(&mut body).await?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// The `p` quantile of sorted latencies.
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// The text of the first `<name>` element of `body`.
pub fn tag(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{name}>"))? + start;
    Some(body[start..end].to_owned())
}

/// bcrypt cost 10 on one thread, for 3 s.
pub fn bcrypt() -> anyhow::Result<()> {
    let t = Instant::now();
    let mut n = 0u32;
    while t.elapsed() < Duration::from_secs(3) {
        boinc_db::password::hash_for_storage("0123456789abcdef0123456789abcdef")?;
        n += 1;
    }
    let line = format!(
        "| bcrypt cost 10, one thread | {:.1} hashes/s per core | | | | {} |",
        f64::from(n) / t.elapsed().as_secs_f64(),
        load()
    );
    println!("{line}");
    Ok(())
}

/// lookup_account and am_set_info with a password, one request at a time.
pub async fn login(b: &Bench<'_>) -> anyhow::Result<()> {
    let (secs, port, keys) = (b.secs, b.port, &b.keys);
    // One connection, one request at a time: the latency a volunteer
    // sees for a password check (bcrypt verify on the hashing pool).
    let mut c = Http::connect(port).await?;
    let probes = [
        (
            "lookup_account with passwd_hash, 1 conn, sequential",
            "<authenticator>",
        ),
        (
            "am_set_info with password_hash (unchanged), 1 conn, sequential",
            "<success/>",
        ),
    ];
    for (i, (name, expect)) in probes.into_iter().enumerate() {
        let mut lat = Vec::new();
        let until = Instant::now() + Duration::from_secs((secs / 2).max(1));
        let mut n = 0usize;
        while Instant::now() < until {
            let target = if i == 0 {
                format!(
                    "/lookup_account.php?email_addr=seed{}%40bench.test\
                     &passwd_hash=0123456789abcdef0123456789abcdef",
                    n % keys.len()
                )
            } else {
                format!(
                    "/am_set_info.php?account_key={}\
                     &password_hash=0123456789abcdef0123456789abcdef",
                    keys[n % keys.len()]
                )
            };
            n += 1;
            let t = Instant::now();
            let (st, body) = c.get(&target).await?;
            lat.push(t.elapsed());
            if st != 200 || !body.contains(expect) {
                bail!("{name}: HTTP {st}: {body}");
            }
        }
        lat.sort();
        println!(
            "| {name} | {:.1} | {:.1}ms | {:.1}ms | 0 | {} |",
            lat.len() as f64 / (secs / 2).max(1) as f64,
            pct(&lat, 0.50).as_secs_f64() * 1e3,
            pct(&lat, 0.99).as_secs_f64() * 1e3,
            load()
        );
    }
    Ok(())
}
