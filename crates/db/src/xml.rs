//! Text escaping shared by every XML writer (RPC replies, dump records).
//!
//! quick-xml escapes `< > & " '` but leaves characters XML 1.0 forbids;
//! dropping those is ours to do.

/// Is `c` allowed in an XML 1.0 document?
pub fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\u{9}' | '\u{A}' | '\u{D}'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// Escape `& < > " '` and drop characters XML forbids. Whitespace is kept
/// as is (for RPC replies).
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if is_xml_char(c) => out.push(c),
            _ => {}
        }
    }
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_specials_and_drops_forbidden() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(escape("x\u{0}y\u{1b}z\u{FFFE}"), "xyz");
        assert_eq!(escape("tab\there\nü"), "tab\there\nü");
    }
}
