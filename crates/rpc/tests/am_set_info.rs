//! am_set_info against real MariaDB.

mod common;

use common::*;
use mysql_async::prelude::*;

const SUCCESS: &str = "<am_set_info_reply>\n    <success/>\n    \n</am_set_info_reply>\n";

async fn stats_project() -> (Harness, String, i64) {
    let h = Harness::consent_project("").await;
    h.set_type_enabled("STATSEXPORT", true).await;
    let auth = h.new_account("u@example.com", "User", &[]).await;
    let id = h.user("u@example.com").await.unwrap().id;
    (h, auth, id)
}

fn consent<'a>(auth: &'a str, name: &'a str, flag: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("account_key", auth),
        ("consent_name", name),
        ("consent_flag", flag),
        ("consent_not_required", "0"),
        ("consent_source", "AM"),
    ]
}

#[tokio::test]
async fn three_of_four_consent_params_record_nothing_but_succeed() {
    let (h, auth, id) = stats_project().await;
    let all = consent(&auth, "STATSEXPORT", "1");
    for skip in 1..5 {
        let params: Vec<_> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, p)| *p)
            .collect();
        let body = h.call("am_set_info.php", &params).await;
        assert_eq!(body, format!("{HEADER}{SUCCESS}"));
    }
    assert!(h.consents(id).await.is_empty());
}

#[tokio::test]
async fn all_four_record_with_server_time_repeat_is_noop_flip_adds_row() {
    let (h, auth, id) = stats_project().await;
    let before = boinc_db::now();
    let body = h
        .call("am_set_info.php", &consent(&auth, "STATSEXPORT", "1"))
        .await;
    assert_eq!(body, format!("{HEADER}{SUCCESS}"));
    let rows = h.consents(id).await;
    assert_eq!(rows.len(), 1);
    let (t, flag, nr, src, time) = &rows[0];
    assert_eq!(
        (t.as_str(), *flag, *nr, src.as_str()),
        ("STATSEXPORT", 1, 0, "AM")
    );
    assert!(*time >= before && *time <= boinc_db::now(), "server time");

    // The same again: no new row.
    h.call("am_set_info.php", &consent(&auth, "STATSEXPORT", "1"))
        .await;
    assert_eq!(h.consents(id).await.len(), 1);
    // Flipped: a new row, the latest says 0.
    h.call("am_set_info.php", &consent(&auth, "STATSEXPORT", "0"))
        .await;
    let rows = h.consents(id).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].1, 0);
    let mut c = h.conn().await;
    let latest: Option<i64> = c
        .exec_first(
            "SELECT consent_flag FROM latest_consent l JOIN consent_type t ON t.id = l.consent_type_id \
             WHERE l.userid = ? AND t.shortname = 'STATSEXPORT'",
            (id,),
        )
        .await
        .unwrap();
    assert_eq!(latest, Some(0));
    // And back: a third row (same second is fine; the later id wins).
    h.call("am_set_info.php", &consent(&auth, "STATSEXPORT", "1"))
        .await;
    assert_eq!(h.consents(id).await.len(), 3);
    let latest: Vec<i64> = c
        .exec(
            "SELECT consent_flag FROM latest_consent WHERE userid = ?",
            (id,),
        )
        .await
        .unwrap();
    assert_eq!(latest, vec![1], "exactly one latest row");
}

#[tokio::test]
async fn caller_cannot_choose_consent_time() {
    let (h, auth, id) = stats_project().await;
    let mut p = consent(&auth, "STATSEXPORT", "1");
    p.push(("consent_time", "12345"));
    h.call("am_set_info.php", &p).await;
    assert!(h.consents(id).await[0].4 > 12345);
}

#[tokio::test]
async fn disabled_or_unknown_type_records_nothing_with_warning() {
    let (h, auth, id) = stats_project().await;
    h.add_type("NEWSLETTER", false).await;
    for name in ["NEWSLETTER", "NO_SUCH_TYPE"] {
        let body = h.call("am_set_info.php", &consent(&auth, name, "1")).await;
        assert!(body.contains("<success/>"), "{body}");
        let w = tag(&body, "consent_warning").unwrap_or_else(|| panic!("{body}"));
        assert!(w.contains(name), "{w}");
    }
    assert!(h.consents(id).await.is_empty());
}

