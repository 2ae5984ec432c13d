//! The dump's record writer: every byte of every output file and of
//! tables.xml is produced here, so the layout lives in one place: one file
//! per kind of record (`user.rs`, `host.rs`, `team.rs`, `credit.rs` for
//! badge and credit_by_app records, `tables_xml.rs`), numbers as C and PHP
//! print them in `number.rs`, the element helpers in `element.rs`. The
//! escaping rule itself is `boinc_db::text::xml`'s; `element.rs` picks its
//! context.
//!
//! Layout (element order, indentation, `%f` numbers, which elements are
//! optional) follows BOINC's exporter because stats sites parse it, some
//! line by line. Escaping deliberately differs from upstream (see SPEC
//! section 5): text is UTF-8; `& < >` are escaped; characters XML 1.0
//! forbids are dropped; TAB/LF/CR become character references so a record
//! line never breaks; `]]>` cannot end a CDATA section early; bytes from
//! the database that are not UTF-8 (a latin1 client's text on a legacy
//! database) are decoded as latin1 instead of breaking the document.

mod credit;
mod element;
mod host;
mod number;
mod tables_xml;
mod team;
mod user;

pub use credit::{badge_holder, work, SubprojectCredit};
pub use host::{host, host_id_cpid, Host, HostExtra};
pub use number::{fixed6, php_number};
pub use tables_xml::{tables_xml, Badge, Totals};
pub use team::{team_end, team_start, Team};
pub use user::{user, user_id_cpid, User, UserFields};

pub use element::{cdata, file_footer, file_header, text};

#[cfg(test)]
mod tests;
