//! The export's catalogue: every table of upstream BOINC's schema (plus
//! this project's own) that holds data about a person, how its rows are tied
//! to them, and what the part means in plain words for the person reading
//! the export. Tables with no row about any one person (apps, workunits,
//! forums, team credit and badges, donation items, ...) are not listed.
//!
//! What is left out, and why (also told to the reader in `EXPORT_NOT_INCLUDED`
//! in boinc-ops): credentials (`user.passwd_hash`, `authenticator`,
//! `login_token`, the one-time `token.token`); `result.xml_doc_in` (the job
//! the project sent: its scientific input, not about the person). Other
//! people appear only as account ids: a message or friend request shows the
//! other side's id, never their name or address.

/// One part of the export: the rows of `table` that `rows` selects.
#[derive(Debug, PartialEq, Eq)]
pub struct PartSpec {
    /// Key of the part in the export document.
    pub part: &'static str,
    pub table: &'static str,
    /// What the part holds, for the person reading the export.
    pub contents: &'static str,
    /// SQL condition on `table`; every `?` is the person's account id.
    pub rows: &'static str,
    /// Other tables `rows` reads (the part is read only when they exist).
    pub needs: &'static [&'static str],
    /// Columns never exported (credentials, the project's job input).
    pub omit: &'static [&'static str],
    /// ORDER BY: stable columns present in every BOINC version.
    pub order: &'static str,
}

impl PartSpec {
    const fn new(
        part: &'static str,
        table: &'static str,
        rows: &'static str,
        order: &'static str,
        contents: &'static str,
    ) -> Self {
        PartSpec {
            part,
            table,
            contents,
            rows,
            needs: &[],
            omit: &[],
            order,
        }
    }

    const fn needs(self, needs: &'static [&'static str]) -> Self {
        PartSpec { needs, ..self }
    }

    const fn omit(self, omit: &'static [&'static str]) -> Self {
        PartSpec { omit, ..self }
    }
}