#[tokio::test]
async fn flags_must_be_0_or_1() {
    let (h, auth, id) = stats_project().await;
    for (flag, nr) in [("yes", "0"), ("1", "2"), ("", "0"), ("1", "")] {
        let body = h
            .call(
                "am_set_info.php",
                &[
                    ("account_key", auth.as_str()),
                    ("consent_name", "STATSEXPORT"),
                    ("consent_flag", flag),
                    ("consent_not_required", nr),
                    ("consent_source", "AM"),
                    ("country", "Germany"),
                ],
            )
            .await;
        assert_error(&body, -1);
    }
    assert!(h.consents(id).await.is_empty());
    assert_eq!(
        h.user("u@example.com").await.unwrap().country,
        "International"
    );
}

#[tokio::test]
async fn enroll_withdrawal_is_refused() {
    let h = Harness::consent_project("").await;
    let auth = h
        .new_account(
            "e@example.com",
            "Enrolled",
            &[("consent_flag", "1"), ("source", "client")],
        )
        .await;
    let id = h.user("e@example.com").await.unwrap().id;
    let body = h
        .call("am_set_info.php", &consent(&auth, "ENROLL", "0"))
        .await;
    assert_error(&body, -1);
    assert!(body.contains("ENROLL"), "{body}");
    let rows = h.consents(id).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, 1);
}

#[tokio::test]
async fn statsexport_withdrawal_touches_only_consent() {
    let (h, auth, id) = stats_project().await;
    let mut c = h.conn().await;
    c.exec_drop(
        "INSERT INTO host (create_time, userid, rpc_seqno, rpc_time, total_credit, expavg_credit, \
         expavg_time, timezone, nsame_ip_addr, on_frac, connected_frac, active_frac, cpu_efficiency, \
         duration_correction_factor, p_ncpus, p_fpops, p_iops, p_membw, m_nbytes, m_cache, m_swap, \
         d_total, d_free, d_boinc_used_total, d_boinc_used_project, d_boinc_max, n_bwup, n_bwdown, \
         credit_per_cpu_sec, venue, nresults_today, avg_turnaround, max_results_day, product_name, \
         gpu_active_frac, p_ngpus, p_gpu_fpops, host_cpid, domain_name) VALUES \
         (1, ?, 0, 0, 5, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '', \
         0, 0, 0, '', 0, 0, 0, 'hcpid', 'box')",
        (id,),
    )
    .await
    .unwrap();
    h.call("am_set_info.php", &consent(&auth, "STATSEXPORT", "1"))
        .await;
    let before = h.user("u@example.com").await.unwrap();
    let body = h
        .call("am_set_info.php", &consent(&auth, "STATSEXPORT", "0"))
        .await;
    assert_eq!(body, format!("{HEADER}{SUCCESS}"));
    let n: i64 = c
        .query_first("SELECT COUNT(*) FROM user_deleted")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "user_deleted untouched");
    let n: i64 = c
        .query_first("SELECT COUNT(*) FROM host_deleted")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "host_deleted untouched");
    let n: i64 = c
        .query_first("SELECT COUNT(*) FROM host")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 1);
    let after = h.user("u@example.com").await.unwrap();
    assert_eq!(before.authenticator, after.authenticator);
    assert_eq!(before.email_addr, after.email_addr);
    assert_eq!(h.consents(id).await.len(), 2);
}

#[tokio::test]
async fn unknown_account_key_is_136_and_missing_is_1() {
    let h = Harness::new("", None).await;
    assert_error(
        &h.call("am_set_info.php", &[("account_key", "nope")]).await,
        -136,
    );
    assert_error(&h.call("am_set_info.php", &[("name", "x")]).await, -1);
}

#[tokio::test]
async fn profile_fields_update() {
    let h = Harness::new("", None).await;
    let auth = h.new_account("p@example.com", "Profile", &[]).await;
    let gp = "<global_preferences>\n<run_on_batteries>0</run_on_batteries>\n</global_preferences>";
    let pp = "<project_preferences>\n<resource_share>50</resource_share>\n</project_preferences>";
    let body = h
        .call(
            "am_set_info.php",
            &[
                ("account_key", auth.as_str()),
                ("name", "New Name"),
                ("country", "Germany"),
                ("url", "example.org/me"),
                ("send_email", "0"),
                ("show_hosts", "0"),
                ("venue", "home"),
                ("global_prefs", gp),
                ("project_prefs", pp),
            ],
        )
        .await;
    assert_eq!(body, format!("{HEADER}{SUCCESS}"));
    let u = h.user("p@example.com").await.unwrap();
    assert_eq!(u.name, "New Name");
    assert_eq!(u.country, "Germany");
    assert_eq!(u.url, "example.org/me");
    assert_eq!((u.send_email, u.show_hosts), (0, 0));
    assert_eq!(u.venue, "home");
    assert_eq!(u.global_prefs, gp);
    assert_eq!(u.project_prefs, pp);
}

