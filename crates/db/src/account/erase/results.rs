//! Results of an account being wiped: they stay for the science, without
//! the account or its computers.

use mysql_async::prelude::*;

use crate::DbError;

/// As upstream's cancel_results_for_user: results in progress or not yet
/// validated are cancelled (their workunits transitioned); all lose the
/// user and host ids.
pub(super) async fn detach<Q: Queryable>(
    q: &mut Q,
    userid: i64,
    now: i64,
    has_workunit: bool,
) -> Result<(), DbError> {
    // BOINC's constants: server_state IN_PROGRESS 4, OVER 5; outcome
    // SUCCESS 1, CLIENT_DETACHED 7; validate_state INIT 0, INVALID 2,
    // INCONCLUSIVE 4.
    const OPEN: &str = "(server_state = 4 OR (server_state = 5 AND outcome = 1 \
                        AND validate_state IN (0, 4)))";
    if has_workunit {
        q.exec_drop(
            format!(
                "UPDATE workunit SET transition_time = ? WHERE id IN \
                 (SELECT workunitid FROM result WHERE userid = ? AND {OPEN})"
            ),
            (now, userid),
        )
        .await?;
    }
    q.exec_drop(
        format!(
            "UPDATE result SET server_state = 5, outcome = 7, validate_state = 2 \
             WHERE userid = ? AND {OPEN}"
        ),
        (userid,),
    )
    .await?;
    q.exec_drop(
        "UPDATE result SET hostid = 0, userid = 0 WHERE userid = ?",
        (userid,),
    )
    .await?;
    Ok(())
}
