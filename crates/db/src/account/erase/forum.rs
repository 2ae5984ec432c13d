//! The message boards' part of an erase: the person's posts go (as BOINC's
//! forum_delete_user), and threads they started that live on with other
//! people's replies lose the title they wrote.

use std::collections::BTreeMap;

use mysql_async::prelude::*;
use mysql_async::Transaction;

use crate::DbError;

/// The title a surviving thread gets when its author's account is erased.
pub const REMOVED_TITLE: &str = "[deleted]";

/// As upstream's forum_delete_user / delete_post: the user's posts go;
/// thread reply and forum post counts drop by the visible ones; threads
/// left empty go (forum thread counts drop by the visible ones); the others
/// get the time of their latest remaining post. Returns the number of posts
/// removed. Counts are read first and threads and forums changed by id, so
/// the erase locks only the threads and forums it changes, never waits on
/// a thread someone else is writing.
pub(super) async fn delete_posts(tx: &mut Transaction<'_>, userid: i64) -> Result<u64, DbError> {
    // (thread, its forum, the user's visible posts in it)
    let per_thread: Vec<(i64, i64, i64)> = tx
        .exec(
            "SELECT p.thread, t.forum, CAST(SUM(p.hidden = 0) AS SIGNED) FROM post p \
             JOIN thread t ON t.id = p.thread WHERE p.user = ? \
             GROUP BY p.thread, t.forum ORDER BY p.thread",
            (userid,),
        )
        .await?;
    let mut forum_posts: BTreeMap<i64, i64> = BTreeMap::new();
    for &(thread, forum, visible) in &per_thread {
        if visible > 0 {
            tx.exec_drop(
                "UPDATE thread SET replies = GREATEST(replies - ?, 0) WHERE id = ?",
                (visible, thread),
            )
            .await?;
            *forum_posts.entry(forum).or_default() += visible;
        }
    }
    tx.exec_drop("DELETE FROM post WHERE user = ?", (userid,))
        .await?;
    let removed = tx.affected_rows();

    // Threads left without posts go; the forum counts the visible ones.
    let mut forum_threads: BTreeMap<i64, i64> = BTreeMap::new();
    let mut survivors = Vec::new();
    for &(thread, forum, _) in &per_thread {
        let left: Option<(i64, i64)> = tx
            .exec_first(
                "SELECT COUNT(p.id), t.hidden FROM thread t LEFT JOIN post p ON p.thread = t.id \
                 WHERE t.id = ? GROUP BY t.hidden",
                (thread,),
            )
            .await?;
        match left {
            Some((0, hidden)) => {
                tx.exec_drop("DELETE FROM thread WHERE id = ?", (thread,))
                    .await?;
                if hidden == 0 {
                    *forum_threads.entry(forum).or_default() += 1;
                }
            }
            Some(_) => survivors.push(thread),
            None => {}
        }
    }
    for (forum, n) in forum_posts {
        tx.exec_drop(
            "UPDATE forum SET posts = GREATEST(posts - ?, 0) WHERE id = ?",
            (n, forum),
        )
        .await?;
    }
    for (forum, n) in forum_threads {
        tx.exec_drop(
            "UPDATE forum SET threads = GREATEST(threads - ?, 0) WHERE id = ?",
            (n, forum),
        )
        .await?;
    }
    for thread in survivors {
        tx.exec_drop(
            "UPDATE thread SET timestamp = \
             (SELECT MAX(p.timestamp) FROM post p WHERE p.thread = ?) WHERE id = ?",
            (thread, thread),
        )
        .await?;
    }
    Ok(removed)
}

/// Threads the person started that are still there (others replied) keep
/// their posts but not the title the person wrote. Found first, then
/// changed by id (no index serves `owner`). Returns how many.
pub(super) async fn untitle_threads(tx: &mut Transaction<'_>, userid: i64) -> Result<u64, DbError> {
    let ids: Vec<i64> = tx
        .exec("SELECT id FROM thread WHERE owner = ?", (userid,))
        .await?;
    let mut changed = 0;
    for id in ids {
        tx.exec_drop(
            "UPDATE thread SET title = ? WHERE id = ?",
            (REMOVED_TITLE, id),
        )
        .await?;
        changed += tx.affected_rows();
    }
    Ok(changed)
}
