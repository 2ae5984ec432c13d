//! Password hashes as BOINC stores them.
//!
//! Clients send `passwd_hash` = md5(password . lower(email)) as 32 hex
//! digits. New rows store PHP-compatible bcrypt (`$2y$10$...`) of that
//! string, so BOINC's PHP site (`password_verify`) logs them in; legacy
//! rows hold the md5 itself.
//!
//! bcrypt itself is the system's libcrypt (libxcrypt, `crypt_rn`): the
//! same C code PHP's own bcrypt descends from, as fast as PHP's
//! `password_hash` and ~15% faster than the pure-Rust `bcrypt` crate on
//! this project's machines (figures in crates/rpc/PERFORMANCE.md). Linking
//! needs `libcrypt.so` (Debian: libcrypt-dev, which libc6-dev pulls in).

use std::ffi::{c_char, c_int, c_void, CStr, CString};

use rand::TryRngCore as _;

/// bcrypt cost PHP's PASSWORD_DEFAULT uses.
pub const BCRYPT_COST: u32 = 10;

/// Highest bcrypt cost `verify` accepts. Each step doubles the work: cost
/// 16 is ~4 s on one core, cost 31 would be days, so a corrupt or foreign
/// row cannot pin a hashing thread.
pub const MAX_VERIFY_COST: u32 = 16;

/// Why a hash could not be made. Never carries the password.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("the password contains a NUL byte")]
    Nul,
    #[error("no random bytes for the salt: {0}")]
    Random(String),
    #[error("libcrypt could not compute the bcrypt hash")]
    Crypt,
}

/// The value to store in `user.passwd_hash`. CPU-heavy (~60 ms):
/// call it from a blocking thread, never on the async reactor.
pub fn hash_for_storage(sent_md5: &str) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|e| HashError::Random(e.to_string()))?;
    let setting = setting_2y(BCRYPT_COST, &salt);
    let phrase = CString::new(sent_md5).map_err(|_| HashError::Nul)?;
    let out = crypt(&phrase, &setting).ok_or(HashError::Crypt)?;
    // A well-formed result repeats the setting and adds 31 hash chars.
    if out.len() != 60 || !out.as_bytes().starts_with(setting.as_bytes()) {
        return Err(HashError::Crypt);
    }
    Ok(out)
}

/// What a stored `user.passwd_hash` can be checked as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// `$2a$` / `$2b$` / `$2y$` with a cost we verify: checked by bcrypt.
    Bcrypt,
    /// 32 hex digits: a legacy md5 row, compared with what was sent.
    Md5,
    /// Anything else (another crypt scheme such as `$argon2id$` or `$6$`,
    /// a malformed or too costly bcrypt row, a word, empty): no password
    /// ever matches it. The reason names the shape, never the value.
    Unusable(&'static str),
}

/// Classify a stored hash (cheap: no hashing).
pub fn classify(stored: &str) -> Stored {
    let b = stored.as_bytes();
    if b.len() == 32 && b.iter().all(u8::is_ascii_hexdigit) {
        return Stored::Md5;
    }
    if !(b.starts_with(b"$2a$") || b.starts_with(b"$2b$") || b.starts_with(b"$2y$")) {
        return Stored::Unusable(if b.is_empty() {
            "it is empty"
        } else if b.starts_with(b"$") {
            "it is a crypt scheme other than bcrypt"
        } else {
            "it is neither bcrypt nor a 32-hex md5"
        });
    }
    // `$2?$NN$` + 22 salt + 31 hash characters, cost within bounds.
    if b.len() != 60 || b[6] != b'$' {
        return Stored::Unusable("it is a malformed bcrypt hash");
    }
    match (b[4], b[5]) {
        (t @ b'0'..=b'9', u @ b'0'..=b'9') => {
            let cost = u32::from(t - b'0') * 10 + u32::from(u - b'0');
            if !(4..=MAX_VERIFY_COST).contains(&cost) {
                return Stored::Unusable("its bcrypt cost is outside 04..16");
            }
        }
        _ => return Stored::Unusable("it is a malformed bcrypt hash"),
    }
    if !b[7..]
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'/'))
    {
        return Stored::Unusable("it is a malformed bcrypt hash");
    }
    Stored::Bcrypt
}

