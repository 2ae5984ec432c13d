//! Arbitrary parameter bytes (invalid UTF-8, huge values, SQL and XML
//! metacharacters, duplicated and missing keys), GET and POST, at every RPC
//! over real HTTP. Every reply is HTTP 200 (or 4xx from the HTTP layer,
//! e.g. an over-long URI), never 5xx, with a well-formed XML body; the
//! server never panics; an error reply changed no row, and the read-only
//! RPCs never change a row.

use std::fmt::Write as _;
use std::net::SocketAddr;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

use crate::common::{self, Harness, HEADER};
use crate::{config, robust, runtime};

const RPCS: &[&str] = &[
    "create_account",
    "am_set_info",
    "am_get_info",
    "lookup_account",
    "get_project_config",
    "show_user",
    "team_email_list",
    "team_lookup",
];

const NAMES: &[&str] = &[
    "email_addr",
    "passwd_hash",
    "user_name",
    "team_name",
    "consent_flag",
    "source",
    "account_key",
    "name",
    "country",
    "postal_code",
    "global_prefs",
    "project_prefs",
    "url",
    "send_email",
    "show_hosts",
    "teamid",
    "venue",
    "password_hash",
    "consent_name",
    "consent_not_required",
    "consent_source",
    "invite_code",
    "userid",
    "auth",
    "format",
    "xml",
    "creditonly",
    "team_id",
    "team_ids",
];

const NASTY: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "2",
    " 1",
    "99999999999999999999999",
    "' OR '1'='1",
    "x'); DROP TABLE user; --",
    "\\'\\\"\\\\",
    "<global_preferences><a>&amp;</a></global_preferences>",
    "<project_preferences><project_specific>]]></project_specific></project_preferences>",
    "<![CDATA[ ]]>",
    "&#0;&#xD800;",
    "\u{0}\u{1}\u{b}\u{1f}",
    "ENROLL",
    "STATSEXPORT",
    "enroll",
    "NOSUCHTYPE",
    "fuzz@example.com",
    "FUZZ@EXAMPLE.COM",
    "a@b",
    "not an email",
    "0123456789abcdef0123456789abcdef",
    "Fuzz",
    "é日本\u{fffd}",
    "%00%ff",
    "a=b&c=d",
];

#[derive(Debug, Clone)]
struct Case {
    rpc: &'static str,
    php: bool,
    post: bool,
    query: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<(Vec<u8>, Vec<u8>)>,
    raw_body: Option<Vec<u8>>,
}

fn value(key: String, hash: String) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::sample::select(NASTY).prop_map(|s| s.as_bytes().to_vec()),
        3 => proptest::collection::vec(any::<u8>(), 0..48),
        1 => (any::<u8>(), 1_000usize..100_000).prop_map(|(b, n)| vec![b; n]),
        2 => Just(key.into_bytes()),
        2 => Just(hash.into_bytes()),
        1 => "[a-z]{1,8}@[a-z]{1,8}\\.test".prop_map(String::into_bytes),
    ]
}

