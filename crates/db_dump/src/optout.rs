//! The optout lists: users who withdrew STATSEXPORT consent within the
//! window after having consented (and, by the host scan, their hosts).

use roaring::RoaringTreemap;

use mysql_async::prelude::*;
use mysql_async::Conn;

use crate::error::{db, DumpError};
use crate::owners::Owners;
use crate::query;

/// Withdrawals this recent are listed in the optout files (BOINC keeps
/// deletion records as long).
pub const OPTOUT_WINDOW_SECS: i64 = 60 * 86400;

#[derive(Default)]
pub(crate) struct Optout {
    /// (user id, cpid, shows hosts), by id.
    pub users: Vec<(i64, [u8; 32], bool)>,
    /// Those of them whose hosts may be listed: the ones showing their
    /// hosts (listing a hidden owner's hosts beside their id would link
    /// them).
    pub host_owners: RoaringTreemap,
}

impl Optout {
    /// The lists from the withdrawals (`withdrawn`, by id) and the owner
    /// pass's candidates (taken, not copied: at 10M users they are
    /// hundreds of thousands): only users who were exportable (credit, not
    /// deleted) are named, so nobody appears who was never in a user file.
    pub(crate) fn new(withdrawn: &[i64], owners: &Owners) -> Self {
        let mut users = owners.take_optout_candidates();
        users.retain(|c| withdrawn.binary_search(&c.0).is_ok());
        users.shrink_to_fit();
        let mut host_owners = RoaringTreemap::new();
        for &(id, _, show_hosts) in &users {
            if show_hosts {
                host_owners.insert(id as u64);
            }
        }
        Optout { users, host_owners }
    }
}

/// Users whose latest STATSEXPORT consent is a withdrawal made since
/// `since` after having consented, by id. One ordered pass over the
/// candidates' histories; the result is as small as the number of recent
/// withdrawals.
pub(crate) async fn withdrawn_users(
    conn: &mut Conn,
    type_id: i64,
    since: i64,
) -> Result<Vec<i64>, DumpError> {
    let mut result = conn
        .exec_iter(query::optout_candidates(type_id, since), ())
        .await
        .map_err(db("optout candidates"))?;
    let mut out = Vec::new();
    let mut cur: Option<i64> = None;
    let mut tracker = Tracker::default();
    let finish = |cur: Option<i64>, t: &Tracker, out: &mut Vec<i64>| {
        if let Some(id) = cur {
            if t.withdrawn_at.is_some_and(|w| w >= since) {
                out.push(id);
            }
        }
    };
    while let Some(row) = result.next().await.map_err(db("optout candidates"))? {
        let uid = query::int(&row, 0);
        if cur != Some(uid) {
            finish(cur.take(), &tracker, &mut out);
            tracker = Tracker::default();
            cur = Some(uid);
        }
        // Consent means flag 1, as for the export itself.
        tracker.push(query::int(&row, 2) == 1, query::int(&row, 1));
    }
    finish(cur.take(), &tracker, &mut out);
    drop(result);
    Ok(out)
}

/// Walks one user's consent history in (time, id) order.
#[derive(Default)]
struct Tracker {
    had_consent: bool,
    /// Time of the first refusal after the last consent, while the latest
    /// row is a refusal.
    withdrawn_at: Option<i64>,
}

impl Tracker {
    fn push(&mut self, flag: bool, time: i64) {
        if flag {
            self.had_consent = true;
            self.withdrawn_at = None;
        } else if self.had_consent && self.withdrawn_at.is_none() {
            self.withdrawn_at = Some(time);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Tracker;

    fn run(rows: &[(bool, i64)]) -> Option<i64> {
        let mut t = Tracker::default();
        for &(f, time) in rows {
            t.push(f, time);
        }
        t.withdrawn_at
    }

    #[test]
    fn withdrawal_time_is_first_refusal_after_last_consent() {
        assert_eq!(run(&[(true, 1), (false, 5), (false, 9)]), Some(5));
        assert_eq!(run(&[(false, 1)]), None, "never consented");
        assert_eq!(
            run(&[(true, 1), (false, 2), (true, 3)]),
            None,
            "consents again"
        );
        assert_eq!(run(&[(false, 1), (true, 2), (false, 7)]), Some(7));
        assert_eq!(run(&[]), None);
    }
}
