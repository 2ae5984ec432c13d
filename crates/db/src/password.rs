//! Password hashes as BOINC stores them.
//!
//! Clients send `passwd_hash` = md5(password . lower(email)) as 32 hex
//! digits. New rows store PHP-compatible bcrypt (`$2y$10$...`) of that
//! string, so BOINC's PHP site (`password_verify`) logs them in; legacy
//! rows hold the md5 itself.

/// bcrypt cost PHP's PASSWORD_DEFAULT uses.
pub const BCRYPT_COST: u32 = 10;

/// The value to store in `user.passwd_hash`. CPU-heavy (~50-100 ms):
/// call it from a blocking thread, never on the async reactor.
pub fn hash_for_storage(sent_md5: &str) -> Result<String, bcrypt::BcryptError> {
    Ok(bcrypt::hash_with_result(sent_md5, BCRYPT_COST)?.format_for_version(bcrypt::Version::TwoY))
}

/// Does `sent` (the client's 32-hex hash) match the stored value?
/// bcrypt `$2y$/$2b$/$2a$`, or a legacy plain md5 equal to what was sent.
/// Also CPU-heavy for bcrypt rows: run it on a blocking thread.
pub fn verify(sent: &str, stored: &str) -> bool {
    if stored.starts_with("$2") {
        bcrypt::verify(sent, stored).unwrap_or(false)
    } else {
        !stored.is_empty() && constant_time_eq(sent.as_bytes(), stored.as_bytes())
    }
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

    #[test]
    fn stores_php_style_2y_and_verifies() {
        let sent = md5_hex("secretfoo@example.com");
        let stored = hash_for_storage(&sent).unwrap();
        assert!(stored.starts_with("$2y$10$"), "{stored}");
        assert!(verify(&sent, &stored));
        assert!(!verify(&md5_hex("other"), &stored));
    }

    #[test]
    fn accepts_2a_2b_and_legacy_md5() {
        let sent = md5_hex("pw");
        let h = bcrypt::hash_with_result(&sent, 4).unwrap();
        assert!(verify(&sent, &h.format_for_version(bcrypt::Version::TwoA)));
        assert!(verify(&sent, &h.format_for_version(bcrypt::Version::TwoB)));
        assert!(verify(&sent, &sent));
        assert!(!verify(&sent, &md5_hex("x")));
        assert!(!verify("", ""));
    }
}