pub const PARTS: &[PartSpec] = &[
    PartSpec::new(
        "account",
        "user",
        "id = ?",
        "id",
        "Your account record: email address, name, country, postal code, web site, \
         signature, preferences (XML), credit totals, team id, email history, and when the \
         account was created.",
    )
    .omit(&["passwd_hash", "authenticator", "login_token"]),
    PartSpec::new(
        "hosts",
        "host",
        "userid = ?",
        "id",
        "The computers attached to your account, as the BOINC client reported them: network \
         name, IP addresses, time zone, operating system, processor, memory, disk, network \
         speed, availability and their credit.",
    ),
    PartSpec::new(
        "host_app_versions",
        "host_app_version",
        "host_id IN (SELECT id FROM host WHERE userid = ?)",
        "host_id, app_version_id",
        "Per computer and application version: the speed and turnaround statistics the \
         project's scheduler keeps.",
    )
    .needs(&["host"]),
    PartSpec::new(
        "messages_from_hosts",
        "msg_from_host",
        "hostid IN (SELECT id FROM host WHERE userid = ?)",
        "id",
        "Messages your computers' applications sent to the project while running (BOINC \
         trickle messages).",
    )
    .needs(&["host"]),
    PartSpec::new(
        "messages_to_hosts",
        "msg_to_host",
        "hostid IN (SELECT id FROM host WHERE userid = ?)",
        "id",
        "Messages the project sent to your computers (BOINC trickle messages).",
    )
    .needs(&["host"]),
    PartSpec::new(
        "results",
        "result",
        "userid = ?",
        "id",
        "The tasks your computers were sent and returned: times, state, CPU and elapsed \
         time, credit, exit status, the output file list and the application's error \
         output.",
    )
    .omit(&["xml_doc_in"]),
    PartSpec::new(
        "credited_jobs",
        "credited_job",
        "userid = ?",
        "workunitid",
        "Jobs you were granted credit for.",
    ),
    PartSpec::new(
        "credit_by_app",
        "credit_user",
        "userid = ?",
        "appid, credit_type",
        "Credit per application: jobs, total and recent average credit.",
    ),
    PartSpec::new(
        "teams",
        "team",
        "id = (SELECT teamid FROM user WHERE id = ?) OR userid = ? OR ABS(ping_user) = ?",
        "id",
        "The team you belong to, any team you founded (userid is your account id) and any \
         team whose founder role you asked for (ping_user), as the team is stored.",
    )
    .needs(&["user"]),
    PartSpec::new(
        "team_admin",
        "team_admin",
        "userid = ?",
        "teamid, create_time",
        "Teams you are an administrator of, since when and with which rights.",
    ),
    PartSpec::new(
        "team_history",
        "team_delta",
        "userid = ?",
        "timestamp, teamid, joining",
        "When you joined and left teams, with your credit at the time.",
    ),
    PartSpec::new(
        "badges",
        "badge_user",
        "user_id = ?",
        "badge_id",
        "Badges awarded to you and when.",
    ),
    PartSpec::new(
        "badge_definitions",
        "badge",
        "id IN (SELECT badge_id FROM badge_user WHERE user_id = ?)",
        "id",
        "What each of your badges means (the project's description of it).",
    )
    .needs(&["badge_user"]),
    PartSpec::new(
        "job_batches",
        "batch",
        "user_id = ?",
        "id",
        "Batches of jobs you submitted to the project (remote job submission).",
    ),
    PartSpec::new(
        "job_submission_rights",
        "user_submit",
        "user_id = ?",
        "user_id",
        "Your permission to submit jobs and your quota.",
    ),
    PartSpec::new(
        "job_submission_app_rights",
        "user_submit_app",
        "user_id = ?",
        "app_id",
        "Applications you may submit jobs to or manage.",
    ),
    PartSpec::new(
        "job_assignments",
        "assignment",
        "(target_type = 2 AND target_id = ?) OR (target_type = 1 AND target_id IN \
                 (SELECT id FROM host WHERE userid = ?))",
        "id",
        "Jobs the project assigned to you or to one of your computers.",
    )
    .needs(&["host"]),
    PartSpec::new(
        "profile",
        "profile",
        "userid = ?",
        "userid",
        "Your public profile: language, your answers to the profile questions, picture flag, \
         votes and screening state.",
    ),
    PartSpec::new(
        "forum_threads",
        "thread",
        "owner = ?",
        "id",
        "Message-board threads you started: title, times, views, replies and state.",
    ),
    PartSpec::new(
        "forum_posts",
        "post",
        "user = ?",
        "id",
        "Your posts in the project's message boards: thread, times, text, rating.",
    ),
    PartSpec::new(
        "forum_subscriptions",
        "subscriptions",
        "userid = ?",
        "threadid",
        "Threads (and, as negative numbers, forums) you subscribed to.",
    ),
    PartSpec::new(
        "forum_preferences",
        "forum_preferences",
        "userid = ?",
        "userid",
        "Your message-board settings: signature, avatar, sorting, ignored users (by account \
         id), rated posts, notification choice, banishment time.",
    ),
    PartSpec::new(
        "forum_read_marks",
        "forum_logging",
        "userid = ?",
        "threadid",
        "When you last read each thread.",
    ),
    PartSpec::new(
        "forum_ratings_given",
        "post_ratings",
        "user = ?",
        "post",
        "Your ratings of posts.",
    ),
    PartSpec::new(
        "moderation_votes",
        "banishment_vote",
        "userid = ? OR modid = ?",
        "id",
        "Votes on banishing you from the message boards (userid is you), and votes you \
         started as a moderator (modid is you).",
    ),
    PartSpec::new(
        "moderation_votes_cast",
        "banishment_votes",
        "modid = ?",
        "id",
        "Your own votes, as a moderator, on banishing someone.",
    ),
    PartSpec::new(
        "private_messages",
        "private_messages",
        "userid = ? OR senderid = ?",
        "id",
        "Private messages you sent (senderid is you) or received (userid is you) on the \
         project's web site, with subject and text. The other person is shown by account id \
         only.",
    ),
    PartSpec::new(
        "friends",
        "friend",
        "user_src = ? OR user_dest = ?",
        "create_time, user_src, user_dest",
        "Friend requests you sent (user_src is you) or received (user_dest is you), with \
         their message and whether they were returned. The other person is shown by \
         account id only.",
    ),
    PartSpec::new(
        "notifications",
        "notify",
        "userid = ?",
        "id",
        "Notifications waiting for you on the web site (friend requests, private messages, \
         subscribed threads).",
    ),
    PartSpec::new(
        "emails_sent",
        "sent_email",
        "userid = ?",
        "userid",
        "The last email the project sent you (newsletter, reminders, ...) and when.",
    ),
    PartSpec::new(
        "donations",
        "donation_paypal",
        "userid = ?",
        "id",
        "Your donations through PayPal: amounts, currency, times, state, the PayPal \
         transaction id, and the payer's email address and name PayPal reported.",
    ),
    PartSpec::new(
        "tokens",
        "token",
        "userid = ?",
        "create_time, type",
        "One-time links issued for your account (password reset, account deletion, ...): \
         their type and validity. The link's secret itself is not included.",
    )
    .omit(&["token"]),
    PartSpec::new(
        "deletion_record",
        "user_deleted",
        "userid = ?",
        "userid",
        "The record telling statistics sites that your account was deleted, when it was, \
         with the public cross-project id they knew.",
    ),
    PartSpec::new(
        "host_deletion_records",
        "host_deleted",
        "hostid IN (SELECT id FROM host WHERE userid = ?)",
        "hostid",
        "The same for your computers.",
    )
    .needs(&["host"]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_subqueries_are_the_one_shape() {
        for p in PARTS.iter().filter(|p| p.needs.contains(&"host")) {
            assert!(
                p.rows.contains("SELECT id FROM host WHERE userid = ?"),
                "{}",
                p.part
            );
        }
    }
}
