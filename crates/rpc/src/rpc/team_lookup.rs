//! team_lookup (`team_lookup.php?team_id=N`, `?team_ids=A,B,...`,
//! `?team_name=S&format=xml`): teams, in upstream's layout. Teams are not
//! people and are always shown; a team names its founder (`<userid>`)
//! only under the shared rule (`boinc_db::exportable::founder_shown`),
//! else `<userid>0</userid>`, what upstream shows for a team without one.

use boinc_db::{account::public_lookup, exportable};

use crate::error::RpcError;
use crate::reply::{self, Xml};
use crate::request::RpcRequest;
use crate::state::AppState;

/// Most ids one request may name, and most teams a name search returns
/// (upstream stops after 100 teams found).
pub const MAX_TEAMS: usize = 100;

#[derive(Debug, PartialEq, Eq)]
pub enum TeamLookup {
    Id(i64),
    /// Ids in the order asked; items that are not numbers are skipped, as
    /// upstream does.
    Ids(Vec<i64>),
    /// Teams whose name starts with this.
    Name(String),
}

impl TeamLookup {
    /// Upstream's order: a (non-zero) `team_id`, else `team_ids`, else
    /// `team_name`, which is then required.
    pub fn parse(p: &crate::Params) -> Result<Self, RpcError> {
        if let Some(id) = p.int("team_id")?.filter(|&id| id != 0) {
            return Ok(TeamLookup::Id(id));
        }
        if let Some(list) = p.nonempty("team_ids").filter(|l| *l != "0") {
            let items: Vec<&str> = list.split(',').collect();
            if items.len() > MAX_TEAMS {
                return Err(RpcError::generic(format!(
                    "too many team ids ({} given, at most {MAX_TEAMS})",
                    items.len()
                )));
            }
            let ids = items
                .iter()
                .filter_map(|i| crate::params::parse_int(i.trim()))
                .collect();
            return Ok(TeamLookup::Ids(ids));
        }
        p.required("team_name")
            .map(|n| TeamLookup::Name(n.to_owned()))
    }
}

pub async fn handle(state: &AppState, req: &RpcRequest) -> Result<Xml, RpcError> {
    state.check_web_running()?;
    let asked = TeamLookup::parse(&req.params())?;
    let budget = crate::limits::lookups(state, req.ip);
    budget.check_local()?;
    let mut conn = state.conn().await?;
    budget.count(&mut conn).await?;
    let filter = exportable::consent_filter(&mut conn).await?;
    match asked {
        TeamLookup::Id(id) => public_lookup::team_by_id(&mut conn, id, filter)
            .await?
            .map(|t| reply::team(&t))
            .ok_or(RpcError::NotFound),
        TeamLookup::Ids(ids) => {
            let mut teams = public_lookup::teams_by_ids(&mut conn, &ids, filter).await?;
            teams.truncate(MAX_TEAMS);
            Ok(reply::teams(&teams))
        }
        TeamLookup::Name(name) => {
            let teams =
                public_lookup::teams_by_name_prefix(&mut conn, &name, filter, MAX_TEAMS as u32)
                    .await?;
            Ok(reply::teams(&teams))
        }
    }
}