/// Does `sent` (the client's 32-hex hash) match the stored value?
/// Only bcrypt rows (`$2y$/$2b$/$2a$`) verify by bcrypt, and only 32-hex
/// md5 rows compare with what was sent (byte for byte, so case counts, as
/// PHP's `==` on such strings); nothing matches any other stored value.
/// Also CPU-heavy for bcrypt rows: run it on a blocking thread.
pub fn verify(sent: &str, stored: &str) -> bool {
    match classify(stored) {
        Stored::Bcrypt => verify_bcrypt(sent, stored),
        Stored::Md5 => constant_time_eq(sent.as_bytes(), stored.as_bytes()),
        Stored::Unusable(_) => false,
    }
}

/// [`verify`] for the account `userid`; a stored value no password can
/// match is said once per account (per process) at WARN, with why but
/// never the value, so the admin learns that this account cannot log in.
pub fn verify_account(userid: i64, sent: &str, stored: &str) -> bool {
    if let Stored::Unusable(why) = classify(stored) {
        if first_warning_for(userid) {
            tracing::warn!(
                userid,
                "this account's stored password hash can never match ({why}); \
                 only bcrypt ($2y$/$2b$/$2a$) and 32-hex md5 rows are checked"
            );
        }
        return false;
    }
    verify(sent, stored)
}

/// Accounts already warned about; bounded: when full it starts over (so a
/// warning may repeat after that many distinct accounts).
fn first_warning_for(userid: i64) -> bool {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    const MAX_REMEMBERED: usize = 65_536;
    static WARNED: OnceLock<Mutex<HashSet<i64>>> = OnceLock::new();
    let mut set = WARNED
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if set.len() >= MAX_REMEMBERED {
        set.clear();
    }
    set.insert(userid)
}

fn verify_bcrypt(sent: &str, stored: &str) -> bool {
    let (Ok(phrase), Ok(setting)) = (CString::new(sent), CString::new(stored)) else {
        return false;
    };
    match crypt(&phrase, &setting) {
        Some(out) => constant_time_eq(out.as_bytes(), stored.as_bytes()),
        None => false,
    }
}

/// `$2y$NN$` + the 16 salt bytes in bcrypt's base64 (22 characters),
/// exactly as PHP's password_hash writes it.
fn setting_2y(cost: u32, salt: &[u8; 16]) -> CString {
    let s = format!("$2y${cost:02}${}", bcrypt_base64(salt));
    CString::new(s).expect("ASCII without NUL")
}

/// bcrypt's base64: its own alphabet, no padding. 16 bytes -> 22 chars,
/// the last one carrying 2 bits (so it is one of `.Oeu`).
fn bcrypt_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &x)| acc | u32::from(x) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// libxcrypt's `struct crypt_data` is 32768 bytes; crypt_rn refuses (NULL)
/// a smaller buffer, so a mismatch fails safely.
const CRYPT_DATA_SIZE: usize = 32768;

#[link(name = "crypt")]
extern "C" {
    /// libxcrypt: reentrant, all state in `data`; NULL on any failure.
    fn crypt_rn(
        phrase: *const c_char,
        setting: *const c_char,
        data: *mut c_void,
        size: c_int,
    ) -> *mut c_char;
}

/// crypt_rn's work area: zeroed when made and scrubbed when dropped, so
/// every way out of `crypt` (failure, early return, panic) clears what
/// libcrypt left in it (the phrase's key schedule, the output).
struct WorkArea(Vec<u64>);

impl WorkArea {
    fn new() -> Self {
        // u64 elements: zeroed by calloc and aligned for the struct's fields.
        Self(vec![0u64; CRYPT_DATA_SIZE / 8])
    }
}

impl Drop for WorkArea {
    fn drop(&mut self) {
        #[cfg(test)]
        let dirty = self.0.iter().any(|w| *w != 0);
        for w in self.0.iter_mut() {
            // SAFETY: `w` is a valid, aligned, exclusive reference.
            // Volatile, so the stores are not elided as dead before free.
            unsafe { std::ptr::write_volatile(w, 0) };
        }
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        #[cfg(test)]
        tests::record_scrub(dirty, self.0.iter().all(|w| *w == 0));
    }
}

/// One crypt_rn call with its own zeroed work area (thread-safe: nothing
/// shared between calls). None on failure, including libcrypt's `*`
/// failure tokens.
fn crypt(phrase: &CStr, setting: &CStr) -> Option<String> {
    let mut area = WorkArea::new();
    // SAFETY: both strings are NUL-terminated and outlive the call; the
    // area is CRYPT_DATA_SIZE writable, zeroed, 8-aligned bytes used by this
    // call only. The result is NULL or points into the area, and is copied
    // out before the area is dropped (and scrubbed).
    let out = unsafe {
        let r = crypt_rn(
            phrase.as_ptr(),
            setting.as_ptr(),
            area.0.as_mut_ptr().cast(),
            CRYPT_DATA_SIZE as c_int,
        );
        if r.is_null() {
            return None;
        }
        CStr::from_ptr(r).to_str().ok()?.to_owned()
    };
    (!out.is_empty() && !out.starts_with('*')).then_some(out)
}

