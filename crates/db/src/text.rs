//! Text as the database and the wire hold it: the sessions' character set
//! and legacy latin1 decoding (`charset`), column sizes (`columns`),
//! BOINC's country list (`countries`) and the one XML escaping rule
//! (`xml`).

pub mod charset;
pub mod columns;
pub mod countries;
pub mod xml;
