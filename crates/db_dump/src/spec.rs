//! BOINC's `db_dump_spec.xml`: where to write and which enumerations.
//!
//! Upstream reads the file line by line and silently drops an enumeration
//! it cannot parse; we parse it as XML and refuse a spec with an unknown
//! table, sort or compression, so a typo never yields a dump with a file
//! missing.

use std::path::{Path, PathBuf};

use quick_xml::events::Event;
use quick_xml::Reader;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read dump spec {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("dump spec {path} is not valid XML: {message}")]
    Xml { path: PathBuf, message: String },
    #[error("dump spec {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    User,
    Team,
    Host,
    UserDeleted,
    HostDeleted,
    UserOptout,
    HostOptout,
    /// Files upstream writes beside the spec's (never named in a spec):
    /// badge_user / badge_team when the badge table has rows, user_work /
    /// team_work with `<credit_by_app/>`.
    BadgeUser,
    BadgeTeam,
    UserWork,
    TeamWork,
}

impl Table {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => Table::User,
            "team" => Table::Team,
            "host" => Table::Host,
            "user_deleted" => Table::UserDeleted,
            "host_deleted" => Table::HostDeleted,
            "user_optout" => Table::UserOptout,
            "host_optout" => Table::HostOptout,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Table::User => "user",
            Table::Team => "team",
            Table::Host => "host",
            Table::UserDeleted => "user_deleted",
            Table::HostDeleted => "host_deleted",
            Table::UserOptout => "user_optout",
            Table::HostOptout => "host_optout",
            Table::BadgeUser => "badge_user",
            Table::BadgeTeam => "badge_team",
            Table::UserWork => "user_work",
            Table::TeamWork => "team_work",
        }
    }

    /// The wrapper element of this table's files.
    pub fn wrapper(self) -> &'static str {
        match self {
            Table::User => "users",
            Table::Team => "teams",
            Table::Host => "hosts",
            Table::UserDeleted => "users_deleted",
            Table::HostDeleted => "hosts_deleted",
            Table::UserOptout => "users_optout",
            Table::HostOptout => "hosts_optout",
            Table::BadgeUser => "badge_users",
            Table::BadgeTeam => "badge_teams",
            Table::UserWork => "users",
            Table::TeamWork => "teams",
        }
    }

    /// Upstream's export_credit_by_app writes no XML declaration.
    pub fn declaration(self) -> bool {
        !matches!(self, Table::UserWork | Table::TeamWork)
    }

    /// The fixed enumeration upstream writes for this extra table: the
    /// table's name as file name, one gzip output.
    pub fn extra(self) -> Enumeration {
        Enumeration {
            table: self,
            filename: self.name().to_owned(),
            sort: Sort::Id,
            outputs: vec![OutputSpec {
                compression: Compression::Gzip,
                recs_per_file: 0,
                detail: false,
            }],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// No `<sort>`: we still order by id so the output is deterministic.
    #[default]
    None,
    Id,
    TotalCredit,
    ExpavgCredit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Zip,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputSpec {
    pub compression: Compression,
    /// 0: everything in one file.
    pub recs_per_file: u64,
    pub detail: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enumeration {
    pub table: Table,
    pub filename: String,
    pub sort: Sort,
    pub outputs: Vec<OutputSpec>,
}

/// Dated archives are kept this long without `<archive_days>` (as long
/// as BOINC keeps deletion records).
pub const DEFAULT_ARCHIVE_DAYS: u32 = 60;

#[derive(Debug, Clone)]
pub struct DumpSpec {
    /// Where this file was read from (copied as db_dump.xml).
    pub source: PathBuf,
    pub output_dir: PathBuf,
    pub final_output_dir: PathBuf,
    pub archive_dir: Option<PathBuf>,
    /// `<archive_days>`: dated archives older than this are pruned after a
    /// successful publish (default 60; 0 keeps them forever). Ours, not
    /// upstream's.
    pub archive_days: u32,
    pub enumerations: Vec<Enumeration>,
}

impl DumpSpec {
    /// Relative directories stay relative to the working directory, as
    /// upstream's (run from the project's `bin/`, hence `../html/stats`).
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, SpecError> {
        let invalid = |message: String| SpecError::Invalid {
            path: path.to_owned(),
            message,
        };
        let root = parse_tree(text).map_err(|message| SpecError::Xml {
            path: path.to_owned(),
            message,
        })?;
        if root.name != "boinc_db_dump_spec" {
            return Err(invalid(format!(
                "root element is <{}>, expected <boinc_db_dump_spec>",
                root.name
            )));
        }
        let dir = |name: &str| {
            root.child_text(name)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        };
        let output_dir = dir("output_dir").ok_or_else(|| invalid("no <output_dir>".into()))?;
        let final_output_dir =
            dir("final_output_dir").ok_or_else(|| invalid("no <final_output_dir>".into()))?;
        let archive_dir = dir("archive_dir");
        let archive_days = match root.child_text("archive_days") {
            None => DEFAULT_ARCHIVE_DAYS,
            Some(s) => s.parse::<u32>().map_err(|_| {
                invalid(format!(
                    "archive_days '{s}' is not a number of days (0 keeps archives forever)"
                ))
            })?,
        };
        let mut enumerations = Vec::new();
        for (i, e) in root.children.iter().enumerate() {
            if e.name != "enumeration" {
                continue;
            }
            let what = format!("enumeration #{}", i + 1);
            let table_s = e
                .child_text("table")
                .ok_or_else(|| invalid(format!("{what} has no <table>")))?;
            let table = Table::parse(&table_s)
                .ok_or_else(|| invalid(format!("{what}: unknown table '{table_s}'")))?;
            let filename = e
                .child_text("filename")
                .filter(|s| !s.is_empty())
                .ok_or_else(|| invalid(format!("{what} has no <filename>")))?;
            if filename.contains('/') || filename == "." || filename == ".." {
                return Err(invalid(format!(
                    "{what}: filename '{filename}' must be a plain file name"
                )));
            }
            let sort = match e.child_text("sort").as_deref() {
                None | Some("") => Sort::None,
                Some("id") => Sort::Id,
                Some("total_credit") => Sort::TotalCredit,
                Some("expavg_credit") => Sort::ExpavgCredit,
                Some(other) => return Err(invalid(format!("{what}: unknown sort '{other}'"))),
            };
            let mut outputs = Vec::new();
            for o in e.children.iter().filter(|c| c.name == "output") {
                let compression = match o.child_text("compression").as_deref() {
                    None | Some("") => Compression::None,
                    Some("gzip") => Compression::Gzip,
                    Some("zip") => Compression::Zip,
                    Some(other) => {
                        return Err(invalid(format!("{what}: unknown compression '{other}'")))
                    }
                };
                let recs_per_file = match o.child_text("recs_per_file") {
                    None => 0,
                    Some(s) => s.parse::<u64>().map_err(|_| {
                        invalid(format!("{what}: recs_per_file '{s}' is not a number"))
                    })?,
                };
                let detail = o.children.iter().any(|c| c.name == "detail");
                outputs.push(OutputSpec {
                    compression,
                    recs_per_file,
                    detail,
                });
            }
            if outputs.is_empty() {
                return Err(invalid(format!("{what} ({filename}) has no <output>")));
            }
            enumerations.push(Enumeration {
                table,
                filename,
                sort,
                outputs,
            });
        }
        let spec = DumpSpec {
            source: path.to_owned(),
            output_dir,
            final_output_dir,
            archive_dir,
            archive_days,
            enumerations,
        };
        spec.check_names().map_err(invalid)?;
        Ok(spec)
    }

    /// Two outputs writing the same file would silently clobber each other.
    fn check_names(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for e in &self.enumerations {
            for o in &e.outputs {
                let key = (e.filename.clone(), o.compression as u8, o.recs_per_file > 0);
                if !seen.insert(key) {
                    return Err(format!(
                        "two outputs write the same file '{}' ({:?}); give one another <filename> or compression",
                        e.filename, o.compression
                    ));
                }
            }
            if matches!(
                e.filename.as_str(),
                "tables.xml"
                    | "db_dump.xml"
                    | "badge_user"
                    | "badge_team"
                    | "user_work"
                    | "team_work"
            ) {
                return Err(format!("filename '{}' is reserved", e.filename));
            }
        }
        Ok(())
    }

    pub fn has_table(&self, t: Table) -> bool {
        self.enumerations.iter().any(|e| e.table == t)
    }
}

/// A tiny element tree: enough for the spec (names, text, children).
struct Node {
    name: String,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn child_text(&self, name: &str) -> Option<String> {
        self.children
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.text.trim().to_owned())
    }
}

fn parse_tree(text: &str) -> Result<Node, String> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Node> = Vec::new();
    let new = |name: &[u8]| Node {
        name: String::from_utf8_lossy(name).into_owned(),
        text: String::new(),
        children: Vec::new(),
    };
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| format!("at byte {}: {e}", reader.error_position()))?;
        match ev {
            Event::Start(e) => stack.push(new(e.name().as_ref())),
            Event::Empty(e) => {
                let n = new(e.name().as_ref());
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => return Ok(n),
                }
            }
            Event::Text(t) => {
                if let Some(n) = stack.last_mut() {
                    let s = t.decode().map_err(|e| e.to_string())?;
                    let s = quick_xml::escape::unescape(&s).map_err(|e| e.to_string())?;
                    n.text.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(n) = stack.last_mut() {
                    let s = format!("&{};", String::from_utf8_lossy(&r));
                    let s = quick_xml::escape::unescape(&s).map_err(|e| e.to_string())?;
                    n.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(n) = stack.last_mut() {
                    n.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::End(_) => {
                let n = stack.pop().ok_or("unbalanced end tag")?;
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => return Ok(n),
                }
            }
            Event::Eof => return Err("no root element".into()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPSTREAM: &str = "<boinc_db_dump_spec>
    <output_dir>../html/stats_tmp</output_dir>
    <final_output_dir>../html/stats</final_output_dir>
    <enumeration>
        <table>user</table>
        <filename>user</filename>
        <output>
            <compression>gzip</compression>
        </output>
    </enumeration>
    <enumeration>
        <table>host</table>
        <filename>host_id</filename>
        <sort>id</sort>
        <output>
            <recs_per_file>1000</recs_per_file>
        </output>
        <output>
            <compression>zip</compression>
            <detail/>
        </output>
    </enumeration>
</boinc_db_dump_spec>";

    #[test]
    fn parses_upstream_format() {
        let s = DumpSpec::parse(UPSTREAM, Path::new("x.xml")).unwrap();
        assert_eq!(s.output_dir, PathBuf::from("../html/stats_tmp"));
        assert_eq!(s.final_output_dir, PathBuf::from("../html/stats"));
        assert!(s.archive_dir.is_none());
        assert_eq!(s.enumerations.len(), 2);
        assert_eq!(s.enumerations[0].table, Table::User);
        assert_eq!(s.enumerations[0].sort, Sort::None);
        assert_eq!(s.enumerations[0].outputs[0].compression, Compression::Gzip);
        let h = &s.enumerations[1];
        assert_eq!(
            (h.table, h.sort, h.filename.as_str()),
            (Table::Host, Sort::Id, "host_id")
        );
        assert_eq!(h.outputs[0].recs_per_file, 1000);
        assert!(!h.outputs[0].detail);
        assert!(h.outputs[1].detail);
        assert_eq!(h.outputs[1].compression, Compression::Zip);
    }

    #[test]
    fn refuses_typos() {
        for bad in ["<table>users</table>", "<sort>credit</sort>"] {
            let t = UPSTREAM.replacen("<table>user</table>", bad, 1);
            let t = if bad.starts_with("<sort>") {
                UPSTREAM.replacen(
                    "<table>user</table>",
                    &format!("<table>user</table>{bad}"),
                    1,
                )
            } else {
                t
            };
            assert!(DumpSpec::parse(&t, Path::new("x")).is_err(), "{bad}");
        }
        let t = UPSTREAM.replace("gzip", "bz2");
        assert!(DumpSpec::parse(&t, Path::new("x")).is_err());
        let t = UPSTREAM.replace("<final_output_dir>../html/stats</final_output_dir>", "");
        assert!(DumpSpec::parse(&t, Path::new("x")).is_err());
        assert!(DumpSpec::parse("<a>", Path::new("x")).is_err());
    }
}
