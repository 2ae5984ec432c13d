//! What the connected database's tables look like: the one place that
//! knows how upstream BOINC's server releases differ (SPEC section 6).
//! Everything else asks a [`Shape`] instead of testing for a column or a
//! table itself.
//!
//! What differs between the releases since consent existed (1.0.x, 1.2,
//! 1.3, 1.4.x, 1.6.x, master), for the tables these components read:
//!
//! * `host.misc` (JSON description of GPUs, Docker, ...) exists since 1.6;
//!   before it, `host.serialnum` carries the client version, the GPUs and
//!   VirtualBox as `[BOINC|..][CUDA|..][vbox|..]`, and that release's
//!   db_dump writes `<boinc_version>`, `<vbox_version>` and `<coprocs>`
//!   parsed from it instead of `<misc>` ([`HostDetails`], [`parse_serialnum`]).
//! * `user.name` is unique only since 1.6 (before, a plain index, and
//!   upstream's own update never changes it): such a database may hold
//!   duplicate names, so the schema tool leaves that index as the release
//!   made it ([`Shape::keeps_release_index`]).
//! * Column sizes: 254/255 characters before 1.6, 191 since (names,
//!   emails, consent type short names). The components write at most the
//!   1.6 sizes (`columns`), which fit every release.
//! * Engines: before 1.3, `team` and most forum tables are MyISAM (no
//!   transactions, no row locks): statements on them work, but are not
//!   undone by a rollback ([`Shape::transactional`]).

use std::collections::{BTreeMap, BTreeSet};

use mysql_async::prelude::*;

use crate::DbError;

/// How a host record describes the host's GPUs, client and VirtualBox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostDetails {
    /// `host.misc` exists (1.6 and later): `<misc>` as master writes it.
    Misc,
    /// No `host.misc` (before 1.6): `<boinc_version>`, `<vbox_version>`,
    /// `<coprocs>` parsed from `host.serialnum`.
    Serialnum,
}

impl HostDetails {
    /// The `host` column holding them.
    pub fn column(self) -> &'static str {
        match self {
            HostDetails::Misc => "misc",
            HostDetails::Serialnum => "serialnum",
        }
    }
}

/// Indexes a release makes without uniqueness where this project's
/// constraints (from master's schema) ask for a unique one: (table,
/// columns). Kept as they are, since their data may hold duplicates.
const RELEASE_NON_UNIQUE: &[(&str, &[&str])] = &[("user", &["name"])];

#[derive(Debug, Clone, Default)]
struct Table {
    /// Lower-cased column names.
    columns: BTreeSet<String>,
    /// `InnoDB`, `MyISAM`, ...; None for a view.
    engine: Option<String>,
}

/// The tables, columns and engines of the current database, read once.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    tables: BTreeMap<String, Table>,
}

impl Shape {
    /// Read the shape of the database `q` is connected to (two queries).
    pub async fn probe<Q: Queryable>(q: &mut Q) -> Result<Self, DbError> {
        let mut tables: BTreeMap<String, Table> = BTreeMap::new();
        let rows: Vec<(String, Option<String>, String)> = q
            .query(
                "SELECT TABLE_NAME, ENGINE, TABLE_TYPE FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE()",
            )
            .await?;
        for (name, engine, kind) in rows {
            let engine = engine.filter(|_| kind == "BASE TABLE");
            tables.insert(
                name.to_ascii_lowercase(),
                Table {
                    engine,
                    ..Table::default()
                },
            );
        }
        let cols: Vec<(String, String)> = q
            .query(
                "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE()",
            )
            .await?;
        for (table, column) in cols {
            tables
                .entry(table.to_ascii_lowercase())
                .or_default()
                .columns
                .insert(column.to_ascii_lowercase());
        }
        Ok(Self { tables })
    }

