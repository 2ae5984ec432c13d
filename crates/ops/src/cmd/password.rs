//! `boinc-ops hash-password`: a bcrypt hash for `<ops_password_hash>`.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::bail;

pub fn hash_password() -> anyhow::Result<ExitCode> {
    let pass = read_password()?;
    let h = bcrypt::hash_with_result(pass, 12)?;
    println!("{}", h.format_for_version(bcrypt::Version::TwoY));
    Ok(ExitCode::SUCCESS)
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        eprint!("password (echoed; or pipe it in): ");
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let pass = line.trim_end_matches(['\r', '\n']).to_owned();
    if pass.len() < 8 {
        bail!("use a password of at least 8 characters");
    }
    if pass.len() > 72 {
        bail!("bcrypt uses at most 72 bytes of a password; use a shorter one");
    }
    Ok(pass)
}