fn pairs(key: String, hash: String) -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    proptest::collection::vec(
        (
            prop_oneof![
                6 => proptest::sample::select(NAMES).prop_map(|s| s.as_bytes().to_vec()),
                1 => proptest::collection::vec(any::<u8>(), 0..12),
            ],
            value(key, hash),
        ),
        0..10,
    )
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// A valid call of `rpc`, then one mutation (none, drop a pair, duplicate
/// a key with another value, or replace a value).
fn template(key: String, hash: String) -> impl Strategy<Value = Case> {
    (
        proptest::sample::select(RPCS),
        "[a-z]{8}",
        "[0-9a-f]{32}",
        any::<bool>(),
        0usize..4,
        0usize..8,
        value(key.clone(), hash.clone()),
        any::<bool>(),
    )
        .prop_map(
            move |(rpc, word, fresh_hash, flag, mutation, at, v, post)| {
                let flag = if flag { "1" } else { "0" };
                let mut p: Vec<(Vec<u8>, Vec<u8>)> = match rpc {
                    "create_account" => vec![
                        (b("email_addr"), format!("{word}@ex.test").into_bytes()),
                        (b("passwd_hash"), fresh_hash.into_bytes()),
                        (b("user_name"), format!("U {word}").into_bytes()),
                        (b("consent_flag"), b(flag)),
                        (b("source"), b("fuzz")),
                    ],
                    "am_set_info" => vec![
                        (b("account_key"), key.clone().into_bytes()),
                        (b("consent_name"), b("STATSEXPORT")),
                        (b("consent_flag"), b(flag)),
                        (b("consent_not_required"), b("0")),
                        (b("consent_source"), b("fuzz")),
                        (b("country"), b("Germany")),
                    ],
                    "am_get_info" => vec![(b("account_key"), key.clone().into_bytes())],
                    "lookup_account" => vec![
                        (b("email_addr"), b("fuzz@example.com")),
                        (b("passwd_hash"), hash.clone().into_bytes()),
                    ],
                    "show_user" => vec![
                        (b("auth"), key.clone().into_bytes()),
                        (b("format"), b("xml")),
                    ],
                    "team_email_list" => vec![
                        (b("teamid"), b("1")),
                        (b("xml"), b("1")),
                        (b("creditonly"), b(flag)),
                    ],
                    "team_lookup" => vec![(b("team_ids"), b("1,2,x")), (b("format"), b("xml"))],
                    _ => vec![],
                };
                if !p.is_empty() {
                    let i = at % p.len();
                    match mutation {
                        1 => {
                            p.remove(i);
                        }
                        2 => {
                            let k = p[i].0.clone();
                            p.push((k, v));
                        }
                        3 => p[i].1 = v,
                        _ => {}
                    }
                }
                let (query, body) = if post { (vec![], p) } else { (p, vec![]) };
                Case {
                    rpc,
                    php: true,
                    post,
                    query,
                    body,
                    raw_body: None,
                }
            },
        )
}

fn case(key: String, hash: String) -> impl Strategy<Value = Case> {
    prop_oneof![
        3 => arbitrary(key.clone(), hash.clone()),
        2 => template(key, hash),
    ]
}

fn arbitrary(key: String, hash: String) -> impl Strategy<Value = Case> {
    (
        proptest::sample::select(RPCS),
        any::<bool>(),
        any::<bool>(),
        pairs(key.clone(), hash.clone()),
        pairs(key, hash),
        proptest::option::weighted(0.1, proptest::collection::vec(any::<u8>(), 0..200)),
    )
        .prop_map(|(rpc, php, post, query, body, raw_body)| Case {
            rpc,
            php,
            post,
            query,
            body,
            raw_body,
        })
}

fn encode(pairs: &[(Vec<u8>, Vec<u8>)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push('&');
        }
        for b in k {
            let _ = write!(s, "%{b:02X}");
        }
        s.push('=');
        for b in v {
            if b.is_ascii_alphanumeric() {
                s.push(*b as char);
            } else {
                let _ = write!(s, "%{b:02X}");
            }
        }
    }
    s
}

