//! Converting a legacy latin1 database to utf8mb4 without double
//! encoding (`boinc-ops db convert-utf8mb4`).
//!
//! BOINC's PHP wrote UTF-8 over a latin1 connection, so a latin1 column
//! holds UTF-8 bytes; upstream's own conversion (`CONVERT TO CHARACTER
//! SET utf8mb4`) reads each of those bytes as a latin1 character and
//! encodes it again, turning every non-ASCII name into mojibake. Here the
//! stored bytes become the characters PHP meant, as our binaries already
//! read them (`charset::decode`): UTF-8 sequences as UTF-8, any other byte
//! as latin1. Each table ends exactly as upstream's conversion leaves it
//! (`utf8mb4_unicode_ci`, upstream's shrunk `varchar` sizes, TEXT widened
//! as CONVERT TO widens it), so running upstream's statements afterwards
//! changes nothing.
//!
//! Steps, each safe to interrupt and repeat:
//! 1. Check (before touching anything): values longer than upstream's
//!    shrunk columns, and values a unique index would hold twice once
//!    compared as `utf8mb4_unicode_ci`. Any: nothing is changed.
//! 2. Repair: values that are not valid UTF-8 are rewritten in place as
//!    the UTF-8 of what they mean (compare-and-set, row by row).
//! 3. Convert, table by table. An InnoDB table with an integer primary
//!    key, no triggers of its own and no foreign key pointing at it is
//!    converted online: a converted copy (`_utf8mb4_new_T`) kept current
//!    by triggers, filled in small batches, then swapped in with one
//!    atomic `RENAME TABLE` (writers wait only for that rename). Other
//!    tables (small: consent types, tokens, limits; MyISAM tables of old
//!    releases) get one `ALTER TABLE`, which blocks writes while it
//!    copies. A table already converted is left alone; a copy left by an
//!    interrupted run is dropped and made again.

mod alter;
mod check;
mod online;
mod table;

use std::time::Instant;

use mysql_async::prelude::*;
use mysql_async::Conn;

use crate::DbError;
use alter::{convert_alter, finish_pending};
use check::{check, repair};
use online::{convert_online, drop_leftovers};
use table::tables;
pub use table::{Collision, Method, Progress, Report, TooLong, COLLATION, SHRUNK};

/// Run the conversion (or, with `dry_run`, only report what it would do).
pub async fn convert(
    c: &mut Conn,
    dry_run: bool,
    progress: &mut dyn Progress,
) -> Result<Report, DbError> {
    let mut report = Report::default();
    // The bytes as stored, both ways.
    c.query_drop("SET NAMES binary").await?;
    let all = tables(c).await?;
    if !dry_run {
        // An interrupted ALTER conversion first.
        for t in &all {
            finish_pending(c, &t.name).await?;
        }
    }
    progress.step("checking lengths and unique values");
    check(c, &all, &mut report).await?;
    if report.blocked() {
        return Ok(report);
    }
    for t in &all {
        if t.converted() {
            report.already.push(t.name.clone());
            continue;
        }
        let method = if t.online() {
            Method::Online
        } else {
            Method::Alter
        };
        progress.step(&format!("repairing {}", t.name));
        repair(c, t, dry_run, &mut report).await?;
        if dry_run {
            report.would_convert.push((t.name.clone(), method));
            continue;
        }
        progress.step(&format!("converting {}", t.name));
        drop_leftovers(c, t, &mut report).await?;
        let start = Instant::now();
        match method {
            Method::Online => convert_online(c, t).await?,
            Method::Alter => convert_alter(c, t).await?,
        }
        report
            .converted
            .push((t.name.clone(), method, start.elapsed()));
    }
    if !dry_run {
        // Whatever an interrupted run took away (a foreign key between
        // the swap and its re-creation) is put back.
        c.query_drop("SET NAMES utf8mb4").await?;
        crate::schema::upgrade(c).await?;
    }
    Ok(report)
}
