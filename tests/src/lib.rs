//! Helpers shared by the end-to-end tests live in the `tests/` folder of this crate.
