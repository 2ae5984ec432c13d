//! Every parameter of every RPC, sent as bytes a client can send but that
//! are not text (NUL, invalid UTF-8, a lone surrogate as UTF-8) or far too
//! long, through the real boinc-rpc binary on a real database: the exact
//! -1 reply naming the parameter, nothing written, and never an ERROR line
//! or "internal error" (a NUL in create_account's passwd_hash was both).

mod common;

use boinc_db::testing::TestDb;
use common::real::{lines_at, RealServer};
use common::{passwd_hash, tag, HEADER, TERMS};
use mysql_async::prelude::*;

/// Default `rpc_max_param_bytes`.
const MAX: usize = 64 * 1024;

/// Each RPC with a valid call: every parameter it reads, with a value that
/// passes on its own (`KEY` is replaced by a real account key).
const RPCS: &[(&str, &[(&str, &str)])] = &[
    (
        "create_account.php",
        &[
            ("email_addr", "probe@example.com"),
            ("passwd_hash", "0123456789abcdef0123456789abcdef"),
            ("user_name", "Probe"),
            ("team_name", "No Such Team"),
            ("consent_flag", "1"),
            ("source", "probe"),
            ("invite_code", "x"),
        ],
    ),
    (
        "am_set_info.php",
        &[
            ("account_key", "KEY"),
            ("name", "Renamed"),
            ("country", "Germany"),
            ("postal_code", "12345"),
            (
                "global_prefs",
                "<global_preferences>\n</global_preferences>",
            ),
            (
                "project_prefs",
                "<project_preferences>\n</project_preferences>",
            ),
            ("url", "example.com"),
            ("send_email", "1"),
            ("show_hosts", "1"),
            ("teamid", "0"),
            ("venue", "home"),
            ("email_addr", "owner@example.com"),
            ("password_hash", "PWHASH"),
            ("consent_name", "ENROLL"),
            ("consent_flag", "1"),
            ("consent_not_required", "0"),
            ("consent_source", "probe"),
        ],
    ),
    ("am_get_info.php", &[("account_key", "KEY")]),
    (
        "lookup_account.php",
        &[
            ("email_addr", "owner@example.com"),
            ("passwd_hash", "PWHASH"),
        ],
    ),
    (
        "show_user.php",
        &[("auth", "KEY"), ("userid", "1"), ("format", "xml")],
    ),
    (
        "team_email_list.php",
        &[("teamid", "1"), ("xml", "1"), ("creditonly", "1")],
    ),
    (
        "team_lookup.php",
        &[
            ("team_id", "1"),
            ("team_ids", "1,2"),
            ("team_name", "x"),
            ("format", "xml"),
        ],
    ),
];

/// (what, percent-encoded value, the message after "NAME ").
fn probes() -> Vec<(&'static str, String, String)> {
    let long = "a".repeat(MAX + 1);
    vec![
        ("NUL", "abc%00def".into(), "contains a NUL byte".into()),
        (
            // 31 hex digits and a NUL: passwd_hash's length check passes.
            "NUL at the end of 32 bytes",
            "0123456789abcdef0123456789abcde%00".into(),
            "contains a NUL byte".into(),
        ),
        (
            "invalid UTF-8",
            "ab%FFcd".into(),
            "is not valid UTF-8".into(),
        ),
        (
            "a lone surrogate as UTF-8",
            "%ED%A0%80".into(),
            "is not valid UTF-8".into(),
        ),
        (
            "an overlong NUL",
            "%C0%80".into(),
            "is not valid UTF-8".into(),
        ),
        ("a cut sequence", "J%C3".into(), "is not valid UTF-8".into()),
        (
            "very long",
            long,
            format!("is too long ({} bytes given, at most {MAX} bytes)", MAX + 1),
        ),
    ]
}

fn expected(msg: &str) -> String {
    format!(
        "{HEADER}<error>\n    <error_num>-1</error_num>\n    <error_msg>{msg}</error_msg>\n</error>\n"
    )
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn fingerprint(c: &mut mysql_async::Conn) -> Vec<i64> {
    let mut out = Vec::new();
    for t in ["user", "consent", "team", "rpc_limit"] {
        let n: Option<i64> = c
            .query_first(format!("SELECT COUNT(*) FROM {t}"))
            .await
            .unwrap();
        out.push(n.unwrap_or(0));
    }
    let n: Option<i64> = c
        .query_first(
            "SELECT CRC32(GROUP_CONCAT(CONCAT_WS(',', name, country, postal_code, url, venue, \
             send_email, show_hosts, email_addr, passwd_hash) ORDER BY id)) FROM user",
        )
        .await
        .unwrap();
    out.push(n.unwrap_or(0));
    out
}

#[tokio::test]
async fn every_parameter_of_every_rpc_refuses_bytes_that_are_not_text() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let config = db.write_project(
        dir.path(),
        "<rpc_rate_limit_exempt>127.0.0.1</rpc_rate_limit_exempt>\n\
         <am_set_info_allow_credentials/>\n<user_country/>\n<user_url/>",
        Some(TERMS),
    );
    let mut c = db.conn().await;
    c.query_drop("UPDATE consent_type SET enabled = 1 WHERE shortname = 'ENROLL'")
        .await
        .unwrap();
    let mut server = RealServer::start(&config).await;
    let client = reqwest::Client::new();
    // The account the key-based RPCs act on.
    let pw = passwd_hash("secret", "owner@example.com");
    let r = client
        .get(server.url("create_account.php"))
        .query(&[
            ("email_addr", "owner@example.com"),
            ("passwd_hash", pw.as_str()),
            ("user_name", "Owner"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let key = tag(&r, "authenticator").unwrap_or_else(|| panic!("{r}"));
    let before = fingerprint(&mut c).await;

    let mut sent = 0;
    for (rpc, params) in RPCS {
        for (name, _) in *params {
            for (what, value, msg) in probes() {
                let mut body = Vec::new();
                for (n, v) in *params {
                    let v = match *v {
                        "KEY" => key.clone(),
                        "PWHASH" => pw.clone(),
                        v => v.to_owned(),
                    };
                    let v = if n == name { value.clone() } else { encode(&v) };
                    body.push(format!("{n}={v}"));
                }
                let body = body.join("&");
                let want = expected(&format!("{name} {msg}"));
                // POST (any size), and GET for the short ones.
                let r = client
                    .post(server.url(rpc))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let got = r.text().await.unwrap();
                assert_eq!(got, want, "POST {rpc} {name}: {what}");
                if body.len() < 8192 {
                    let r = client
                        .get(format!("{}?{body}", server.url(rpc)))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    let got = r.text().await.unwrap();
                    assert_eq!(got, want, "GET {rpc} {name}: {what}");
                }
                sent += 1;
            }
        }
    }
    assert_eq!(sent, (7 + 17 + 1 + 2 + 3 + 3 + 4) * probes().len());
    // Nothing of any of them was written (and no failed login counted).
    assert_eq!(fingerprint(&mut c).await, before);
    // The same valid calls still work (the probes were the only problem).
    let r = client
        .get(server.url("am_get_info.php"))
        .query(&[("account_key", key.as_str())])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(r.contains("<success/>"), "{r}");

    assert!(server.stop().success());
    let log = server.log();
    assert_eq!(lines_at(&log, "ERROR"), Vec::<&str>::new(), "{log}");
    assert!(!log.contains("internal error"), "{log}");
    assert!(!log.contains("bcrypt failed"), "{log}");
}
