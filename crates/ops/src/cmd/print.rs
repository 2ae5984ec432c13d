//! Terminal output shared by the subcommands: tables and sanitising.

/// Text from users or clients, made safe for a terminal: control
/// characters (escape sequences, newlines) are shown escaped.
pub fn clean(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let esc: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            esc
        })
        .collect()
}

pub fn yes_no(v: i64) -> &'static str {
    if v != 0 {
        "yes"
    } else {
        "no"
    }
}

pub fn print_table(head: &[&str], rows: &[Vec<String>]) {
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