    /// Is there a base table of this name (not a view)?
    pub fn has_table(&self, table: &str) -> bool {
        self.tables
            .get(&table.to_ascii_lowercase())
            .is_some_and(|t| t.engine.is_some())
    }

    pub fn has_column(&self, table: &str, column: &str) -> bool {
        self.tables
            .get(&table.to_ascii_lowercase())
            .is_some_and(|t| t.columns.contains(&column.to_ascii_lowercase()))
    }

    /// Which host columns describe GPUs, client and VirtualBox.
    pub fn host_details(&self) -> HostDetails {
        if self.has_column("host", "misc") {
            HostDetails::Misc
        } else {
            HostDetails::Serialnum
        }
    }

    /// Does a rollback undo writes to this table? False for MyISAM
    /// tables (releases before 1.3: `team`, forum tables).
    pub fn transactional(&self, table: &str) -> bool {
        self.tables
            .get(&table.to_ascii_lowercase())
            .and_then(|t| t.engine.as_deref())
            .is_none_or(|e| !e.eq_ignore_ascii_case("MyISAM"))
    }

    /// Which upstream release line made this schema, as far as the
    /// tables these components read tell (for logs and reports).
    pub fn release(&self) -> &'static str {
        if self.has_column("host", "misc") {
            "1.6 or later"
        } else if !self.transactional("team") {
            "1.0 to 1.2 (host.serialnum, MyISAM team and forum tables)"
        } else {
            "1.3 to 1.4 (host.serialnum)"
        }
    }

    /// Should a unique index wanted on (`table`, `cols`) be left out
    /// because the release made that index non-unique? Only for the
    /// indexes upstream changed between releases, and only where a plain
    /// index on those columns is there (the release's own).
    pub fn keeps_release_index(&self, table: &str, cols: &[String], plain_index: bool) -> bool {
        plain_index
            && RELEASE_NON_UNIQUE.iter().any(|(t, c)| {
                t.eq_ignore_ascii_case(table)
                    && c.len() == cols.len()
                    && c.iter().zip(cols).all(|(a, b)| a.eq_ignore_ascii_case(b))
            })
    }
}

/// `host.serialnum` split as releases before 1.6 split it for db_dump:
/// each `[...]` group in turn; one naming `BOINC` is the client version,
/// else one naming `vbox` is VirtualBox, anything else is appended to the
/// coprocessors. The last BOINC and vbox groups win; anything not
/// starting with `[`, or a group never closed, ends the scan. Each part
/// keeps its brackets (`[BOINC|7.16.21]`), as upstream writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Serialnum<'a> {
    pub boinc: &'a [u8],
    pub vbox: &'a [u8],
    pub coprocs: Vec<&'a [u8]>,
}