#[tokio::test]
async fn bad_prefs_are_112_and_change_nothing() {
    let h = Harness::new("", None).await;
    let auth = h.new_account("p@example.com", "Profile", &[]).await;
    for (k, v) in [
        ("global_prefs", "<global_preferences></global_preferences>"),
        ("global_prefs", "<foo>\n</foo>"),
        ("project_prefs", "<project_preferences>\n<x>"),
    ] {
        let body = h
            .call(
                "am_set_info.php",
                &[("account_key", auth.as_str()), ("name", "Changed"), (k, v)],
            )
            .await;
        assert_error(&body, -112);
    }
    assert_eq!(h.user("p@example.com").await.unwrap().name, "Profile");
}

#[tokio::test]
async fn taken_or_bad_name_is_188() {
    let h = Harness::new("", None).await;
    h.new_account("a@example.com", "Alice", &[]).await;
    let auth = h.new_account("b@example.com", "Bob", &[]).await;
    let body = h
        .call(
            "am_set_info.php",
            &[("account_key", auth.as_str()), ("name", "Alice")],
        )
        .await;
    assert_error(&body, -188);
    let body = h
        .call(
            "am_set_info.php",
            &[("account_key", auth.as_str()), ("name", "<b>")],
        )
        .await;
    assert_error(&body, -188);
    // Own name again is fine.
    let body = h
        .call(
            "am_set_info.php",
            &[("account_key", auth.as_str()), ("name", "Bob")],
        )
        .await;
    assert!(body.contains("<success/>"), "{body}");
}

#[tokio::test]
async fn credentials_refused_unless_allowed() {
    let h = Harness::new("", None).await;
    let auth = h.new_account("c@example.com", "Cred", &[]).await;
    let before = h.user("c@example.com").await.unwrap();
    let body = h
        .call(
            "am_set_info.php",
            &[
                ("account_key", auth.as_str()),
                ("email_addr", "thief@example.com"),
            ],
        )
        .await;
    assert_error(&body, -1);
    let new_hash = passwd_hash("stolen", "c@example.com");
    let body = h
        .call(
            "am_set_info.php",
            &[
                ("account_key", auth.as_str()),
                ("password_hash", new_hash.as_str()),
            ],
        )
        .await;
    assert_error(&body, -1);
    let after = h.user("c@example.com").await.unwrap();
    assert_eq!(before.passwd_hash, after.passwd_hash);
    // Sending the current email and password is harmless.
    let same = passwd_hash("secret", "c@example.com");
    let body = h
        .call(
            "am_set_info.php",
            &[
                ("account_key", auth.as_str()),
                ("email_addr", "C@example.com"),
                ("password_hash", same.as_str()),
            ],
        )
        .await;
    assert!(body.contains("<success/>"), "{body}");
}

#[tokio::test]
async fn credentials_change_when_allowed_with_cooldown() {
    let h = Harness::new("<am_set_info_allow_credentials/>", None).await;
    let auth = h.new_account("old@example.com", "Mover", &[]).await;
    h.new_account("other@example.com", "Other", &[]).await;
    // Taken address.
    let body = h
        .call(
            "am_set_info.php",
            &[
                ("account_key", auth.as_str()),
                ("email_addr", "other@example.com"),
            ],
        )
        .await;
    assert_error(&body, -137);
    let body = h
        .call(
            "am_set_info.php",
            &[("account_key", auth.as_str()), ("email_addr", "bad")],
        )
        .await;
    assert_error(&body, -205);
    let new_hash = passwd_hash("newpw", "new@example.com");
    let body = h
        .call(
            "am_set_info.php",
            &[
                ("account_key", auth.as_str()),
                ("email_addr", "New@example.com"),
                ("password_hash", new_hash.as_str()),
            ],
        )
        .await;
    assert!(body.contains("<success/>"), "{body}");
    let u = h.user("new@example.com").await.expect("moved");
    assert_eq!(u.previous_email_addr, "old@example.com");
    assert!(u.email_addr_change_time > 0.0);
    assert!(u.passwd_hash.starts_with("$2y$"));
    assert!(boinc_db::password::verify(&new_hash, &u.passwd_hash));
    // The old address is now someone's previous email: create_account refuses it,
    // and so does another account's email change.
    assert_error(&h.create("old@example.com", "pw", "Reuse", &[]).await, -137);
    let other = h.user("other@example.com").await.unwrap().authenticator;
    let body = h
        .call(
            "am_set_info.php",
            &[
                ("account_key", other.as_str()),
                ("email_addr", "old@example.com"),
            ],
        )
        .await;
    assert_error(&body, -137);
    assert_eq!(
        h.user("other@example.com").await.unwrap().email_addr,
        "other@example.com"
    );
    // Within 7 days: no second change.
    let body = h
        .call(
            "am_set_info.php",
            &[
                ("account_key", auth.as_str()),
                ("email_addr", "third@example.com"),
            ],
        )
        .await;
    assert_error(&body, -205);
    assert!(body.contains("7 days"), "{body}");
}

