//! What the router hands a handler: which RPC was asked for and its
//! decoded request. A leaf: the handlers and the router both import it.

use std::net::IpAddr;
use std::sync::Arc;

use crate::commit;
use crate::params::Params;

/// The five RPCs and the three public lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    CreateAccount,
    AmSetInfo,
    AmGetInfo,
    LookupAccount,
    GetProjectConfig,
    ShowUser,
    TeamEmailList,
    TeamLookup,
}

impl Rpc {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        let name = name.strip_suffix(".php").unwrap_or(name);
        Some(match name {
            "create_account" => Rpc::CreateAccount,
            "am_set_info" => Rpc::AmSetInfo,
            "am_get_info" => Rpc::AmGetInfo,
            "lookup_account" => Rpc::LookupAccount,
            "get_project_config" => Rpc::GetProjectConfig,
            "show_user" => Rpc::ShowUser,
            "team_email_list" => Rpc::TeamEmailList,
            "team_lookup" => Rpc::TeamLookup,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Rpc::CreateAccount => "create_account",
            Rpc::AmSetInfo => "am_set_info",
            Rpc::AmGetInfo => "am_get_info",
            Rpc::LookupAccount => "lookup_account",
            Rpc::GetProjectConfig => "get_project_config",
            Rpc::ShowUser => "show_user",
            Rpc::TeamEmailList => "team_email_list",
            Rpc::TeamLookup => "team_lookup",
        }
    }

    /// `/NAME[.php]` at the root or below master_url's path.
    pub(crate) fn from_path(path: &str, prefix: &str) -> Option<Self> {
        [prefix, "/"]
            .iter()
            .filter_map(|p| path.strip_prefix(p))
            .find(|rest| !rest.contains('/'))
            .and_then(Self::from_name)
    }
}

/// One decoded request. Most RPCs read `params()` (query and form body
/// together); am_set_info picks one of the two.
#[derive(Debug, Default)]
pub struct RpcRequest {
    pub query: Params,
    pub body: Params,
    pub ip: Option<IpAddr>,
    /// The request's deadline against its COMMIT (`commit`).
    pub guard: Arc<commit::CommitGuard>,
}

impl RpcRequest {
    pub fn params(&self) -> Params {
        Params::merged(self.query.clone(), self.body.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            Rpc::from_path("/create_account.php", "/"),
            Some(Rpc::CreateAccount)
        );
        assert_eq!(Rpc::from_path("/am_get_info", "/"), Some(Rpc::AmGetInfo));
        assert_eq!(
            Rpc::from_path("/proj/lookup_account.php", "/proj/"),
            Some(Rpc::LookupAccount)
        );
        assert_eq!(
            Rpc::from_path("/get_project_config.php", "/proj/"),
            Some(Rpc::GetProjectConfig)
        );
        assert_eq!(Rpc::from_path("/x/create_account.php", "/"), None);
        assert_eq!(Rpc::from_path("/nope.php", "/"), None);
        assert_eq!(Rpc::from_path("/", "/"), None);
    }
}
