//! Edits to a BOINC `config.xml` that leave every other byte as it was:
//! the file is scanned for the byte spans of `<config>`, `<daemons>`,
//! `<tasks>` and their children, and only those spans are rewritten.
//! Inserted elements take whole lines, indented like their neighbours, so
//! removing them again restores the original bytes.

use quick_xml::events::Event;
use quick_xml::Reader;

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("config.xml is not valid XML: {0}")]
    Xml(String),
    #[error("config.xml has no <boinc> element")]
    NoRoot,
}

/// One `<daemon>` or `<task>`.
#[derive(Debug, Clone)]
pub struct Item {
    /// The element's bytes, `<daemon>` to `</daemon>`.
    pub start: usize,
    pub end: usize,
    /// `<cmd>` text, trimmed.
    pub cmd: String,
    /// Span of `<cmd>`'s content (between the tags).
    pub cmd_span: Option<(usize, usize)>,
    /// `<disabled>` (the last one, as BOINC's `bin/start` keeps the last).
    pub disabled: Option<Disabled>,
    /// `<output>` and `<period>` text, trimmed (tasks).
    pub output: Option<String>,
    pub period: Option<String>,
}

impl Item {
    /// Program name: basename of the command's first word (as `bin/start`
    /// names pid, lock and log files).
    pub fn program(&self) -> &str {
        program(&self.cmd)
    }

    /// Whether BOINC's `bin/start` leaves it alone: a `<disabled>` whose
    /// text is anything but exactly `0` (start compares the raw text, so
    /// ` 0 ` disables too). An empty `<disabled/>` counts as disabled, as
    /// start's documentation says, although start's parser reads the empty
    /// text as "not disabled": install writes such a task out as
    /// `<disabled>1</disabled>` so both agree.
    pub fn is_disabled(&self) -> bool {
        self.disabled.as_ref().is_some_and(|d| d.text != "0")
    }
}

/// A `<disabled>` element: its whole span (`<disabled/>` or
/// `<disabled>..</disabled>`) and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disabled {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

impl Disabled {
    /// `<disabled/>`, `<disabled></disabled>`: nothing inside.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
}

pub fn program(cmd: &str) -> &str {
    let first = cmd.split_whitespace().next().unwrap_or("");
    first.rsplit('/').next().unwrap_or(first)
}

/// A `<daemons>` or `<tasks>` section (or `<config>`, whose items are
/// not collected).
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// Whole element span, if present.
    pub span: Option<(usize, usize)>,
    /// Start of the closing tag (None for `<daemons/>`).
    pub close: Option<usize>,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone)]
pub struct Layout {
    pub root_start: usize,
    /// Start of `</boinc>`.
    pub root_close: usize,
    pub config: Section,
    /// Direct children of `<config>`: name, element span, text.
    pub config_keys: Vec<(String, usize, usize, String)>,
    pub daemons: Section,
    pub tasks: Section,
}

