//! Terminal output shared by the subcommands: tables, JSON, and the
//! sanitiser (`boinc_ops::terminal`) everything printed goes through.

pub use boinc_ops::terminal::{clean, clean_text};

/// `--json` output: the exact data, with characters a terminal would act
/// on written as JSON escapes.
pub fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(v)?;
    println!("{}", boinc_ops::terminal::clean_json(&json));
    Ok(())
}

pub fn yes_no(v: i64) -> &'static str {
    if v != 0 {
        "yes"
    } else {
        "no"
    }
}

/// A table; every cell goes through [`clean`], so no caller can forget it.
pub fn print_table(head: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| clean(c)).collect())
        .collect();
    let rows = &rows;
    let mut width: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let n = cells.len();
        let mut s = String::new();
        for (i, (c, w)) in cells.into_iter().zip(&width).enumerate() {
            if i + 1 == n {
                s.push_str(c); // last column unpadded: no trailing spaces
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s
    };
    println!("{}", line(head.to_vec()));
    for r in rows {
        println!("{}", line(r.iter().map(String::as_str).collect()));
    }
}
