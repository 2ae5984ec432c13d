//! The one sanitiser for text the `boinc-ops` CLI prints. Database text
//! (consent-type descriptions, names, sources, audit values) is written
//! by admins, clients and volunteers, so it may carry terminal escape
//! sequences (ESC ] 0 ; title BEL, ESC [ 2 J), other C0/C1 controls, or
//! Unicode bidi controls that reorder what the admin reads (U+202E). Each
//! such character is shown escaped as Rust writes it (`\u{1b}`,
//! `\u{202e}`; `\n`, `\r`, `\t`) instead.
//! Backslashes are left alone: the aim is a safe, readable terminal, not
//! a reversible encoding (`--json` is the exact export).

/// Invisible format characters shown escaped: bidi embeddings, overrides
/// and isolates, directional marks, and zero-width characters and line
/// separators that hide or fake text.
fn is_hidden_format(c: char) -> bool {
    matches!(c,
        '\u{061C}'                // Arabic letter mark
        | '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM, RLM
        | '\u{2028}' | '\u{2029}' // line / paragraph separator
        | '\u{202A}'..='\u{202E}' // LRE RLE PDF LRO RLO
        | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}' // LRI RLI FSI PDI
        | '\u{FEFF}'              // zero-width no-break space (BOM)
        | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
    )
}

/// Whether `c` must not reach a terminal raw: C0 (incl. ESC, BEL, CR,
/// LF, TAB), DEL, C1, and the hidden format characters above.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_hidden_format(c)
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// One line of output: every unsafe character escaped, newlines included.
pub fn clean(s: &str) -> String {
    if !s.chars().any(is_unsafe) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// A multi-line text (terms of use, error messages): line feeds, tabs and
/// the CR of a CRLF stay as they are, everything else unsafe is escaped.
pub fn clean_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let keep = match c {
            '\n' | '\t' => true,
            '\r' => chars.peek() == Some(&'\n'),
            c => !is_unsafe(c),
        };
        if keep {
            out.push(c);
        } else {
            push_escaped(&mut out, c);
        }
    }
    out
}

/// JSON for a terminal: serde_json already escapes C0 controls; DEL, C1
/// and the hidden format characters become `\uXXXX` escapes, which JSON
/// readers decode to the same string.
pub fn clean_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if is_unsafe(c) {
            // Outside strings serde_json writes only ASCII whitespace,
            // which is_control would match: keep that as it is.
            if matches!(c, '\n' | '\r' | '\t') {
                out.push(c);
            } else {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bidi() {
        let s = "a\u{1b}]0;t\u{7}\u{1b}[2J\u{202e}b\u{7f}\u{9b}\u{2066}\n";
        assert_eq!(
            clean(s),
            "a\\u{1b}]0;t\\u{7}\\u{1b}[2J\\u{202e}b\\u{7f}\\u{9b}\\u{2066}\\n"
        );
        assert_eq!(clean_text("x\r\ny\rz\n\u{202e}"), "x\r\ny\\rz\n\\u{202e}");
        assert_eq!(clean("plain é ü 中"), "plain é ü 中");
        let j = serde_json::to_string("\u{1b}\u{9b}\u{202e}").unwrap();
        let c = clean_json(&j);
        assert!(!c.chars().any(is_unsafe), "{c}");
        assert_eq!(
            serde_json::from_str::<String>(&c).unwrap(),
            "\u{1b}\u{9b}\u{202e}"
        );
    }
}
