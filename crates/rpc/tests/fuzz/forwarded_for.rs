//! Repeated and malformed `X-Forwarded-For` lines (behind a trusted
//! proxy). Each case is one failed login (lookup_account, unknown email)
//! whose header lines are built from tokens of known meaning; the failure
//! must be counted against exactly the address a model of the rule names
//! (the right-most entry, over all lines, that is not a trusted proxy; the
//! proxy itself when that entry is unreadable; nobody when it is exempt).

use std::net::IpAddr;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::common::{Harness, HEADER};
use crate::{robust, runner};

const TRUSTED: &str = "127.0.0.1 10.0.0.2 2001:db8::2";
const EXEMPT: &str = "198.51.100.7";

#[derive(Debug, Clone)]
enum Token {
    /// A client address, as written.
    Addr(IpAddr, String),
    /// One of our trusted proxies.
    Proxy(String),
    /// Not an address (never contains a comma).
    Junk(Vec<u8>),
    /// An empty list element.
    Empty(String),
}

fn addr() -> impl Strategy<Value = Token> {
    prop_oneof![
        (0u8..6, proptest::option::of(1u16..65535)).prop_map(|(i, port)| {
            let ip = format!("203.0.113.{i}");
            let text = match port {
                Some(p) => format!("{ip}:{p}"),
                None => ip.clone(),
            };
            Token::Addr(ip.parse().unwrap(), text)
        }),
        (1u8..4, any::<bool>()).prop_map(|(i, bracket)| {
            let ip = format!("2001:db8:{i}::{i}");
            let text = if bracket {
                format!("[{ip}]:443")
            } else {
                ip.clone()
            };
            Token::Addr(ip.parse().unwrap(), text)
        }),
        Just(Token::Addr(
            "203.0.113.3".parse().unwrap(),
            "::ffff:203.0.113.3".into()
        )),
        Just(Token::Addr(EXEMPT.parse().unwrap(), EXEMPT.into())),
    ]
}

fn token() -> impl Strategy<Value = Token> {
    prop_oneof![
        5 => addr(),
        2 => proptest::sample::select(vec!["127.0.0.1", "10.0.0.2", "[2001:db8::2]:80"])
            .prop_map(|s| Token::Proxy(s.into())),
        2 => prop_oneof![
            Just(b"unknown".to_vec()),
            Just(b"1.2.3".to_vec()),
            Just(b"999.1.1.1".to_vec()),
            Just(b"2001:db8::g".to_vec()),
            Just(b"\xff\xfe".to_vec()),
            Just(b"\x01".to_vec()),
            Just(b"_hidden".to_vec()),
            (1usize..9000).prop_map(|n| vec![b'9'; n]),
        ]
        .prop_map(Token::Junk),
        1 => proptest::sample::select(vec!["", " ", "\t"]).prop_map(|s| Token::Empty(s.into())),
    ]
}

/// Header lines: (name as spelled, tokens), with unrelated lines
/// between them.
fn lines() -> impl Strategy<Value = Vec<(String, Vec<Token>)>> {
    proptest::collection::vec(
        (
            proptest::sample::select(vec![
                "X-Forwarded-For",
                "x-forwarded-for",
                "X-FORWARDED-FOR",
                "X-Other",
            ]),
            proptest::collection::vec(token(), 0..5),
        )
            .prop_map(|(n, t)| (n.to_owned(), t)),
        0..6,
    )
}

fn is_xff(name: &str) -> bool {
    name.eq_ignore_ascii_case("x-forwarded-for")
}

fn render(tokens: &[Token]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(if i % 2 == 0 { b"," } else { b", " });
        }
        match t {
            Token::Addr(_, s) | Token::Proxy(s) | Token::Empty(s) => {
                out.extend_from_slice(s.as_bytes())
            }
            Token::Junk(b) => out.extend_from_slice(b),
        }
    }
    out
}

/// Bytes HTTP does not allow in a header value: the request is refused
/// (4xx) before any RPC runs.
fn invalid(lines: &[(String, Vec<Token>)]) -> bool {
    lines.iter().any(|(_, t)| {
        render(t)
            .iter()
            .any(|b| (*b < 0x20 && *b != b'\t') || *b == 0x7f)
    })
}

