//! Look-alike names and addresses (issue 9): consent-type names and
//! emails that look or collate like a real one select nothing.

use proptest::prelude::*;

use crate::common;
use crate::{owner_project, robust, runner, OWNER};

/// Characters that make a string look (or collate) like another: white
/// space of several kinds, zero-width and invisible characters, a
/// combining accent, an ideographic space.
const CONFUSABLE: &[&str] = &[
    " ", "  ", "\t", "\u{a0}", "\u{200b}", "\u{200c}", "\u{200d}", "\u{2060}", "\u{feff}",
    "\u{ad}", "\u{301}", "\u{3000}", "\u{0}",
];

/// A stand-in for ASCII letter `c`: full-width, mathematical bold (a
/// supplementary character: utf8mb4_general_ci equates them all), or a
/// Cyrillic/Greek homoglyph where one exists.
fn variant(c: char, which: usize) -> Option<char> {
    if !c.is_ascii_alphanumeric() && !"@.".contains(c) {
        return None;
    }
    let homoglyph = match c {
        'A' => 'А',
        'E' => 'Е',
        'O' => 'О',
        'T' => 'Т',
        'X' => 'Х',
        'P' => 'Р',
        'L' => 'Ⅼ',
        'a' => 'а',
        'e' => 'е',
        'o' => 'о',
        'x' => 'х',
        'c' => 'с',
        'p' => 'р',
        'u' => 'υ',
        _ => char::from_u32(c as u32 + 0xFEE0)?,
    };
    match which % 3 {
        0 => char::from_u32(c as u32 + 0xFEE0),
        1 if c.is_ascii_uppercase() => char::from_u32(c as u32 - 'A' as u32 + 0x1D400),
        1 if c.is_ascii_lowercase() => char::from_u32(c as u32 - 'a' as u32 + 0x1D41A),
        _ => Some(homoglyph),
    }
}

/// A string that is not `base` (nor, with `case_folds`, an ASCII-case
/// variant of it) but looks or collates like it.
fn look_alike(base: &'static str, case_folds: bool) -> impl Strategy<Value = String> {
    let fixed = boinc_db::testing::look_alikes(base);
    let n = base.chars().count();
    prop_oneof![
        2 => proptest::sample::select(fixed),
        3 => proptest::collection::vec((0..=n, proptest::sample::select(CONFUSABLE)), 1..3)
            .prop_map(move |ins| {
                let mut cs: Vec<String> = base.chars().map(String::from).collect();
                for (i, c) in ins {
                    cs.insert(i.min(cs.len()), c.to_owned());
                }
                cs.concat()
            }),
        3 => (0..n, any::<usize>(), any::<bool>()).prop_map(move |(i, which, flip)| {
            base.chars()
                .enumerate()
                .map(|(j, c)| match (j == i, variant(c, which)) {
                    (true, Some(v)) => v,
                    _ if flip && j != i => c.to_ascii_lowercase(),
                    _ => c,
                })
                .collect()
        }),
    ]
    .prop_filter("must differ from the real name", move |s| {
        if case_folds {
            !s.eq_ignore_ascii_case(base)
        } else {
            s != base
        }
    })
}

#[derive(Debug, Clone)]
enum LookAlike {
    /// am_set_info consent_name (flag, post)
    ConsentName(String, bool, bool),
    /// lookup_account email_addr (with the owner's hash?)
    Lookup(String, bool),
    /// create_account email_addr with the owner's password
    Create(String),
}

fn look_alike_case() -> impl Strategy<Value = LookAlike> {
    prop_oneof![
        (
            prop_oneof![
                look_alike("ENROLL", false),
                look_alike("STATSEXPORT", false)
            ],
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(n, f, p)| LookAlike::ConsentName(n, f, p)),
        (look_alike(OWNER, true), any::<bool>()).prop_map(|(e, h)| LookAlike::Lookup(e, h)),
        look_alike(OWNER, true).prop_map(LookAlike::Create),
    ]
}

/// Whatever a look-alike name or address is sent, it selects nothing: a
/// consent name is an unknown type (warning, no row), an email finds no
/// account and never yields the owner's authenticator.
#[test]
fn look_alike_names_and_emails_select_nothing() {
    let (rt, mut runner) = runner(300);
    let (h, key) = rt.block_on(owner_project(""));
    let hash = common::passwd_hash("secret", OWNER);
    let result = runner.run(&look_alike_case(), |c| {
        rt.block_on(async {
            let mut conn = h.conn().await;
            let before = robust::fingerprint(&mut conn).await;
            let body = match &c {
                // A NUL is no text: refused by name before anything is looked up.
                LookAlike::ConsentName(name, _, _) if name.contains('\0') => {
                    let body = h
                        .call(
                            "am_set_info.php",
                            &[
                                ("account_key", key.as_str()),
                                ("consent_name", name.as_str()),
                                ("consent_flag", "1"),
                                ("consent_not_required", "0"),
                                ("consent_source", "x"),
                            ],
                        )
                        .await;
                    prop_assert!(
                        body.contains("<error_msg>consent_name contains a NUL byte</error_msg>"),
                        "{name:?}: {body}"
                    );
                    body
                }
                LookAlike::Lookup(email, _) | LookAlike::Create(email) if email.contains('\0') => {
                    let body = h
                        .post("lookup_account.php", &[("email_addr", email.as_str())])
                        .await;
                    prop_assert!(
                        body.contains("<error_msg>email_addr contains a NUL byte</error_msg>"),
                        "{email:?}: {body}"
                    );
                    body
                }
                LookAlike::ConsentName(name, flag, post) => {
                    let f = if *flag { "1" } else { "0" };
                    let p = [
                        ("account_key", key.as_str()),
                        ("consent_name", name.as_str()),
                        ("consent_flag", f),
                        ("consent_not_required", "0"),
                        ("consent_source", "x"),
                    ];
                    let body = if *post {
                        h.post("am_set_info.php", &p).await
                    } else {
                        h.call("am_set_info.php", &p).await
                    };
                    prop_assert!(body.contains("<success/>"), "{name:?}: {body}");
                    let w = common::tag(&body, "consent_warning").unwrap_or_default();
                    prop_assert!(w.contains("does not exist"), "{name:?}: {body}");
                    body
                }
                LookAlike::Lookup(email, with_hash) => {
                    let mut p = vec![("email_addr", email.as_str())];
                    if *with_hash {
                        p.push(("passwd_hash", hash.as_str()));
                    }
                    let body = h.post("lookup_account.php", &p).await;
                    prop_assert_eq!(
                        common::error_num(&body),
                        Some(-136),
                        "{:?}: {}",
                        email,
                        body
                    );
                    body
                }
                LookAlike::Create(email) => {
                    let p = [
                        ("email_addr", email.as_str()),
                        ("passwd_hash", hash.as_str()),
                        ("user_name", "Look Alike"),
                    ];
                    let body = h.post("create_account.php", &p).await;
                    prop_assert_eq!(
                        common::error_num(&body),
                        Some(-205),
                        "{:?}: {}",
                        email,
                        body
                    );
                    body
                }
            };
            prop_assert!(
                !body.contains(&key),
                "owner's key handed out: {c:?}: {body}"
            );
            prop_assert!(robust::well_formed(&body).is_ok(), "{body:?}");
            let after = robust::fingerprint(&mut conn).await;
            prop_assert_eq!(&before, &after, "rows changed by {:?}", c);
            conn.disconnect().await.ok();
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
