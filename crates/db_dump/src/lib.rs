//! `db_dump`: BOINC's nightly statistics export, consent-aware.
//!
//! * [`spec`] reads BOINC's `db_dump_spec.xml`.
//! * [`query`] holds the streaming SQL (JOINs, tie-safe latest consent).
//! * [`record`] writes every byte of the XML records (layout, escaping).
//! * [`output`] writes plain/gzip/zip files, split by `recs_per_file`.
//! * [`publish`] swaps the finished dump into place atomically.
//! * [`dump`] runs it all: parallel enumerations, totals, summary.
//! * [`gen`] fills a database with realistic test data.

pub mod dump;
pub mod gen;
pub mod output;
pub mod publish;
pub mod query;
pub mod record;
pub mod spec;

pub use dump::{run, DumpError, Options, Summary};
pub use spec::DumpSpec;