pub fn parse_serialnum(s: &[u8]) -> Serialnum<'_> {
    let mut out = Serialnum::default();
    let mut rest = s;
    while let Some(&b'[') = rest.first() {
        let Some(close) = rest.iter().position(|&b| b == b']') else {
            break;
        };
        let (group, tail) = rest.split_at(close + 1);
        if contains(group, b"BOINC") {
            out.boinc = group;
        } else if contains(group, b"vbox") {
            out.vbox = group;
        } else {
            out.coprocs.push(group);
        }
        rest = tail;
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> (String, String, String) {
        let p = parse_serialnum(s.as_bytes());
        let t = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        (t(p.boinc), t(p.vbox), t(&p.coprocs.concat()))
    }

    fn eq(s: &str, boinc: &str, vbox: &str, coprocs: &str) {
        assert_eq!(
            parts(s),
            (boinc.to_owned(), vbox.to_owned(), coprocs.to_owned()),
            "{s:?}"
        );
    }

    /// Strings as BOINC's scheduler stores them for real clients
    /// (`[BOINC|major.minor.release(|brand)]`, then the GPU summary
    /// `[CUDA|name|count|MB|driver|OpenCL]`, `[CAL|..]`, `[INTEL|..]`,
    /// `[opencl_gpu|..]`, then `[vbox|version(|vmx|enabled)]`).
    #[test]
    fn real_client_serialnums() {
        eq(
            "[BOINC|7.16.21][CUDA|NVIDIA GeForce GTX 1060 6GB|1|6144MB|46027|102][vbox|6.1.26|1|1]",
            "[BOINC|7.16.21]",
            "[vbox|6.1.26|1|1]",
            "[CUDA|NVIDIA GeForce GTX 1060 6GB|1|6144MB|46027|102]",
        );
        eq(
            "[BOINC|7.6.22][CAL|ATI Radeon HD 5800/5900 series (Cypress/Hemlock)|2|1024MB|1.4.1848|102][vbox|5.1.26]",
            "[BOINC|7.6.22]",
            "[vbox|5.1.26]",
            "[CAL|ATI Radeon HD 5800/5900 series (Cypress/Hemlock)|2|1024MB|1.4.1848|102]",
        );
        eq(
            "[BOINC|8.0.2][CUDA|NVIDIA GeForce RTX 3080|1|10240MB|53741|300][INTEL|Intel(R) UHD Graphics 770|1|6383MB||300][vbox|7.0.12|1|1]",
            "[BOINC|8.0.2]",
            "[vbox|7.0.12|1|1]",
            "[CUDA|NVIDIA GeForce RTX 3080|1|10240MB|53741|300][INTEL|Intel(R) UHD Graphics 770|1|6383MB||300]",
        );
        eq(
            "[BOINC|7.14.2|Charity Engine]",
            "[BOINC|7.14.2|Charity Engine]",
            "",
            "",
        );
        eq("[BOINC|7.4.53]", "[BOINC|7.4.53]", "", "");
        eq(
            "[BOINC|7.22.0][opencl_gpu|apple_gpu|1|5461MB|300]",
            "[BOINC|7.22.0]",
            "",
            "[opencl_gpu|apple_gpu|1|5461MB|300]",
        );
        eq("", "", "", "");
    }

    #[test]
    fn upstream_scan_rules() {
        // Any order.
        eq(
            "[vbox|4.5.6abc][INTEL|Intel(R) HD Graphics|1|2406MB||201][BOINC|1.2.3]",
            "[BOINC|1.2.3]",
            "[vbox|4.5.6abc]",
            "[INTEL|Intel(R) HD Graphics|1|2406MB||201]",
        );
        // The last BOINC / vbox group wins; coprocessors add up.
        eq(
            "[BOINC|1][BOINC|2][vbox|a][vbox|b][X|1][Y|2]",
            "[BOINC|2]",
            "[vbox|b]",
            "[X|1][Y|2]",
        );
        // Matched anywhere in the group, BOINC before vbox, case-sensitive.
        eq("[CUDA|BOINC card]", "[CUDA|BOINC card]", "", "");
        eq("[BOINC|7.1|vbox]", "[BOINC|7.1|vbox]", "", "");
        eq("[boinc|7.1][VBOX|6]", "", "", "[boinc|7.1][VBOX|6]");
        // A format error ends the scan; what came before stays.
        eq("x[BOINC|7.1]", "", "", "");
        eq("[BOINC|7.1] [vbox|6]", "[BOINC|7.1]", "", "");
        eq("[BOINC|7.1][CUDA|cut off", "[BOINC|7.1]", "", "");
        // A `[` inside a group is text; `]` closes it.
        eq("[A[B]]", "", "", "[A[B]");
    }

    #[test]
    fn release_indexes() {
        let s = Shape::default();
        let cols = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(s.keeps_release_index("user", &cols(&["name"]), true));
        assert!(!s.keeps_release_index("user", &cols(&["name"]), false));
        assert!(!s.keeps_release_index("team", &cols(&["name"]), true));
        assert!(!s.keeps_release_index("consent_type", &cols(&["shortname"]), true));
    }
}
