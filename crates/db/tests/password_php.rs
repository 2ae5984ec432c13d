//! PHP compatibility of `boinc_db::password`, both ways, against the real
//! php-cli (BOINC's web site verifies our hashes with password_verify and
//! we verify the hashes its password_hash wrote).

use std::process::Command;

use boinc_db::password::{self, md5_hex};

/// Run a PHP snippet with arguments; its stdout. Fails loudly without php.
fn php(code: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("php")
        .arg("-r")
        .arg(code)
        .args(args)
        .output()
        .expect("php (Debian package php-cli) must be installed for this test");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn php_verify(sent: &str, stored: &str) -> bool {
    let (ok, out) = php(
        "echo password_verify($argv[1], $argv[2]) ? 'yes' : 'no';",
        &[sent, stored],
    );
    assert!(ok, "php failed: {out}");
    match out.as_str() {
        "yes" => true,
        "no" => false,
        other => panic!("unexpected php output {other:?}"),
    }
}

#[test]
fn php_password_verify_accepts_our_hashes() {
    for email in ["php@example.com", "Ünïcode@example.org"] {
        let sent = md5_hex(&format!("secret{}", email.to_lowercase()));
        let stored = password::hash_for_storage(&sent).unwrap();
        assert!(stored.starts_with("$2y$10$"), "{stored}");
        assert!(php_verify(&sent, &stored), "PHP rejected our {stored}");
        assert!(!php_verify(&md5_hex("other"), &stored));
        // PHP reads the same algorithm and cost from it.
        let (ok, info) = php(
            "$i = password_get_info($argv[1]); echo $i['algoName'], ' ', $i['options']['cost'];",
            &[&stored],
        );
        assert!(ok);
        assert_eq!(info, "bcrypt 10");
    }
}

#[test]
fn we_accept_php_password_hash_output() {
    let sent = md5_hex("hunter2someone@example.com");
    let (ok, hashes) = php(
        "echo password_hash($argv[1], PASSWORD_DEFAULT), \"\\n\", \
              password_hash($argv[1], PASSWORD_BCRYPT, ['cost' => 10]), \"\\n\", \
              password_hash($argv[1], PASSWORD_BCRYPT, ['cost' => 4]), \"\\n\", \
              crypt($argv[1], '$2a$05$' . substr(strtr(base64_encode(random_bytes(16)), '+', '.'), 0, 22)), \"\\n\", \
              crypt($argv[1], '$2b$05$' . substr(strtr(base64_encode(random_bytes(16)), '+', '.'), 0, 22));",
        &[&sent],
    );
    assert!(ok, "{hashes}");
    let hashes: Vec<&str> = hashes.lines().collect();
    assert_eq!(hashes.len(), 5, "{hashes:?}");
    for (h, prefix) in hashes
        .iter()
        .zip(["$2y$10$", "$2y$10$", "$2y$04$", "$2a$05$", "$2b$05$"])
    {
        assert!(h.starts_with(prefix), "{h}");
        assert!(password::verify(&sent, h), "we rejected PHP's {h}");
        assert!(!password::verify(&md5_hex("nope"), h), "{h}");
        assert!(!password::verify("", h), "{h}");
    }
}
