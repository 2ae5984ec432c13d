//! Every value of a generated row: pure functions of (seed, id, salt).

/// splitmix64: a well-mixed 64-bit value per (seed, id, salt).
pub(super) fn mix(seed: u64, id: u64, salt: u64) -> u64 {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(id.wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(salt.wrapping_mul(0x94D0_49BB_1331_11EB))
        .wrapping_add(0x2545_F491_4F6C_DD1D);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in [0, 1).
pub(super) fn unit(seed: u64, id: u64, salt: u64) -> f64 {
    (mix(seed, id, salt) >> 11) as f64 / (1u64 << 53) as f64
}

pub(super) fn hex32(seed: u64, id: u64, salt: u64) -> String {
    format!(
        "{:016x}{:016x}",
        mix(seed, id, salt),
        mix(seed, id, salt + 1000)
    )
}

/// A credit: `zero_share` of them 0, the rest spread over six decades.
pub(super) fn credit(seed: u64, id: u64, salt: u64, zero_share: f64) -> f64 {
    let u = unit(seed, id, salt);
    if u < zero_share {
        0.0
    } else {
        let x = unit(seed, id, salt + 1);
        (10f64.powf(x * 6.0) * 100.0).round() / 100.0
    }
}

/// The STATSEXPORT history of a user, as (flag, time offset from the
/// user's base time) in insertion order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    NeverAsked,
    Consented,
    Declined,
    /// 1 then 0, `days_ago` the withdrawal.
    Withdrew {
        days_ago: i64,
    },
    /// 1 then 0 in the same second (0 inserted later: withdrawn).
    TieWithdrew {
        days_ago: i64,
    },
    /// 0 then 1 in the same second (1 inserted later: consented).
    TieConsented,
    /// 1, 0, 1.
    Reconsented,
}

pub fn history(seed: u64, uid: u64) -> History {
    let u = unit(seed, uid, 7);
    let days = (unit(seed, uid, 8) * 120.0) as i64;
    match u {
        x if x < 0.15 => History::NeverAsked,
        x if x < 0.78 => History::Consented,
        x if x < 0.83 => History::Declined,
        x if x < 0.91 => History::Withdrew { days_ago: days },
        x if x < 0.93 => History::TieWithdrew { days_ago: days },
        x if x < 0.95 => History::TieConsented,
        _ => History::Reconsented,
    }
}

pub fn user_deleted(seed: u64, uid: u64) -> bool {
    unit(seed, uid, 9) < 0.01
}

pub fn user_credit(seed: u64, uid: u64) -> f64 {
    credit(seed, uid, 10, 0.4)
}

pub(super) const NAMES: &[&str] = &[
    "volunteer",
    "Zoë Straße",
    "Иван Петров",
    "李小龙",
    "A&B <crunchers>",
    "\"quoted\" 'name'",
    "rocket 🚀",
    "tab\there",
    "line\nbreak",
    "]]> cdata end",
    "ctl\u{1}char",
    "ağ café naïve",
];

pub(super) const COUNTRIES: &[&str] = &[
    "",
    "",
    "United States",
    "Germany",
    "Côte d'Ivoire",
    "Japan",
    "Brazil",
    "Trinidad & Tobago",
];

/// SQL string literal (default sql_mode: backslash escapes on).
pub(super) fn lit(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('\'');
    for c in s.chars() {
        match c {
            '\'' => o.push_str("''"),
            '\\' => o.push_str("\\\\"),
            '\0' => o.push_str("\\0"),
            c => o.push(c),
        }
    }
    o.push('\'');
    o
}

pub(super) fn pick<'a>(list: &[&'a str], seed: u64, id: u64, salt: u64) -> &'a str {
    list[(mix(seed, id, salt) % list.len() as u64) as usize]
}
