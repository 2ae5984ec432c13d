//! `db_dump`: BOINC's nightly statistics export, consent-aware.
//!
//! * [`spec`] reads BOINC's `db_dump_spec.xml`; [`config`] what it takes
//!   from config.xml and the command line.
//! * [`query`] holds the streaming SQL (JOINs, tie-safe latest consent).
//! * [`record`] writes every byte of the XML records (layout, escaping).
//! * [`output`] writes plain/gzip/zip files, split by `recs_per_file`.
//! * [`publish`] swaps the finished dump into place atomically; [`retain`]
//!   prunes dated archives past `<archive_days>`.
//! * [`dump`] runs it all: starts the enumerations, totals, tables.xml,
//!   publish, summary.
//! * [`ctx`] is what a run's enumerations share; [`enumerate`] streams one
//!   enumeration's rows in [`batch`]es to its [`writer`]s (one thread per
//!   output).
//! * [`owners`] is the per-user consent/show_hosts map, [`optout`] the
//!   recent withdrawals, [`totals`] tables.xml's counts, apps and badges.

pub mod batch;
pub mod config;
pub mod credit_by_app;
pub mod ctx;
pub mod dump;
pub mod enumerate;
pub mod error;
mod id_bytes;
pub mod metrics_file;
pub mod optout;
pub mod output;
pub mod owners;
pub mod publish;
pub mod query;
pub mod record;
pub mod replica;
pub mod retain;
pub mod snapshot;
pub mod spec;
pub mod totals;
pub mod writer;

pub use config::DumpConfig;
pub use dump::{run, Options, Summary};
pub use error::DumpError;
pub use spec::DumpSpec;
