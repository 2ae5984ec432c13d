//! team_email_list (`team_email_list.php?teamid=N&xml=1`, `creditonly=1`):
//! a team's members, under the shared rule (`boinc_db::exportable`): a
//! member the rule hides is simply not listed. A team may have 100,000
//! members, so the list is streamed: rows are read one by one from the
//! database (`exec_iter`) and sent in chunks through a small channel, so
//! memory stays flat whatever the team's size and a client that stops
//! reading stops the read. At most `rpc_lookup_streams` lists are sent at
//! once (each holds a database connection while it streams).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use boinc_db::account::public_lookup::{self, PublicUser};
use boinc_db::{exportable, DbError};
use mysql_async::prelude::*;
use tokio::sync::{mpsc, oneshot};

use crate::error::RpcError;
use crate::reply::{self, Reply};
use crate::request::RpcRequest;
use crate::state::AppState;

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;
/// Chunks waiting for the client at most (memory per list: about
/// `(QUEUED + 1) * CHUNK`).
const QUEUED: usize = 2;

#[derive(Debug, PartialEq, Eq)]
pub struct TeamEmailList {
    pub teamid: i64,
    pub credit_only: bool,
}

impl TeamEmailList {
    pub fn parse(p: &crate::Params) -> Result<Self, RpcError> {
        // Read as upstream does (an int, optional), though it decides nothing.
        p.int("xml")?;
        let credit_only = p.int("creditonly")?.is_some_and(|n| n != 0);
        Ok(Self {
            teamid: p.required_int("teamid")?,
            credit_only,
        })
    }
}

pub async fn handle(state: &AppState, req: &RpcRequest) -> Result<Reply, RpcError> {
    state.check_web_running()?;
    let asked = TeamEmailList::parse(&req.params())?;
    let budget = crate::limits::lookups(state, req.ip);
    budget.check_local()?;
    let permit = match tokio::time::timeout(
        state.options.db_timeout,
        state.lookup_streams.clone().acquire_owned(),
    )
    .await
    {
        Ok(Ok(p)) => p,
        _ => {
            return Err(RpcError::generic(
                "too many member lists are being sent; try again later",
            ))
        }
    };
    let mut conn = state.conn().await?;
    budget.count(&mut conn).await?;
    if !public_lookup::team_exists(&mut conn, asked.teamid).await? {
        return Err(RpcError::NotFound);
    }
    let filter = exportable::consent_filter(&mut conn).await?;
    let fields = state.rules.profile;
    let stall = state.options.request_timeout;
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUED);
    let (started_tx, started_rx) = oneshot::channel();
    tokio::spawn(async move {
        // Held until the list is sent (or given up).
        let _permit = permit;
        let sql = public_lookup::members_sql(filter, asked.credit_only);
        let result = conn.exec_iter(sql, (asked.teamid,)).await;
        let mut result = match result {
            Ok(r) => {
                let _ = started_tx.send(Ok(()));
                r
            }
            Err(e) => {
                let _ = started_tx.send(Err(RpcError::from(e)));
                return;
            }
        };
        let mut buf = String::with_capacity(CHUNK + 4096);
        buf.push_str(reply::XML_HEADER);
        buf.push_str(reply::MEMBERS_OPEN);
        loop {
            match result.next().await {
                Ok(Some(row)) => match mysql_async::from_row_opt::<PublicUser>(row) {
                    Ok(u) => reply::team_member_into(&mut buf, &u, asked.credit_only, fields),
                    Err(e) => {
                        tracing::error!(error = %e, "team_email_list: unreadable member row; list cut short");
                        return;
                    }
                },
                Ok(None) => {
                    buf.push_str(reply::MEMBERS_CLOSE);
                    let _ = send(&tx, buf, stall).await;
                    return;
                }
                Err(e) => {
                    // The reply has begun: all that is left is to stop
                    // (the list then lacks its closing tag).
                    let e = DbError::from(e);
                    tracing::warn!(error = %e, "team_email_list: database error; list cut short");
                    return;
                }
            }
            if buf.len() >= CHUNK {
                let full = std::mem::replace(&mut buf, String::with_capacity(CHUNK + 4096));
                if !send(&tx, full, stall).await {
                    return;
                }
            }
        }
    });
    match started_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(RpcError::DbFailed),
    }
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Ok(Reply::Stream(Body::from_stream(stream)))
}

/// Hand a chunk to the response body; false when the client is gone or
/// has not taken anything for `stall` (the read then stops and its
/// connection goes back to the pool).
async fn send(tx: &mpsc::Sender<Bytes>, chunk: String, stall: Duration) -> bool {
    match tokio::time::timeout(stall, tx.send(Bytes::from(chunk))).await {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            tracing::info!("team_email_list: client stopped reading; list cut short");
            false
        }
    }
}