/// The address the failure must count against; None: nobody (exempt).
fn expected(lines: &[(String, Vec<Token>)]) -> Option<IpAddr> {
    let proxy: IpAddr = "127.0.0.1".parse().unwrap();
    let exempt: IpAddr = EXEMPT.parse().unwrap();
    let all: Vec<&Token> = lines
        .iter()
        .filter(|(n, _)| is_xff(n))
        .flat_map(|(_, t)| t.iter())
        .collect();
    let mut client = proxy;
    for t in all.into_iter().rev() {
        match t {
            Token::Empty(_) | Token::Proxy(_) => continue,
            Token::Addr(ip, _) => {
                client = *ip;
                break;
            }
            Token::Junk(_) => break,
        }
    }
    (client != exempt).then_some(client)
}

/// (client, used) of every failed-login counter.
async fn limit_counters(h: &Harness) -> Vec<(Vec<u8>, i64)> {
    use mysql_async::prelude::*;
    let mut c = h.conn().await;
    let rows = c
        .query("SELECT client, used FROM rpc_limit WHERE kind = 1 ORDER BY client")
        .await
        .unwrap();
    c.disconnect().await.ok();
    rows
}

#[test]
fn repeated_forwarded_for_lines_count_against_the_right_client() {
    use boinc_db::rate_limit::{Key, Kind};

    let (rt, mut runner) = runner(300);
    let cases = runner.config().cases;
    let h = rt.block_on(Harness::new(
        &format!(
            "<rpc_trusted_proxies>{}</rpc_trusted_proxies>\
             <rpc_rate_limit_exempt>{}</rpc_rate_limit_exempt>\
             <rpc_failed_logins_per_ip>1000000</rpc_failed_logins_per_ip>",
            TRUSTED, EXEMPT
        ),
        None,
    ));
    let addr = h.server.addr;
    let counted = std::sync::atomic::AtomicU32::new(0);
    let result = runner.run(&lines(), |lines| {
        rt.block_on(async {
            let before = limit_counters(&h).await;
            let mut req = b"GET /lookup_account.php?email_addr=nobody%40example.com HTTP/1.1\r\n\
                            Host: 127.0.0.1\r\nConnection: close\r\n"
                .to_vec();
            for (name, tokens) in &lines {
                req.extend_from_slice(name.as_bytes());
                req.extend_from_slice(b": ");
                req.extend_from_slice(&render(tokens));
                req.extend_from_slice(b"\r\n");
            }
            req.extend_from_slice(b"\r\n");
            let (status, body) = robust::raw(addr, &req)
                .await
                .map_err(|e| TestCaseError::fail(format!("no reply: {e}")))?;
            let after = limit_counters(&h).await;
            if invalid(&lines) {
                prop_assert!((400..500).contains(&status), "HTTP {status}: {body}");
                prop_assert_eq!(&before, &after);
                return Ok(());
            }
            prop_assert_eq!(status, 200, "{}", body);
            prop_assert!(body.starts_with(HEADER), "{}", body);
            prop_assert!(body.contains("<error_num>-136</error_num>"), "{}", body);
            // Exactly the expected counter went up by one.
            let mut want = before.clone();
            if let Some(ip) = expected(&lines) {
                // The client's counter, and for IPv6 its /48's as well.
                let k = Key::new(Kind::FailedLogin, ip);
                for key in [Some(k), k.wider()].into_iter().flatten() {
                    let key = key.client().to_vec();
                    match want.iter_mut().find(|(c, _)| *c == key) {
                        Some(row) => row.1 += 1,
                        None => {
                            want.push((key, 1));
                            want.sort();
                        }
                    }
                }
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            prop_assert_eq!(&want, &after, "lines: {:?}", lines);
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let counted = counted.into_inner();
    eprintln!("{cases} cases, {counted} counted against a client");
    assert!(counted > cases / 4, "too few counted cases: {counted}");
    rt.block_on(async {
        let body = h.get("get_project_config.php").await;
        robust::well_formed(&body).unwrap();
    });
}
