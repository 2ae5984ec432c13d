//! The owner map: one pass over the users gives, per user id, whether
//! the user may own exported hosts (exists and, with the consent filter,
//! consents) and shows hosts, plus tables.xml's user totals. Users, hosts
//! and team members are filtered against it without per-row queries.

use mysql_async::prelude::*;

use crate::dump::{connect, Ctx};
use crate::error::{db, DumpError};
use crate::query;

/// Two bits per user id: may own exported hosts (exists and, with the
/// consent filter, consents) and shows hosts. 1M users take 250 KB.
#[derive(Default)]
pub struct Owners {
    ok: Vec<u64>,
    show: Vec<u64>,
    /// tables.xml's user totals, from the same pass.
    pub nusers: u64,
    pub total_credit: f64,
}

impl Owners {
    fn set(bits: &mut Vec<u64>, id: usize) {
        let w = id / 64;
        if bits.len() <= w {
            bits.resize(w + 1, 0);
        }
        bits[w] |= 1 << (id % 64);
    }

    fn get(bits: &[u64], id: i64) -> bool {
        usize::try_from(id)
            .ok()
            .and_then(|i| bits.get(i / 64).map(|w| w & (1 << (i % 64)) != 0))
            .unwrap_or(false)
    }

    pub fn insert(&mut self, id: i64, show_hosts: bool) {
        if let Ok(i) = usize::try_from(id) {
            Self::set(&mut self.ok, i);
            if show_hosts {
                Self::set(&mut self.show, i);
            }
        }
    }

    pub fn ok(&self, id: i64) -> bool {
        Self::get(&self.ok, id)
    }

    /// None: no such owner (upstream then leaves out userid).
    pub fn show_hosts(&self, id: i64) -> Option<bool> {
        self.ok(id).then(|| Self::get(&self.show, id))
    }
}

/// The owner bitmap, on a connection of its own.
pub(crate) async fn owner_map(ctx: &Ctx) -> Result<Owners, DumpError> {
    let mut conn = connect(&ctx.settings).await?;
    let mut owners = Owners::default();
    {
        let mut result = conn
            .exec_iter(query::owners(ctx.consent), ())
            .await
            .map_err(db("host owners"))?;
        while let Some(row) = result.next().await.map_err(db("host owners"))? {
            ctx.check()?;
            if query::int(&row, 2) == 1 {
                owners.insert(query::int(&row, 0), query::int(&row, 1) != 0);
            }
            if query::int(&row, 3) == 1 {
                owners.nusers += 1;
                owners.total_credit += query::dbl(&row, 4);
            }
        }
    }
    let _ = conn.disconnect().await;
    Ok(owners)
}

#[cfg(test)]
mod tests {
    use super::Owners;

    #[test]
    fn owner_bitmap() {
        let mut o = Owners::default();
        o.insert(1, true);
        o.insert(64, false);
        o.insert(1000, true);
        assert_eq!(o.show_hosts(1), Some(true));
        assert_eq!(o.show_hosts(64), Some(false));
        assert_eq!(o.show_hosts(1000), Some(true));
        assert_eq!(o.show_hosts(2), None);
        assert!(!o.ok(-5) && !o.ok(0) && !o.ok(5000));
    }
}
