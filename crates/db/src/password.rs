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

/// Does `sent` (the client's 32-hex hash) match the stored value?
/// bcrypt `$2y$/$2b$/$2a$`, or a legacy plain md5 equal to what was sent.
/// Also CPU-heavy for bcrypt rows: run it on a blocking thread.
pub fn verify(sent: &str, stored: &str) -> bool {
    if stored.starts_with("$2") {
        verify_bcrypt(sent, stored)
    } else {
        !stored.is_empty() && constant_time_eq(sent.as_bytes(), stored.as_bytes())
    }
}

fn verify_bcrypt(sent: &str, stored: &str) -> bool {
    // `$2?$NN$` + 22 salt + 31 hash characters, cost within bounds;
    // anything else is refused before any work is done.
    let b = stored.as_bytes();
    if b.len() != 60 || b[3] != b'$' || b[6] != b'$' {
        return false;
    }
    let cost = match (b[4], b[5]) {
        (t @ b'0'..=b'9', u @ b'0'..=b'9') => u32::from(t - b'0') * 10 + u32::from(u - b'0'),
        _ => return false,
    };
    if !(4..=MAX_VERIFY_COST).contains(&cost) {
        return false;
    }
    let (Ok(phrase), Ok(setting)) = (CString::new(sent), CString::new(stored)) else {
        return false;
    };
    match crypt(&phrase, &setting) {
        Some(out) => constant_time_eq(out.as_bytes(), b),
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

/// One crypt_rn call with its own zeroed work area (thread-safe: nothing
/// shared between calls). None on failure, including libcrypt's `*`
/// failure tokens.
fn crypt(phrase: &CStr, setting: &CStr) -> Option<String> {
    // u64 elements: zeroed by calloc and aligned for the struct's fields.
    let mut data = vec![0u64; CRYPT_DATA_SIZE / 8];
    // SAFETY: both strings are NUL-terminated and outlive the call; `data`
    // is CRYPT_DATA_SIZE writable, zeroed, 8-aligned bytes used by this call
    // only. The result is NULL or points into `data`, and is copied out
    // before `data` is dropped.
    let out = unsafe {
        let r = crypt_rn(
            phrase.as_ptr(),
            setting.as_ptr(),
            data.as_mut_ptr().cast(),
            CRYPT_DATA_SIZE as c_int,
        );
        if r.is_null() {
            return None;
        }
        CStr::from_ptr(r).to_str().ok()?.to_owned()
    };
    data.fill(0);
    std::hint::black_box(&data);
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