pub fn scan(text: &str) -> Result<Layout, EditError> {
    let mut reader = Reader::from_str(text);
    let mut path: Vec<(String, usize)> = Vec::new();
    let mut root: Option<(usize, usize)> = None;
    let mut config = Section::default();
    let mut daemons = Section::default();
    let mut tasks = Section::default();
    let mut keys = Vec::new();
    let mut item: Option<Item> = None;
    let mut key_text = String::new();
    let mut field_text = String::new();
    let mut disabled_start = 0usize;
    let mut field_open = 0usize;
    loop {
        let before = reader.buffer_position() as usize;
        let ev = reader
            .read_event()
            .map_err(|e| EditError::Xml(format!("at byte {}: {e}", reader.error_position())))?;
        let after = reader.buffer_position() as usize;
        let names: Vec<&str> = path.iter().map(|(n, _)| n.as_str()).collect();
        match ev {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                match (names.as_slice(), name.as_str()) {
                    (["boinc", "daemons"], "daemon") | (["boinc", "tasks"], "task") => {
                        item = Some(Item {
                            start: before,
                            end: before,
                            cmd: String::new(),
                            cmd_span: None,
                            disabled: None,
                            output: None,
                            period: None,
                        })
                    }
                    (["boinc", "config"], _) => key_text.clear(),
                    (["boinc", _, _], "cmd" | "output" | "period") => {
                        field_text.clear();
                        field_open = after;
                    }
                    (["boinc", _, _], "disabled") => {
                        field_text.clear();
                        disabled_start = before;
                    }
                    _ => {}
                }
                path.push((name, before));
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                match (names.as_slice(), name.as_str()) {
                    (["boinc"], "daemons") => daemons.span = Some((before, after)),
                    (["boinc"], "tasks") => tasks.span = Some((before, after)),
                    (["boinc"], "config") => config.span = Some((before, after)),
                    (["boinc", "config"], _) => keys.push((name, before, after, String::new())),
                    (["boinc", _, _], "disabled") => {
                        if let Some(it) = item.as_mut() {
                            it.disabled = Some(Disabled {
                                start: before,
                                end: after,
                                text: String::new(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| EditError::Xml(e.to_string()))?;
                let s =
                    quick_xml::escape::unescape(&s).map_err(|e| EditError::Xml(e.to_string()))?;
                field_text.push_str(&s);
                key_text.push_str(&s);
            }
            Event::GeneralRef(r) => {
                let s = format!("&{};", String::from_utf8_lossy(&r));
                let s =
                    quick_xml::escape::unescape(&s).map_err(|e| EditError::Xml(e.to_string()))?;
                field_text.push_str(&s);
                key_text.push_str(&s);
            }
            Event::CData(t) => {
                let s = String::from_utf8_lossy(&t).into_owned();
                field_text.push_str(&s);
                key_text.push_str(&s);
            }
            Event::End(_) => {
                let (name, start) = path.pop().unwrap_or_default();
                let names: Vec<&str> = path.iter().map(|(n, _)| n.as_str()).collect();
                match (names.as_slice(), name.as_str()) {
                    ([], "boinc") => root = Some((start, before)),
                    (["boinc"], "daemons") => {
                        daemons.span = Some((start, after));
                        daemons.close = Some(before);
                    }
                    (["boinc"], "tasks") => {
                        tasks.span = Some((start, after));
                        tasks.close = Some(before);
                    }
                    (["boinc"], "config") => {
                        config.span = Some((start, after));
                        config.close = Some(before);
                    }
                    (["boinc", "config"], _) => {
                        keys.push((name, start, after, key_text.trim().to_owned()))
                    }
                    (["boinc", section], "daemon" | "task") => {
                        if let Some(mut it) = item.take() {
                            it.end = after;
                            if *section == "daemons" {
                                daemons.items.push(it);
                            } else {
                                tasks.items.push(it);
                            }
                        }
                    }
                    (["boinc", _, _], "cmd") => {
                        if let Some(it) = item.as_mut() {
                            it.cmd = field_text.trim().to_owned();
                            it.cmd_span = Some((field_open, before));
                        }
                    }
                    (["boinc", _, _], "output") => {
                        if let Some(it) = item.as_mut() {
                            it.output = Some(field_text.trim().to_owned());
                        }
                    }
                    (["boinc", _, _], "period") => {
                        if let Some(it) = item.as_mut() {
                            it.period = Some(field_text.trim().to_owned());
                        }
                    }
                    (["boinc", _, _], "disabled") => {
                        if let Some(it) = item.as_mut() {
                            it.disabled = Some(Disabled {
                                start: disabled_start,
                                end: after,
                                text: field_text.clone(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let (root_start, root_close) = root.ok_or(EditError::NoRoot)?;
    Ok(Layout {
        root_start,
        root_close,
        config,
        config_keys: keys,
        daemons,
        tasks,
    })
}

/// "\r\n" if the file uses it, else "\n".
pub fn newline(text: &str) -> &'static str {
    if text.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    }
}

/// Start of `pos`'s line when only blanks precede it there, else `pos`.
fn line_start(text: &str, pos: usize) -> usize {
    let head = &text[..pos];
    let ls = head.rfind('\n').map(|i| i + 1).unwrap_or(0);
    if head[ls..].chars().all(|c| c == ' ' || c == '\t') {
        ls
    } else {
        pos
    }
}

/// Whether only blanks precede `pos` on its line.
fn own_line(text: &str, pos: usize) -> bool {
    line_start(text, pos) == text[..pos].rfind('\n').map(|i| i + 1).unwrap_or(0)
}

/// Just past the end of `pos`'s line when only blanks follow it there, else `pos`.
fn line_end(text: &str, pos: usize) -> usize {
    let tail = &text[pos..];
    match tail.find('\n') {
        Some(i)
            if tail[..i]
                .chars()
                .all(|c| c == ' ' || c == '\t' || c == '\r') =>
        {
            pos + i + 1
        }
        None if tail.chars().all(|c| c == ' ' || c == '\t' || c == '\r') => text.len(),
        _ => pos,
    }
}

/// Blanks before `pos` on its line ("" when other text precedes it).
fn indent_at(text: &str, pos: usize) -> &str {
    &text[line_start(text, pos)..pos]
}

/// One indentation step, guessed from how `<config>` (a child of the root)
/// is indented; four spaces as make_project writes.
fn unit(text: &str, layout: &Layout) -> String {
    let candidates = [layout.config.span, layout.daemons.span, layout.tasks.span];
    candidates
        .iter()
        .flatten()
        .map(|(s, _)| indent_at(text, *s))
        .find(|i| !i.is_empty())
        .unwrap_or("    ")
        .to_owned()
}

/// A replacement of `text[start..end]`.
#[derive(Debug, Clone)]
pub struct Edit {
    pub start: usize,
    pub end: usize,
    pub with: String,
}

/// Apply non-overlapping edits.
pub fn apply(text: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|e| std::cmp::Reverse(e.start));
    let mut out = text.to_owned();
    for e in edits {
        out.replace_range(e.start..e.end, &e.with);
    }
    out
}

/// Lines for a new element (`lines` already without indentation), each
/// indented by `indent` plus its own depth in units.
fn block(lines: &[(usize, String)], indent: &str, unit: &str, nl: &str) -> String {
    lines
        .iter()
        .map(|(depth, l)| format!("{indent}{}{l}{nl}", unit.repeat(*depth)))
        .collect()
}

/// The edit adding `item_lines` (depth 0 = the `<daemon>`/`<task>` tag) to
/// section `name` ("daemons" or "tasks"), creating the section when missing.
/// Returns the edit and, when the section had to be created or expanded,
/// its original text (for undoing).
pub fn add_item(
    text: &str,
    layout: &Layout,
    name: &str,
    item_lines: &[(usize, String)],
) -> (Edit, Option<String>) {
    let nl = newline(text);
    let u = unit(text, layout);
    let section = if name == "daemons" {
        &layout.daemons
    } else {
        &layout.tasks
    };
    match (section.span, section.close) {
        (Some((start, _)), Some(close)) => {
            let si = indent_at(text, start).to_owned();
            let ci = section
                .items
                .first()
                .map(|it| indent_at(text, it.start).to_owned())
                .filter(|i| !i.is_empty())
                .unwrap_or_else(|| format!("{si}{u}"));
            let at = line_start(text, close);
            let body = block(item_lines, &ci, &u, nl);
            let with = if !own_line(text, close) {
                // `</daemons>` shares its line with other text.
                format!("{nl}{body}{si}")
            } else {
                body
            };
            (
                Edit {
                    start: at,
                    end: at,
                    with,
                },
                None,
            )
        }
        (Some((start, end)), None) => {
            // `<daemons/>`: expand in place.
            let si = indent_at(text, start).to_owned();
            let body = block(item_lines, &format!("{si}{u}"), &u, nl);
            (
                Edit {
                    start,
                    end,
                    with: format!("<{name}>{nl}{body}{si}</{name}>"),
                },
                Some(text[start..end].to_owned()),
            )
        }
        _ => {
            let at = line_start(text, layout.root_close);
            let mut lines = vec![(0, format!("<{name}>"))];
            lines.extend(item_lines.iter().map(|(d, l)| (d + 1, l.clone())));
            lines.push((0, format!("</{name}>")));
            let mut with = block(&lines, &u, &u, nl);
            if !own_line(text, layout.root_close) {
                with = format!("{nl}{with}");
            }
            (
                Edit {
                    start: at,
                    end: at,
                    with,
                },
                Some(String::new()),
            )
        }
    }
}

/// `start..end` widened to whole lines when it has them alone.
pub fn whole_lines(text: &str, start: usize, end: usize) -> (usize, usize) {
    let s = line_start(text, start);
    let e = if own_line(text, start) {
        line_end(text, end)
    } else {
        end
    };
    (s, e)
}

/// The edit removing `item` with its whole line(s) when it has them alone.
pub fn remove_span(text: &str, start: usize, end: usize) -> Edit {
    let (start, end) = whole_lines(text, start, end);
    Edit {
        start,
        end,
        with: String::new(),
    }
}

/// Where in config.xml a recorded change lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Inside `<boinc>` (a section install created).
    Root,
    Config,
    Daemons,
    Tasks,
}

impl Layout {
    /// The byte span a change in `scope` must lie within.
    pub fn span_of(&self, scope: Scope) -> Option<(usize, usize)> {
        match scope {
            Scope::Root => Some((self.root_start, self.root_close)),
            Scope::Config => self.config.span,
            Scope::Daemons => self.daemons.span,
            Scope::Tasks => self.tasks.span,
        }
    }
}

/// Undo [`add_item`]'s section creation: the section (now without items)
/// goes back to `original` ("" = it did not exist).
pub fn restore_section(text: &str, section: &Section, original: &str) -> Option<Edit> {
    let (start, end) = section.span?;
    if !section.items.is_empty() {
        return None;
    }
    if original.is_empty() {
        Some(remove_span(text, start, end))
    } else {
        Some(Edit {
            start,
            end,
            with: original.to_owned(),
        })
    }
}

/// The edit adding `<key>value</key>` as the last child of `<config>`.
pub fn add_config_key(text: &str, layout: &Layout, key: &str, value: &str) -> Option<Edit> {
    let nl = newline(text);
    let u = unit(text, layout);
    let (start, _) = layout.config.span?;
    let close = layout.config.close?;
    let ci = layout
        .config_keys
        .first()
        .map(|(_, s, _, _)| indent_at(text, *s).to_owned())
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| format!("{}{u}", indent_at(text, start)));
    let at = line_start(text, close);
    let line = format!("{ci}<{key}>{value}</{key}>{nl}");
    Some(Edit {
        start: at,
        end: at,
        with: if !own_line(text, close) {
            format!("{nl}{line}")
        } else {
            line
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MADE: &str = "<?xml version=\"1.0\" ?>\n<boinc>\n    <config>\n        <db_name>p</db_name>\n    </config>\n    <daemons>\n        <daemon>\n            <cmd>feeder -d 3</cmd>\n        </daemon>\n    </daemons>\n    <tasks>\n        <task>\n            <cmd>db_dump -d 2 --dump_spec ../db_dump_spec.xml</cmd>\n            <disabled>1</disabled>\n        </task>\n    </tasks>\n</boinc>\n";

    #[test]
    fn scans_spans() {
        let l = scan(MADE).unwrap();
        assert_eq!(l.daemons.items.len(), 1);
        assert_eq!(l.daemons.items[0].program(), "feeder");
        let t = &l.tasks.items[0];
        assert_eq!(t.program(), "db_dump");
        assert!(t.is_disabled());
        let d = t.disabled.clone().unwrap();
        assert_eq!(&MADE[d.start..d.end], "<disabled>1</disabled>");
        assert_eq!(l.config_keys[0].0, "db_name");
        assert!(MADE[l.root_close..].starts_with("</boinc>"));
    }

    #[test]
    fn add_then_remove_restores_bytes() {
        for text in [
            MADE.to_owned(),
            MADE.replace('\n', "\r\n"),
            MADE.replace("    <daemons>\n        <daemon>\n            <cmd>feeder -d 3</cmd>\n        </daemon>\n    </daemons>\n", ""),
            MADE.replace("    <daemons>\n        <daemon>\n            <cmd>feeder -d 3</cmd>\n        </daemon>\n    </daemons>\n", "    <daemons/>\n"),
        ] {
            let l = scan(&text).unwrap();
            let lines = [(0, "<daemon>".to_owned()), (1, "<cmd>boinc-rpc</cmd>".to_owned()), (0, "</daemon>".to_owned())];
            let (edit, original) = add_item(&text, &l, "daemons", &lines);
            let added = apply(&text, vec![edit]);
            let l2 = scan(&added).unwrap();
            let ours = l2.daemons.items.iter().find(|i| i.program() == "boinc-rpc").expect("added");
            assert!(added.contains("<cmd>boinc-rpc</cmd>"), "{added}");
            let removed = apply(&added, vec![remove_span(&added, ours.start, ours.end)]);
            let restored = match original {
                Some(orig) => {
                    let l3 = scan(&removed).unwrap();
                    apply(&removed, vec![restore_section(&removed, &l3.daemons, &orig).unwrap()])
                }
                None => removed,
            };
            assert_eq!(restored, text);
        }
    }
}
