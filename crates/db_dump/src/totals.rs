//! tables.xml's inputs that no enumeration counts: table totals, the
//! application list and the badges.

use boinc_db::schema::shape::Shape;
use mysql_async::prelude::*;
use mysql_async::Conn;

use crate::ctx::Ctx;
use crate::error::{db, DumpError};
use crate::query;
use crate::record::{Badge, Totals};
use crate::spec::Table;

pub(crate) async fn totals(ctx: &Ctx, tables: &[Table]) -> Result<Totals, DumpError> {
    let mut conn = ctx.snap.lease().await?;
    let mut t = Totals::default();
    let has = |x: Table| tables.contains(&x);
    let count = |v: Option<i64>| v.unwrap_or(0).max(0) as u64;
    // With a host enumeration, its scans give the user and host totals.
    if has(Table::User) && !has(Table::Host) {
        let r: Option<(i64, f64)> = conn
            .exec_first(query::count_users(), ())
            .await
            .map_err(db("count users"))?;
        let (n, credit) = r.unwrap_or((0, 0.0));
        t.nusers = n.max(0) as u64;
        t.total_credit = credit;
    }
    if has(Table::Team) {
        t.nteams = count(
            conn.query_first(query::COUNT_TEAMS)
                .await
                .map_err(db("count teams"))?,
        );
    }
    if has(Table::UserDeleted) {
        t.nusers_deleted = count(
            conn.query_first(query::COUNT_USERS_DELETED)
                .await
                .map_err(db("count user_deleted"))?,
        );
    }
    if has(Table::HostDeleted) {
        t.nhosts_deleted = count(
            conn.query_first(query::COUNT_HOSTS_DELETED)
                .await
                .map_err(db("count host_deleted"))?,
        );
    }
    Ok(t)
}

type BadgeRow = (i64, Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);

pub(crate) async fn badges(conn: &mut Conn, shape: &Shape) -> Result<Vec<Badge>, DumpError> {
    if !shape.has_table("badge") {
        return Ok(Vec::new());
    }
    conn.query_map(query::BADGES, |(id, name, title, image_url): BadgeRow| {
        Badge {
            id,
            name: name.unwrap_or_default(),
            title: title.unwrap_or_default(),
            image_url: image_url.unwrap_or_default(),
        }
    })
    .await
    .map_err(db("list badges"))
}