#[tokio::test]
async fn post_body_wins_over_query() {
    let (h, auth, id) = stats_project().await;
    // account_key in the body: the query's consent params are ignored.
    let url = "am_set_info.php?consent_name=STATSEXPORT&consent_flag=1&consent_not_required=0\
               &consent_source=AM&country=Peru";
    let body = h
        .post(
            url,
            &[("account_key", auth.as_str()), ("country", "Norway")],
        )
        .await;
    assert!(body.contains("<success/>"), "{body}");
    assert!(h.consents(id).await.is_empty());
    assert_eq!(h.user("u@example.com").await.unwrap().country, "Norway");
    // account_key only in the query: everything comes from the query.
    let url = format!("am_set_info.php?account_key={auth}&country=Peru");
    h.post(&url, &[("country", "Norway")]).await;
    assert_eq!(h.user("u@example.com").await.unwrap().country, "Peru");
}

#[tokio::test]
async fn team_join_and_quit() {
    let h = Harness::new("", None).await;
    let auth = h.new_account("t@example.com", "Teamer", &[]).await;
    let mut c = h.conn().await;
    c.query_drop(
        "INSERT INTO team (create_time, userid, name, type, nusers, expavg_time, joinable) VALUES \
         (1, 0, 'Open', 1, 0, 0, 1), (1, 0, 'Closed', 1, 0, 0, 0)",
    )
    .await
    .unwrap();
    let open: i64 = c
        .query_first("SELECT id FROM team WHERE name='Open'")
        .await
        .unwrap()
        .unwrap();
    let closed: i64 = c
        .query_first("SELECT id FROM team WHERE name='Closed'")
        .await
        .unwrap()
        .unwrap();
    h.call(
        "am_set_info.php",
        &[
            ("account_key", auth.as_str()),
            ("teamid", &closed.to_string()),
        ],
    )
    .await;
    assert_eq!(h.user("t@example.com").await.unwrap().teamid, 0);
    h.call(
        "am_set_info.php",
        &[
            ("account_key", auth.as_str()),
            ("teamid", &open.to_string()),
        ],
    )
    .await;
    assert_eq!(h.user("t@example.com").await.unwrap().teamid, open);
    h.call(
        "am_set_info.php",
        &[("account_key", auth.as_str()), ("teamid", "0")],
    )
    .await;
    assert_eq!(h.user("t@example.com").await.unwrap().teamid, 0);
    assert_error(
        &h.call(
            "am_set_info.php",
            &[("account_key", auth.as_str()), ("teamid", "x")],
        )
        .await,
        -1,
    );
}

