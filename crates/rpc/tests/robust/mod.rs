//! Helpers for the robustness tests (outage, limits, fuzz, shutdown,
//! mixed load): strict XML checks, raw HTTP, table fingerprints.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use mysql_async::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Parse strictly: one root element, matching end tags, nothing broken.
pub fn well_formed(body: &str) -> Result<(), String> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(body);
    r.config_mut().check_end_names = true;
    r.config_mut().check_comments = true;
    let mut depth = 0usize;
    let mut roots = 0usize;
    loop {
        match r.read_event() {
            Ok(Event::Start(_)) => {
                if depth == 0 {
                    roots += 1;
                }
                depth += 1;
            }
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Empty(_)) if depth == 0 => roots += 1,
            Ok(Event::Text(t)) => {
                t.decode().map_err(|e| format!("bad text: {e}"))?;
            }
            Ok(Event::GeneralRef(e)) => {
                let ok = match e.resolve_char_ref() {
                    Ok(Some(c)) => {
                        !matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}')
                    }
                    Ok(None) => matches!(
                        &*e.decode().unwrap_or_default(),
                        "lt" | "gt" | "amp" | "quot" | "apos"
                    ),
                    Err(_) => false,
                };
                if !ok {
                    return Err(format!("bad entity &{};", String::from_utf8_lossy(&e)));
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("at {}: {e}", r.error_position())),
        }
    }
    if depth != 0 {
        return Err("unclosed element".into());
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(())
}

/// One request over a fresh connection; (status, body).
pub async fn raw(addr: SocketAddr, request: &[u8]) -> std::io::Result<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(request).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("no reply within 30 s"))??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    // A streamed reply (team_email_list) comes in chunks.
    let chunked = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

/// An HTTP/1.1 chunked body, decoded; an error if it is cut short.
fn dechunk(mut rest: &str) -> std::io::Result<String> {
    let bad = |why: &str| std::io::Error::other(format!("bad chunked body: {why}"));
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or_else(|| bad("no size line"))?;
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad("size"))?;
        if n == 0 {
            return Ok(out);
        }
        let chunk = after.get(..n).ok_or_else(|| bad("cut short"))?;
        out.push_str(chunk);
        rest = after[n..]
            .strip_prefix("\r\n")
            .ok_or_else(|| bad("no chunk end"))?;
    }
}

/// Table checksums and row counts of the tables RPCs write.
pub async fn fingerprint(conn: &mut mysql_async::Conn) -> Vec<(String, Option<i64>, i64)> {
    let mut out = Vec::new();
    for t in ["user", "consent", "team", "terms_version", "consent_terms"] {
        let exists: Option<String> = conn
            .exec_first(
                "SELECT table_name FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = ?",
                (t,),
            )
            .await
            .expect("information_schema");
        if exists.is_none() {
            continue;
        }
        let sum: Option<(String, Option<i64>)> = conn
            .query_first(format!("CHECKSUM TABLE `{t}`"))
            .await
            .expect("checksum");
        let n: Option<i64> = conn
            .query_first(format!("SELECT COUNT(*) FROM `{t}`"))
            .await
            .expect("count");
        out.push((t.to_owned(), sum.and_then(|s| s.1), n.unwrap_or(0)));
    }
    out
}

/// Users created with consent params but lacking their ENROLL row.
pub async fn users_without_consent(conn: &mut mysql_async::Conn, email_like: &str) -> i64 {
    conn.exec_first(
        "SELECT COUNT(*) FROM user u WHERE u.email_addr LIKE ? AND NOT EXISTS \
         (SELECT 1 FROM consent c JOIN consent_type t ON t.id = c.consent_type_id \
          WHERE c.userid = u.id AND t.shortname = 'ENROLL')",
        (email_like,),
    )
    .await
    .expect("orphan query")
    .unwrap_or(0)
}
