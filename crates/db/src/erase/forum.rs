//! The message boards' part of an erase: the person's posts go (as BOINC's
//! forum_delete_user), and threads they started that live on with other
//! people's replies lose the title they wrote.

use mysql_async::prelude::*;
use mysql_async::Transaction;

use crate::DbError;

/// The title a surviving thread gets when its author's account is erased.
pub const REMOVED_TITLE: &str = "[deleted]";

/// As upstream's forum_delete_user / delete_post, set-wise: the user's
/// posts go; thread reply and forum post counts drop by the visible ones;
/// threads left empty go (forum thread counts drop by the visible ones);
/// the others get the time of their latest remaining post. Returns the
/// number of posts removed.
pub(super) async fn delete_posts(tx: &mut Transaction<'_>, userid: i64) -> Result<u64, DbError> {
    let threads: Vec<i64> = tx
        .exec(
            "SELECT DISTINCT thread FROM post WHERE user = ? ORDER BY thread",
            (userid,),
        )
        .await?;
    if threads.is_empty() {
        return Ok(0);
    }
    tx.exec_drop(
        "UPDATE thread t JOIN (SELECT thread, SUM(hidden = 0) AS n FROM post WHERE user = ? \
         GROUP BY thread) p ON p.thread = t.id SET t.replies = GREATEST(t.replies - p.n, 0)",
        (userid,),
    )
    .await?;
    tx.exec_drop(
        "UPDATE forum f JOIN (SELECT t.forum, SUM(p.hidden = 0) AS n FROM post p \
         JOIN thread t ON t.id = p.thread WHERE p.user = ? GROUP BY t.forum) x \
         ON x.forum = f.id SET f.posts = GREATEST(f.posts - x.n, 0)",
        (userid,),
    )
    .await?;
    tx.exec_drop("DELETE FROM post WHERE user = ?", (userid,))
        .await?;
    let removed = tx.affected_rows();
    let ids = vec!["?"; threads.len()].join(", ");
    let params: Vec<mysql_async::Value> = threads.iter().map(|&t| t.into()).collect();
    const EMPTY: &str = "NOT EXISTS (SELECT 1 FROM post p WHERE p.thread = thread.id)";
    tx.exec_drop(
        format!(
            "UPDATE forum f JOIN (SELECT forum, COUNT(*) AS n FROM thread \
             WHERE id IN ({ids}) AND hidden = 0 AND {EMPTY} GROUP BY forum) x \
             ON x.forum = f.id SET f.threads = GREATEST(f.threads - x.n, 0)"
        ),
        params.clone(),
    )
    .await?;
    tx.exec_drop(
        format!("DELETE FROM thread WHERE id IN ({ids}) AND {EMPTY}"),
        params.clone(),
    )
    .await?;
    tx.exec_drop(
        format!(
            "UPDATE thread SET timestamp = (SELECT MAX(p.timestamp) FROM post p \
             WHERE p.thread = thread.id) WHERE id IN ({ids})"
        ),
        params,
    )
    .await?;
    Ok(removed)
}

/// Threads the person started that are still there (others replied) keep
/// their posts but not the title the person wrote. Returns how many.
pub(super) async fn untitle_threads(tx: &mut Transaction<'_>, userid: i64) -> Result<u64, DbError> {
    tx.exec_drop(
        "UPDATE thread SET title = ? WHERE owner = ?",
        (REMOVED_TITLE, userid),
    )
    .await?;
    Ok(tx.affected_rows())
}