/// Every field the RPC can change, with a consent change whose INSERT (the
/// call's last write) fails: the profile update, the email and password
/// change and the team join written before it are all rolled back, and the
/// caller is told the database failed.
#[tokio::test]
async fn one_transaction_failed_consent_keeps_profile_unchanged() {
    let h = Harness::consent_project("<am_set_info_allow_credentials/>").await;
    h.set_type_enabled("STATSEXPORT", true).await;
    let auth = h.new_account("u@example.com", "User", &[]).await;
    let id = h.user("u@example.com").await.unwrap().id;
    let mut c = h.conn().await;
    c.query_drop(
        "INSERT INTO team (create_time, userid, name, type, nusers, expavg_time, joinable) \
         VALUES (1, 0, 'Open', 1, 0, 0, 1)",
    )
    .await
    .unwrap();
    let team: i64 = c
        .query_first("SELECT id FROM team WHERE name = 'Open'")
        .await
        .unwrap()
        .unwrap();
    let team = team.to_string();
    let new_hash = passwd_hash("newpw", "moved@example.com");
    let gp = "<global_preferences>\n<run_on_batteries>0</run_on_batteries>\n</global_preferences>";
    let pp = "<project_preferences>\n<resource_share>50</resource_share>\n</project_preferences>";
    let mut p = consent(&auth, "STATSEXPORT", "1");
    p.extend([
        ("name", "Changed Name"),
        ("country", "Germany"),
        ("postal_code", "12345"),
        ("global_prefs", gp),
        ("project_prefs", pp),
        ("url", "example.org/me"),
        ("send_email", "0"),
        ("show_hosts", "0"),
        ("teamid", team.as_str()),
        ("venue", "work"),
        ("email_addr", "moved@example.com"),
        ("password_hash", new_hash.as_str()),
    ]);
    // rpc_limit: the per-address counters are not the call's writes.
    let before = h.every_row(&["rpc_limit"]).await;
    c.query_drop(
        "CREATE TRIGGER fail_consent BEFORE INSERT ON consent FOR EACH ROW \
         SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'forced failure'",
    )
    .await
    .unwrap();
    let body = h.call("am_set_info.php", &p).await;
    assert_error(&body, -1);
    assert!(
        body.contains("<error_msg>database error, please contact site administrators</error_msg>"),
        "{body}"
    );
    assert_eq!(
        h.every_row(&["rpc_limit"]).await,
        before,
        "a failed call left some of its writes"
    );
    // Without the failing insert the same call changes every field, so
    // each was really attempted above.
    c.query_drop("DROP TRIGGER fail_consent").await.unwrap();
    let body = h.call("am_set_info.php", &p).await;
    assert!(body.contains("<success/>"), "{body}");
    let u = h.user("moved@example.com").await.expect("moved");
    assert_eq!(u.id, id);
    assert_eq!(
        (
            u.name.as_str(),
            u.country.as_str(),
            u.url.as_str(),
            u.send_email,
            u.show_hosts,
            u.venue.as_str(),
            u.teamid.to_string(),
            u.global_prefs.as_str(),
            u.project_prefs.as_str(),
        ),
        (
            "Changed Name",
            "Germany",
            "example.org/me",
            0,
            0,
            "work",
            team.clone(),
            gp,
            pp
        )
    );
    assert!(boinc_db::password::verify(&new_hash, &u.passwd_hash));
    let postal: Option<String> = c
        .exec_first("SELECT postal_code FROM user WHERE id = ?", (id,))
        .await
        .unwrap();
    assert_eq!(postal.as_deref(), Some("12345"));
    assert_eq!(h.consents(id).await.len(), 1);
}

/// Consented means consent_flag = 1 only: a latest stored row with an odd
/// flag (2, -1) is not consent, so consenting records a row, while a
/// withdrawal after it records nothing (already not consenting).
#[tokio::test]
async fn odd_stored_flag_is_not_consent() {
    for odd in [2, -1] {
        let (h, auth, id) = stats_project().await;
        let mut c = h.conn().await;
        c.exec_drop(
            "INSERT INTO consent (userid, consent_type_id, consent_time, consent_flag, \
             consent_not_required, source) SELECT ?, id, ?, ?, 0, 'odd' FROM consent_type \
             WHERE shortname = 'STATSEXPORT'",
            (id, boinc_db::now() - 100, odd),
        )
        .await
        .unwrap();
        let body = h
            .call("am_set_info.php", &consent(&auth, "STATSEXPORT", "0"))
            .await;
        assert_eq!(body, format!("{HEADER}{SUCCESS}"));
        assert_eq!(
            h.consents(id).await.len(),
            1,
            "flag {odd}: withdrawal recorded"
        );
        let body = h
            .call("am_set_info.php", &consent(&auth, "STATSEXPORT", "1"))
            .await;
        assert_eq!(body, format!("{HEADER}{SUCCESS}"));
        let rows = h.consents(id).await;
        assert_eq!(rows.len(), 2, "flag {odd}: {rows:?}");
        assert_eq!((rows[1].1, rows[1].3.as_str()), (1, "AM"));
    }
}