/// Compare secrets without an early exit that would leak where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// md5 hex of a string (BOINC's passwd_hash, cpid and weak-auth values).
pub fn md5_hex(s: &str) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Work areas dropped on this thread: (count, how many held
        /// something, how many were all zero afterwards).
        static SCRUBS: Cell<(usize, usize, usize)> = const { Cell::new((0, 0, 0)) };
    }

    pub(super) fn record_scrub(dirty: bool, zero_after: bool) {
        SCRUBS.with(|s| {
            let (n, d, z) = s.get();
            s.set((n + 1, d + usize::from(dirty), z + usize::from(zero_after)));
        });
    }

    fn scrubs() -> (usize, usize, usize) {
        SCRUBS.with(Cell::get)
    }

    #[test]
    fn the_work_area_is_scrubbed_on_every_way_out() {
        let phrase = CString::new(SENT).unwrap();
        // (setting, what crypt returns): a success, libcrypt's NULL for a
        // setting it refuses (it writes a failure token first), and a
        // setting of an unknown scheme.
        let cases: [(&str, bool); 4] = [
            (
                "$2y$04$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbP0ry",
                true,
            ),
            (
                "$2y$04$!!!!!!!!!!!!!!!!!!!!!!cGpovuVI.iBBVPIKooRP7BRV9cbP0ry",
                false,
            ),
            (
                "$2y$99$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbP0ry",
                false,
            ),
            ("$nope$", false),
        ];
        for (setting, ok) in cases {
            let before = scrubs();
            let out = crypt(&phrase, &CString::new(setting).unwrap());
            assert_eq!(out.is_some(), ok, "{setting}");
            let after = scrubs();
            assert_eq!(after.0, before.0 + 1, "{setting}: one area, dropped once");
            assert_eq!(after.1, before.1 + 1, "{setting}: libcrypt wrote into it");
            assert_eq!(after.2, before.2 + 1, "{setting}: all zero afterwards");
        }
    }

    #[test]
    fn only_bcrypt_and_32_hex_md5_rows_can_match() {
        let md5 = md5_hex("pw");
        assert_eq!(classify(&md5), Stored::Md5);
        assert_eq!(classify(&md5.to_uppercase()), Stored::Md5);
        for h in [
            "$2y$04$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbP0ry",
            "$2a$05$abcdefghijklmnopqrstuuyDgvU86J5tzYM.8j584.GIrpJq/WXmW",
            "$2b$05$abcdefghijklmnopqrstuuyDgvU86J5tzYM.8j584.GIrpJq/WXmW",
        ] {
            assert_eq!(classify(h), Stored::Bcrypt, "{h}");
        }
        // Each of these, sent exactly as stored, matched before (the
        // plain-text fallback); none may now.
        for stored in [
            "$argon2id$v=19$m=65536,t=4,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
            "$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$Z9Vh0kY9tq3kq1ESjYtVJQ",
            "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/",
            "$5$rounds=5000$usesomesillystri$KqJWpanXZHKq2BOB43TSaYhEWsQ1Lr5QNyPCDH/Tp.6",
            "$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0",
            "$2x$05$abcdefghijklmnopqrstuuyDgvU86J5tzYM.8j584.GIrpJq/WXmW",
            "$2y$17$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbP0ry",
            "hunter2",
            "password",
            "0123456789abcdef0123456789abcdeg",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            " 0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcde\u{0}",
            "*0",
        ] {
            assert!(
                matches!(classify(stored), Stored::Unusable(_)),
                "{stored:?} classified as {:?}",
                classify(stored)
            );
            assert!(!verify(stored, stored), "{stored:?} matched itself");
        }
        assert!(matches!(classify(""), Stored::Unusable(_)));
        assert!(!verify("", ""));
    }

    #[test]
    fn md5_rows_compare_exactly_case_included() {
        let lower = md5_hex("pw");
        let upper = lower.to_uppercase();
        assert!(verify(&lower, &lower));
        assert!(verify(&upper, &upper), "PHP's == matches the same bytes");
        assert!(
            !verify(&lower, &upper),
            "PHP's == on hex strings is case-sensitive"
        );
        assert!(!verify(&upper, &lower));
        // PHP's == compares numeric strings as numbers ("magic hashes":
        // both are 0e... = 0); we never do.
        let (a, b) = (
            "0e462097431906509019562988736854",
            "0e830400451993494058024219903391",
        );
        assert_eq!(classify(a), Stored::Md5);
        assert!(!verify(a, b) && !verify(b, a));
        let digits = "12345678901234567890123456789012";
        assert!(!verify("12345678901234567890123456789013", digits));
    }

    #[test]
    fn unusable_rows_are_reported_once_per_account() {
        // The account set is process-wide: ids no other test uses.
        assert!(first_warning_for(-9_000_001));
        assert!(!first_warning_for(-9_000_001));
        assert!(first_warning_for(-9_000_002));
        assert!(!verify_account(-9_000_003, "hunter2", "hunter2"));
        assert!(!first_warning_for(-9_000_003), "verify_account noted it");
        let md5 = md5_hex("pw");
        assert!(verify_account(-9_000_004, &md5, &md5));
        assert!(first_warning_for(-9_000_004), "a usable row is never noted");
    }

    /// md5("secret" . "vec@example.com"): what a client sends.
    const SENT: &str = "c95e6b61059270c076a6e6bc90963a92";

    #[test]
    fn stores_php_style_2y_and_verifies() {
        let stored = hash_for_storage(SENT).unwrap();
        assert_eq!(stored.len(), 60, "{stored}");
        assert!(stored.starts_with("$2y$10$"), "{stored}");
        assert!(verify(SENT, &stored));
        assert!(!verify(&md5_hex("other"), &stored));
        // Fresh salt every time.
        assert_ne!(stored[..29], hash_for_storage(SENT).unwrap()[..29]);
    }

    #[test]
    fn known_vectors_from_php() {
        // php -r 'echo password_hash($pw, PASSWORD_BCRYPT, ["cost"=>4]);' and
        // crypt($pw, '$2a$05$...') / '$2b$05$...' (PHP 8.2).
        for h in [
            "$2y$04$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbP0ry",
            "$2y$10$S20jtRJIHk37w4VUdVifzuX3ju..VUg3yFxc8PuQ578DigjlBqoIW",
            "$2a$05$abcdefghijklmnopqrstuuyDgvU86J5tzYM.8j584.GIrpJq/WXmW",
            "$2b$05$abcdefghijklmnopqrstuuyDgvU86J5tzYM.8j584.GIrpJq/WXmW",
        ] {
            assert!(verify(SENT, h), "{h}");
            assert!(!verify(&md5_hex("wrong"), h), "{h}");
        }
        // crypt_blowfish's published test vector.
        assert!(verify(
            "U*U",
            "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
        ));
        // crypt("", '$2y$04$abcdefghijklmnopqrstuu') in PHP: empty input.
        assert!(verify(
            "",
            "$2y$04$abcdefghijklmnopqrstuubyCG3zY1GIXMyxfivm.ClDiInHzxjiq"
        ));
    }

    #[test]
    fn known_vectors_from_the_bcrypt_crate() {
        // bcrypt 0.17: hash_with_salt(md5("a"), 5, *b"boinc-consent-16")
        // formatted as each version.
        let sent = md5_hex("a");
        for v in ["2a", "2b", "2y"] {
            let h = format!("${v}$05$Wk7nZkKrW07sa0TsbAyvLeiqgySC4v2tIKuIgyZIRxX1mPGaJ98gi");
            assert!(verify(&sent, &h), "{h}");
            assert!(!verify(SENT, &h), "{h}");
        }
    }

    #[test]
    fn agrees_with_the_bcrypt_crate_both_ways() {
        let sent = md5_hex("both@example.com");
        let ours = hash_for_storage(&sent).unwrap();
        assert!(bcrypt::verify(&sent, &ours).unwrap());
        assert!(!bcrypt::verify(md5_hex("x"), &ours).unwrap());
        let theirs = bcrypt::hash_with_result(&sent, 4).unwrap();
        for v in [
            bcrypt::Version::TwoA,
            bcrypt::Version::TwoB,
            bcrypt::Version::TwoY,
        ] {
            let h = theirs.format_for_version(v);
            assert!(verify(&sent, &h), "{h}");
            assert!(!verify(&md5_hex("x"), &h), "{h}");
        }
    }

    #[test]
    fn legacy_md5_rows() {
        let sent = md5_hex("pw");
        assert!(verify(&sent, &sent));
        assert!(!verify(&sent, &md5_hex("x")));
        assert!(!verify("", ""));
        assert!(!verify(&sent, ""));
    }

    #[test]
    fn wrong_or_hostile_input_is_false_not_a_panic() {
        let stored = "$2y$04$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbP0ry";
        assert!(!verify("", stored));
        assert!(!verify("c95e6b61059270c076a6e6bc90963a9", stored)); // one short
        assert!(!verify("C95E6B61059270C076A6E6BC90963A92", stored)); // case
        assert!(!verify("c95e6b61059270c076a6e6bc90963a92\0x", stored)); // NUL
        assert!(!verify(&"a".repeat(100_000), stored)); // past libcrypt's limit
        assert!(!verify("c95e6b61059270c076a6e6bc90963a92 ", stored));
        assert!(matches!(hash_for_storage("a\0b"), Err(HashError::Nul)));
    }

    #[test]
    fn malformed_hashes_are_false_not_a_panic() {
        let good = "$2y$04$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbP0ry";
        let mut bad: Vec<String> = [
            "$",
            "$2",
            "$2y",
            "$2y$",
            "$2y$04",
            "$2y$04$",
            "$2y$04$7GS.kt0dggB7qIot5h6cdO",
            "$2$04$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbP0ry1",
            "$2z$04$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbP0ry",
            "$2y$4$$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbP0ry",
            "$2y$-4$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbP0ry",
            "$2y$03$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbP0ry",
            "$2y$31$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbP0ry",
            "$2y$99$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbP0ry",
            "$2y$04$!!!!!!!!!!!!!!!!!!!!!!cGpovuVI.iBBVPIKooRP7BRV9cbP0ry",
            "$2y$04$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbP0r!",
            "$2y$04$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbP0rY",
            "$2y$04$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbP0ry ",
            " $2y$04$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbP0ry",
            "$2y$04$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbP\0ry",
            "$2y$04$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cbPéy",
            "$2y$０４$7GS.kt0dggB7qIot5h6cdOcGpovuVI.iBBVPIKooRP7BRV9cb",
            "*0",
            "*1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        bad.push(good.repeat(1000));
        bad.push(format!("{good}\u{200b}"));
        for h in &bad {
            assert!(!verify(SENT, h), "{h:?}");
        }
        assert!(verify(SENT, good));
    }

    #[test]
    fn salts_are_22_bcrypt_base64_chars_from_16_random_bytes() {
        const ALPHABET: &str = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        // bcrypt's base64 of known bytes (as PHP's encoder and the bcrypt
        // crate produce them).
        assert_eq!(bcrypt_base64(&[0u8; 16]), "......................");
        assert_eq!(bcrypt_base64(&[0xff; 16]), "999999999999999999999u");
        assert_eq!(bcrypt_base64(b"boinc-consent-16"), "Wk7nZkKrW07sa0TsbAyvLe");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let h = hash_setting_for_test();
            assert_eq!(h.len(), 29, "{h}");
            assert!(h.starts_with("$2y$10$"), "{h}");
            let salt = &h[7..];
            assert!(salt.chars().all(|c| ALPHABET.contains(c)), "{h}");
            assert!(
                ".Oeu".contains(&salt[21..]),
                "{h}: last char carries 2 bits"
            );
            assert!(seen.insert(salt.to_owned()), "salt repeated: {salt}");
        }
    }

    /// The setting `hash_for_storage` would use, without the 60 ms hash.
    fn hash_setting_for_test() -> String {
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.try_fill_bytes(&mut salt).unwrap();
        setting_2y(BCRYPT_COST, &salt).into_string().unwrap()
    }

    #[test]
    fn concurrent_calls_are_thread_safe() {
        // Each thread checks its own hash many times while the others do
        // the same: any shared state in the FFI path would mix results.
        let threads: Vec<_> = (0..8)
            .map(|i| {
                std::thread::spawn(move || {
                    let sent = md5_hex(&format!("t{i}"));
                    let other = md5_hex(&format!("t{}", i + 1));
                    let h = bcrypt::hash(&sent, 4).unwrap();
                    for _ in 0..40 {
                        assert!(verify(&sent, &h));
                        assert!(!verify(&other, &h));
                    }
                    if i % 2 == 0 {
                        let ours = hash_for_storage(&sent).unwrap();
                        assert!(verify(&sent, &ours) && !verify(&other, &ours));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}