fn request(c: &Case) -> Vec<u8> {
    let path = format!("/{}{}", c.rpc, if c.php { ".php" } else { "" });
    let query = encode(&c.query);
    let target = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    let mut r = Vec::new();
    if c.post {
        let body = c
            .raw_body
            .clone()
            .unwrap_or_else(|| encode(&c.body).into_bytes());
        r.extend_from_slice(
            format!(
                "POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        r.extend_from_slice(&body);
    } else {
        r.extend_from_slice(
            format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
    }
    r
}

/// (rpc, succeeded) -> count, to show the run reached both outcomes.
type Tally = std::sync::Mutex<std::collections::BTreeMap<(&'static str, bool), u32>>;

async fn check(
    h: &Harness,
    addr: SocketAddr,
    c: &Case,
    tally: &Tally,
) -> Result<(), TestCaseError> {
    let mut conn = h.conn().await;
    let before = robust::fingerprint(&mut conn).await;
    let (status, body) = robust::raw(addr, &request(c))
        .await
        .map_err(|e| TestCaseError::fail(format!("no reply (server died?): {e}")))?;
    prop_assert!(
        status == 200 || (400..500).contains(&status),
        "HTTP {status} for {}: {body}",
        c.rpc
    );
    if status == 200 {
        prop_assert!(body.starts_with(HEADER), "no XML header: {body:?}");
        if let Err(e) = robust::well_formed(&body) {
            return Err(TestCaseError::fail(format!(
                "malformed XML ({e}): {body:?}"
            )));
        }
    }
    let failed = status != 200 || body.contains("<error>");
    if let Ok(mut t) = tally.lock() {
        *t.entry((c.rpc, !failed)).or_default() += 1;
    }
    let read_only = matches!(
        c.rpc,
        "am_get_info"
            | "lookup_account"
            | "get_project_config"
            | "show_user"
            | "team_email_list"
            | "team_lookup"
    );
    if failed || read_only {
        let after = robust::fingerprint(&mut conn).await;
        prop_assert_eq!(
            &before,
            &after,
            "rows changed by {} (failed={})",
            c.rpc,
            failed
        );
    }
    conn.disconnect().await.ok();
    Ok(())
}

#[test]
fn arbitrary_parameters_at_every_rpc() {
    fuzz_every_rpc(false, 500);
}

/// The same on a legacy database (created `CHARACTER SET latin1`), where
/// bytes pass through unconverted and column sizes count bytes.
#[test]
fn arbitrary_parameters_at_every_rpc_on_a_latin1_database() {
    fuzz_every_rpc(true, 200);
}

fn fuzz_every_rpc(latin1: bool, default_cases: u32) {
    let rt = runtime();
    let (h, key) = rt.block_on(async {
        let extra = "<rpc_failed_logins_per_ip>1000000</rpc_failed_logins_per_ip>\
             <rpc_create_account_per_ip_per_hour>0</rpc_create_account_per_ip_per_hour>\
             <rpc_lookups_per_ip>0</rpc_lookups_per_ip>";
        let h = if latin1 {
            let h = Harness::latin1(extra, Some(common::TERMS)).await;
            h.set_type_enabled("ENROLL", true).await;
            h
        } else {
            Harness::consent_project(extra).await
        };
        h.set_type_enabled("STATSEXPORT", true).await;
        let key = h
            .new_account(
                "fuzz@example.com",
                "Fuzz",
                &[("consent_flag", "1"), ("source", "fuzz")],
            )
            .await;
        // A team for the member list and team lookups.
        let mut c = h.conn().await;
        mysql_async::prelude::Queryable::query_drop(
            &mut c,
            "INSERT INTO team (id, create_time, userid, name, name_lc, url, type, name_html, \
             description, nusers, country, total_credit, expavg_credit, expavg_time) \
             VALUES (1, 1, 1, 'Fuzz Team', 'fuzz team', '', 1, '', '', 1, '', 0, 0, 0)",
        )
        .await
        .unwrap();
        drop(c);
        (h, key)
    });
    let hash = common::passwd_hash("secret", "fuzz@example.com");
    let addr = h.server.addr;
    // A fixed seed unless PROPTEST_RNG_SEED names one (to explore): the
    // check below that every RPC succeeded at least once held only by
    // chance with a random seed (one RPC's few unmutated templates were
    // all missing about one run in a dozen: a CI failure). Seed 6 gives
    // every RPC at least 3 successes in both variants.
    let rng_seed = match Config::default().rng_seed {
        RngSeed::Random => RngSeed::Fixed(6),
        chosen => chosen,
    };
    let mut runner = TestRunner::new(Config {
        rng_seed,
        ..config(default_cases)
    });
    let cases = runner.config().cases;
    let started = std::time::Instant::now();
    let tally = Tally::default();
    let result = runner.run(&case(key, hash), |c| {
        rt.block_on(check(&h, addr, &c, &tally))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let tally = tally.into_inner().unwrap_or_default();
    eprintln!("{cases} cases in {:?}: {tally:?}", started.elapsed());
    // Every RPC was exercised, and calls that change rows did succeed.
    for rpc in RPCS {
        assert!(tally.keys().any(|(r, _)| r == rpc), "{rpc} never called");
    }
    for rpc in RPCS {
        assert!(
            tally.get(&(*rpc, true)).is_some_and(|n| *n > 0),
            "{rpc}: {tally:?}"
        );
    }
    // Still alive afterwards.
    rt.block_on(async {
        let body = h.get("get_project_config.php").await;
        robust::well_formed(&body).unwrap();
    });
}
