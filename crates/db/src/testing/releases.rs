//! Test support: databases shaped as upstream BOINC's server releases
//! since consent existed leave them (`make_project` loading that
//! release's db/schema.sql, constraints.sql and content.sql), described in
//! our own words: master's tables (`tests/fixtures/upstream_tables.sql`)
//! with each release's differences applied as ALTER statements. What
//! differs, checked against the release tags (see `crate::schema::shape`):
//!
//! * 1.6.2 and master: the same tables (host.misc, 191-character names,
//!   unique user names).
//! * 1.3.0 and 1.4.7: no host.misc; names, emails, authenticators and
//!   other keys 254 characters (job_file names, tokens and consent type
//!   short names 255); user.name a plain index; no batch indexes on
//!   workunit/result, a (workunitid, userid) index on result.
//! * 1.0.4 and 1.2.1: as 1.3, and team plus most forum tables MyISAM,
//!   with a full-text index on team names.
//!
//! Every release creates the two predefined consent types (disabled) and
//! the `latest_consent` view in which same-second rows all count.
//! Test-only: never loaded into a real database.

use super::{run_sql, TestDb};
use crate::text::charset::Charset;

/// master's tables (upstream's whole schema, restated).
pub const MASTER_TABLES: &str = include_str!("../../tests/fixtures/upstream_tables.sql");

/// The view every release creates (db/schema.sql): a row is current when
/// no row of the same user and type has a later time.
const UPSTREAM_VIEW: &str = "CREATE VIEW latest_consent AS SELECT userid, consent_type_id, consent_flag \
FROM consent WHERE NOT EXISTS (SELECT * FROM consent AS later WHERE later.userid = consent.userid \
AND later.consent_type_id = consent.consent_type_id AND later.consent_time > consent.consent_time);\n";

/// Releases before 1.6, from master's tables.
const BEFORE_1_6: &str = "\
ALTER TABLE host DROP COLUMN misc;
ALTER TABLE platform MODIFY name VARCHAR(254) NOT NULL;
ALTER TABLE app MODIFY name VARCHAR(254) NOT NULL;
ALTER TABLE app_version MODIFY plan_class VARCHAR(254) NOT NULL DEFAULT '';
ALTER TABLE user MODIFY email_addr VARCHAR(254) NOT NULL, MODIFY name VARCHAR(254),
  MODIFY authenticator VARCHAR(254);
ALTER TABLE team MODIFY name VARCHAR(254) NOT NULL;
ALTER TABLE workunit MODIFY name VARCHAR(254) NOT NULL;
ALTER TABLE result MODIFY name VARCHAR(254) NOT NULL;
ALTER TABLE job_file MODIFY name VARCHAR(255) NOT NULL;
ALTER TABLE category MODIFY name VARCHAR(254) BINARY;
ALTER TABLE forum MODIFY title VARCHAR(254) NOT NULL;
ALTER TABLE token MODIFY token VARCHAR(255) NOT NULL;
ALTER TABLE consent_type MODIFY shortname VARCHAR(255) NOT NULL;
DROP INDEX name ON user;
CREATE INDEX user_name ON user (name);
DROP INDEX wu_batch ON workunit;
DROP INDEX res_batch ON result;
CREATE INDEX res_wu_user ON result (workunitid, userid);
";

/// Releases before 1.3, on top of [`BEFORE_1_6`].
const BEFORE_1_3: &str = "\
ALTER TABLE team ENGINE=MyISAM;
ALTER TABLE profile ENGINE=MyISAM;
ALTER TABLE thread ENGINE=MyISAM;
ALTER TABLE post ENGINE=MyISAM;
ALTER TABLE forum_preferences ENGINE=MyISAM;
ALTER TABLE forum_logging ENGINE=MyISAM;
ALTER TABLE post_ratings ENGINE=MyISAM;
ALTER TABLE sent_email ENGINE=MyISAM;
ALTER TABLE private_messages ENGINE=MyISAM;
ALTER TABLE credited_job ENGINE=MyISAM;
ALTER TABLE donation_items ENGINE=MyISAM;
ALTER TABLE donation_paypal ENGINE=MyISAM;
ALTER TABLE team_delta ENGINE=MyISAM;
ALTER TABLE banishment_vote ENGINE=MyISAM;
ALTER TABLE banishment_votes ENGINE=MyISAM;
ALTER TABLE team_admin ENGINE=MyISAM;
CREATE FULLTEXT INDEX team_name ON team (name);
";

/// An upstream server release whose database these components must run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    R1_0_4,
    R1_2_1,
    R1_3_0,
    R1_4_7,
    R1_6_2,
    Master,
}

impl Release {
    pub const ALL: [Release; 6] = [
        Release::R1_0_4,
        Release::R1_2_1,
        Release::R1_3_0,
        Release::R1_4_7,
        Release::R1_6_2,
        Release::Master,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Release::R1_0_4 => "1.0.4",
            Release::R1_2_1 => "1.2.1",
            Release::R1_3_0 => "1.3.0",
            Release::R1_4_7 => "1.4.7",
            Release::R1_6_2 => "1.6.2",
            Release::Master => "master",
        }
    }

    /// host.misc exists (else host.serialnum carries the details).
    pub fn has_host_misc(self) -> bool {
        matches!(self, Release::R1_6_2 | Release::Master)
    }

    /// team and the forum tables are MyISAM.
    pub fn myisam(self) -> bool {
        matches!(self, Release::R1_0_4 | Release::R1_2_1)
    }

    /// The whole schema as this release's make_project leaves it.
    pub fn schema_sql(self) -> String {
        let mut sql = String::from(MASTER_TABLES);
        sql.push('\n');
        if !self.has_host_misc() {
            sql.push_str(BEFORE_1_6);
        }
        if self.myisam() {
            sql.push_str(BEFORE_1_3);
        }
        sql.push_str(UPSTREAM_VIEW);
        sql
    }
}

impl TestDb {
    /// A fresh database as `release`'s make_project leaves it, in `cs`
    /// tables (latin1: created `CHARACTER SET latin1`, as on MySQL before
    /// utf8mb4), before any tool of ours ran on it.
    pub async fn release(release: Release, cs: Charset) -> Self {
        let db = match cs {
            Charset::Latin1 => Self::create("CHARACTER SET latin1").await,
            Charset::Utf8mb4 => Self::create("CHARACTER SET utf8mb4").await,
        };
        let mut c = db.conn().await;
        run_sql(&mut c, &release.schema_sql()).await;
        c.disconnect().await.ok();
        db
    }
}
