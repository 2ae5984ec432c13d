//! BOINC's web RPCs (create_account, am_set_info, am_get_info,
//! lookup_account, get_project_config) and public XML lookups (show_user,
//! team_email_list, team_lookup) on a BOINC database.
//!
//! `serve` runs the server on a listener until a shutdown future resolves;
//! `spawn` starts one in the background (tests, other crates' e2e tests).
//! Each RPC lives in its own file under `rpc/` (parse -> apply -> render);
//! every reply body is built in `reply`.

pub mod commit;
pub mod connections;
pub mod error;
pub mod flip_group;
pub mod hashing;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod params;
pub mod reply;
mod request;
mod router;
mod rpc;
mod server;
pub mod settings;
pub mod state;
pub mod validate;

pub use error::RpcError;
pub use params::Params;
pub use request::{Rpc, RpcRequest};
pub use router::router;
pub use server::{serve, spawn, RunningServer};
pub use settings::Options;
pub use state::AppState;
