//! One module per page of the ops site (its view models with it).

pub(super) mod account;
pub(super) mod consent_types;
mod report_view;
