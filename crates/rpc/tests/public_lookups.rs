//! The public XML lookups (show_user, team_email_list, team_lookup)
//! against a real MariaDB, under the shared rule (boinc_db::exportable):
//! while STATSEXPORT is enabled, non-consenting and erased accounts answer
//! exactly like unknown ids, member lists skip them, founders are named
//! only when shown; with STATSEXPORT disabled everyone (but erased
//! accounts) is shown; the owner's `auth=` always shows the owner.

mod common;

use common::*;
use mysql_async::prelude::*;
use mysql_async::Conn;

struct U {
    id: i64,
    name: &'static str,
    team: i64,
    credit: f64,
    auth: &'static str,
    /// STATSEXPORT history, oldest first: (time, flag).
    consents: &'static [(i64, i64)],
}

async fn insert_user(c: &mut Conn, u: &U) {
    c.exec_drop(
        "INSERT INTO user SET id = ?, create_time = 1500000000 + ?, email_addr = ?, name = ?, \
         authenticator = ?, country = 'Germany', postal_code = '', total_credit = ?, \
         expavg_credit = 12.5, expavg_time = 1700000000.25, teamid = ?, venue = 'home', \
         url = 'Example.org/~me', send_email = 1, show_hosts = 1, posts = 0, seti_id = 0, \
         seti_nresults = 0, seti_last_result_time = 0, seti_total_cpu = 0, has_profile = 1, \
         cross_project_id = ?, passwd_hash = 'x', email_validated = 1, donated = 0",
        (
            u.id,
            u.id,
            format!("u{}@example.com", u.id),
            u.name,
            u.auth,
            u.credit,
            u.team,
            format!("xpid{}", u.id),
        ),
    )
    .await
    .unwrap();
    for (t, flag) in u.consents {
        c.exec_drop(
            "INSERT INTO consent (userid, consent_type_id, consent_time, consent_flag, \
             consent_not_required, source) \
             SELECT ?, id, ?, ?, 0, 'test' FROM consent_type WHERE shortname = 'STATSEXPORT'",
            (u.id, t, flag),
        )
        .await
        .unwrap();
    }
}

async fn insert_team(c: &mut Conn, id: i64, name: &str, founder: i64, expavg: f64) {
    c.exec_drop(
        "INSERT INTO team (id, create_time, userid, name, name_lc, url, type, name_html, \
         description, nusers, country, total_credit, expavg_credit, expavg_time) \
         VALUES (?, 1400000000, ?, ?, LOWER(?), 'team.example.org', 1, '', '', 3, 'Germany', \
         1000, ?, 1700000000)",
        (id, founder, name, name, expavg),
    )
    .await
    .unwrap();
}

async fn insert_host(c: &mut Conn, id: i64, userid: i64, domain: &str) {
    c.exec_drop(
        "INSERT INTO host SET id = ?, create_time = 1600000000, userid = ?, rpc_seqno = 7, \
         rpc_time = 1700000000, total_credit = 10.5, expavg_credit = 1, expavg_time = 0, \
         timezone = 0, domain_name = ?, last_ip_addr = '192.0.2.7', nsame_ip_addr = 0, \
         on_frac = 1, connected_frac = 1, active_frac = 1, cpu_efficiency = 1, \
         duration_correction_factor = 1, p_ncpus = 4, p_vendor = 'GenuineIntel', \
         p_model = 'Core <i7>', p_fpops = 4000000000, p_iops = 1e10, p_membw = 0, \
         os_name = 'Linux', os_version = '6.1', m_nbytes = 17179869184, m_cache = 0, \
         m_swap = 0, d_total = 500000000000, d_free = 0.5, d_boinc_used_total = 0, \
         d_boinc_used_project = 0, d_boinc_max = 0, n_bwup = 0, n_bwdown = 0, \
         credit_per_cpu_sec = 0, venue = 'work', nresults_today = 0, avg_turnaround = 0, \
         host_cpid = ?, max_results_day = 0, product_name = '', gpu_active_frac = 0, \
         p_ngpus = 0, p_gpu_fpops = 0",
        (id, userid, domain, format!("hostcpid{id}")),
    )
    .await
    .unwrap();
}

/// Team 10 ("Alpha & Co"), founded by `founder`, with: 1 consenting,
/// 2 never asked, 3 consented then withdrew in the same second (the
/// later row wins), 4 erased (consented), 5 consenting with no credit.
async fn people(h: &Harness, founder: i64) {
    let mut c = h.conn().await;
    insert_team(&mut c, 10, "Alpha & Co", founder, 50.0).await;
    for u in [
        U {
            id: 1,
            name: "Ann <the> \"great\" & 'best'",
            team: 10,
            credit: 1e15,
            auth: "key-one",
            consents: &[(100, 1)],
        },
        U {
            id: 2,
            name: "Bob",
            team: 10,
            credit: 250.75,
            auth: "key-two",
            consents: &[],
        },
        U {
            id: 3,
            name: "Cid",
            team: 10,
            credit: 0.00001,
            auth: "key-three",
            consents: &[(100, 1), (200, 1), (200, 0)],
        },
        U {
            id: 4,
            name: "deleted_4",
            team: 10,
            credit: 5.0,
            auth: "deleted_1700000000_x",
            consents: &[(100, 1)],
        },
        U {
            id: 5,
            name: "Eve",
            team: 10,
            credit: 0.0,
            auth: "key-five",
            consents: &[(100, 0), (150, 1)],
        },
    ] {
        insert_user(&mut c, &u).await;
    }
    insert_host(&mut c, 21, 2, "bobs-box & co").await;
    insert_host(&mut c, 22, 2, "bobs-laptop").await;
    insert_host(&mut c, 23, 1, "anns-box").await;
}

fn cpid(id: i64) -> String {
    boinc_db::models::cpid_string(&format!("xpid{id}"), &format!("u{id}@example.com"))
}

/// What upstream's show_user_xml prints for users of `people`.
fn user_xml(id: i64, name: &str, credit: &str) -> String {
    format!(
        "<user>\n    <id>{id}</id>\n    <cpid>{}</cpid>\n    <create_time>{}</create_time>\n    \
         <name>{name}</name>\n    <total_credit>{credit}</total_credit>\n    \
         <expavg_credit>12.5</expavg_credit>\n    <expavg_time>1700000000.25</expavg_time>\n    \
         <teamid>10</teamid>\n    <has_profile>1</has_profile>\n     <country>Germany</country>\n    \
         <url>http://Example.org/~me</url>\n</user>\n",
        cpid(id),
        1500000000 + id
    )
}

const ANN: &str = "Ann &lt;the&gt; &quot;great&quot; &amp; &apos;best&apos;";

async fn show(h: &Harness, id: &str) -> String {
    h.call("show_user.php", &[("userid", id), ("format", "xml")])
        .await
}

#[tokio::test]
async fn show_user_hides_non_consenting_and_erased_exactly_like_unknown_ids() {
    let h = Harness::new("", None).await;
    people(&h, 1).await;
    h.set_type_enabled("STATSEXPORT", true).await;

    let ann = show(&h, "1").await;
    // The url: `~` is not in upstream's allowed set, so it is dropped to "".
    let expected = user_xml(1, ANN, "1e15").replace("http://Example.org/~me", "");
    assert_eq!(ann, format!("{HEADER}{expected}"));
    let eve = show(&h, "5").await;
    assert!(eve.contains("<total_credit>0</total_credit>"), "{eve}");

    let unknown = show(&h, "999").await;
    assert_eq!(
        unknown,
        format!(
            "{HEADER}<error>\n    <error_num>-136</error_num>\n    \
             <error_msg>Not found</error_msg>\n</error>\n"
        )
    );
    // Never asked, withdrawn (same-second tie: the later row), erased:
    // byte for byte the unknown id's reply.
    for id in ["2", "3", "4"] {
        assert_eq!(show(&h, id).await, unknown, "user {id}");
    }

    // STATSEXPORT disabled: everyone is shown, as upstream; an erased
    // account is nobody.
    h.set_type_enabled("STATSEXPORT", false).await;
    let bob = show(&h, "2").await;
    assert!(
        bob.contains("<name>Bob</name>") && bob.contains("<total_credit>250.75</total_credit>"),
        "{bob}"
    );
    let cid = show(&h, "3").await;
    assert!(
        cid.contains("<total_credit>0.00001</total_credit>"),
        "{cid}"
    );
    assert_eq!(show(&h, "4").await, unknown);
}

#[tokio::test]
async fn credits_print_as_the_servers_text_protocol_prints_them() {
    // What upstream's PHP echoes is the text the server sends.
    let h = Harness::new("", None).await;
    people(&h, 1).await;
    let mut c = h.conn().await;
    for credit in [
        0.0,
        1.0,
        250.75,
        1e15,
        1e16,
        123456789012345678.0,
        0.00001,
        1e-7,
        1.0 / 3.0,
    ] {
        c.exec_drop("UPDATE user SET total_credit = ? WHERE id = 2", (credit,))
            .await
            .unwrap();
        let row: mysql_async::Row = c
            .query_first("SELECT total_credit FROM user WHERE id = 2")
            .await
            .unwrap()
            .unwrap();
        let text = match row.as_ref(0) {
            Some(mysql_async::Value::Bytes(b)) => String::from_utf8(b.clone()).unwrap(),
            v => panic!("text protocol gave {v:?}"),
        };
        let body = show(&h, "2").await;
        assert_eq!(tag(&body, "total_credit"), Some(text), "{credit}");
    }
}

#[tokio::test]
async fn the_owner_sees_themselves_with_venue_and_hosts() {
    let h = Harness::new("", None).await;
    people(&h, 1).await;
    h.set_type_enabled("STATSEXPORT", true).await;
    // Bob never consented: hidden by id, shown to his own key.
    let mine = h
        .call("show_user.php", &[("auth", "key-two"), ("format", "xml")])
        .await;
    let host = |id: i64, domain: &str| {
        format!(
            "    <host>\n        <id>{id}</id>\n        <create_time>1600000000</create_time>\n        \
             <rpc_seqno>7</rpc_seqno>\n        <rpc_time>1700000000</rpc_time>\n        \
             <host_cpid>hostcpid{id}</host_cpid>\n        <total_credit>10.5</total_credit>\n        \
             <expavg_credit>1</expavg_credit>\n        <expavg_time>0</expavg_time>\n        \
             <domain_name>{domain}</domain_name>\n        <p_ncpus>4</p_ncpus>\n        \
             <p_vendor>GenuineIntel</p_vendor>\n        <p_model>Core &lt;i7&gt;</p_model>\n        \
             <p_fpops>4000000000</p_fpops>\n        <p_iops>10000000000</p_iops>\n        \
             <os_name>Linux</os_name>\n        <os_version>6.1</os_version>\n        \
             <m_nbytes>17179869184</m_nbytes>\n        <d_free>0.5</d_free>\n        \
             <d_total>500000000000</d_total>\n        <venue>work</venue>\n    </host>\n"
        )
    };
    let expected = user_xml(2, "Bob", "250.75").replace(
        "<has_profile>1</has_profile>\n",
        &format!(
            "<has_profile>1</has_profile>\n   <venue>home</venue>\n{}{}",
            host(21, "bobs-box &amp; co"),
            host(22, "bobs-laptop")
        ),
    );
    assert_eq!(
        mine,
        format!("{HEADER}{}", expected.replace("http://Example.org/~me", ""))
    );
    // auth wins over userid, as upstream.
    let again = h
        .call(
            "show_user.php",
            &[("auth", "key-two"), ("userid", "1"), ("format", "xml")],
        )
        .await;
    assert_eq!(again, mine);
    // An erased account's marker, a wrong key, a case variant: unknown.
    let unknown = show(&h, "999").await;
    for key in ["deleted_1700000000_x", "nokey", "KEY-TWO", "key-two "] {
        let b = h
            .call("show_user.php", &[("auth", key), ("format", "xml")])
            .await;
        assert_eq!(b, unknown, "{key:?}");
    }
}

async fn members(h: &Harness, extra: &[(&str, &str)]) -> String {
    let mut p = vec![("teamid", "10"), ("xml", "1")];
    p.extend_from_slice(extra);
    h.call("team_email_list.php", &p).await
}

fn member_ids(body: &str) -> Vec<i64> {
    body.split("<user>\n    <id>")
        .skip(1)
        .map(|s| s[..s.find('<').unwrap()].parse().unwrap())
        .collect()
}

#[tokio::test]
async fn team_member_lists_skip_hidden_members() {
    let h = Harness::new("", None).await;
    people(&h, 1).await;
    h.set_type_enabled("STATSEXPORT", true).await;
    let list = members(&h, &[]).await;
    assert_eq!(member_ids(&list), [1, 5], "{list}");
    let ann = format!(
        "<user>\n    <id>1</id>\n    <cpid>{}</cpid>\n    <total_credit>1e15</total_credit>    \
         <create_time>1500000001</create_time>\n    <name>{ANN}</name>\n    \
         <expavg_credit>12.5</expavg_credit>\n    <expavg_time>1700000000.25</expavg_time>\n    \
         <has_profile>1</has_profile>\n     <country>Germany</country>\n    <url></url>\n</user>\n",
        cpid(1)
    );
    assert!(
        list.starts_with(&format!("{HEADER}<users>\n{ann}<user>\n")),
        "{list}"
    );
    assert!(list.ends_with("</user>\n</users>\n"), "{list}");
    // creditonly: members with credit, three elements each.
    let credit = members(&h, &[("creditonly", "1")]).await;
    assert_eq!(
        credit,
        format!(
            "{HEADER}<users>\n<user>\n    <id>1</id>\n    <cpid>{}</cpid>\n    \
             <total_credit>1e15</total_credit></user>\n</users>\n",
            cpid(1)
        )
    );
    // Disabled: everyone but the erased account.
    h.set_type_enabled("STATSEXPORT", false).await;
    assert_eq!(member_ids(&members(&h, &[]).await), [1, 2, 3, 5]);
    assert_eq!(
        member_ids(&members(&h, &[("creditonly", "1")]).await),
        [1, 2, 3]
    );
    // Unknown team, bad numbers.
    assert_error(
        &h.call("team_email_list.php", &[("teamid", "77"), ("xml", "1")])
            .await,
        -136,
    );
    for bad in [
        vec![("teamid", "ten"), ("xml", "1")],
        vec![("xml", "1")],
        vec![("teamid", "10"), ("creditonly", "yes")],
        vec![("teamid", "1e3")],
    ] {
        let b = h.call("team_email_list.php", &bad).await;
        assert_error(&b, -1);
        assert!(b.contains("missing or bad parameter"), "{b}");
    }
}

async fn lookup(h: &Harness, p: &[(&str, &str)]) -> String {
    let mut p = p.to_vec();
    p.push(("format", "xml"));
    h.call("team_lookup.php", &p).await
}

fn team_xml(userid: i64) -> String {
    format!(
        "<team>\n    <id>10</id>\n    <create_time>1400000000</create_time>\n    \
         <userid>{userid}</userid>\n    <name>Alpha &amp; Co</name>\n    \
         <url>team.example.org</url>\n    <type>1</type>\n    <country>Germany</country>\n    \
         <total_credit>1000</total_credit>\n    <expavg_credit>50</expavg_credit>\n    \
         <expavg_time>1700000000</expavg_time>\n</team>\n"
    )
}

#[tokio::test]
async fn teams_name_their_founder_only_when_the_founder_is_shown() {
    let h = Harness::new("", None).await;
    // Founded by Bob, who never consented.
    people(&h, 2).await;
    h.set_type_enabled("STATSEXPORT", true).await;
    let by_id = lookup(&h, &[("team_id", "10")]).await;
    assert_eq!(by_id, format!("{HEADER}{}", team_xml(0)));
    let mut c = h.conn().await;
    for (founder, named) in [(1, 1), (3, 0), (4, 0), (999, 0)] {
        c.exec_drop("UPDATE team SET userid = ? WHERE id = 10", (founder,))
            .await
            .unwrap();
        let b = lookup(&h, &[("team_id", "10")]).await;
        assert_eq!(
            b,
            format!("{HEADER}{}", team_xml(named)),
            "founder {founder}"
        );
    }
    // Disabled: the founder as stored, as upstream.
    h.set_type_enabled("STATSEXPORT", false).await;
    c.exec_drop("UPDATE team SET userid = 2 WHERE id = 10", ())
        .await
        .unwrap();
    assert_eq!(
        lookup(&h, &[("team_id", "10")]).await,
        format!("{HEADER}{}", team_xml(2))
    );
}

#[tokio::test]
async fn team_lookup_by_ids_and_name_and_its_errors() {
    let h = Harness::new("", None).await;
    people(&h, 1).await;
    let mut c = h.conn().await;
    insert_team(&mut c, 11, "Alpine_Club", 1, 70.0).await;
    insert_team(&mut c, 12, "Beta", 1, 90.0).await;
    insert_team(&mut c, 13, "alp%", 1, 10.0).await;
    let ids = |b: &str| -> Vec<i64> {
        b.split("<team>\n    <id>")
            .skip(1)
            .map(|s| s[..s.find('<').unwrap()].parse().unwrap())
            .collect()
    };
    // In the order asked, repeats repeated, unknown and non-numeric items skipped.
    let b = lookup(&h, &[("team_ids", "12,x,10,999,12, 11")]).await;
    assert!(b.starts_with(&format!("{HEADER}<teams>\n<team>\n")), "{b}");
    assert!(b.ends_with("</team>\n</teams>\n"), "{b}");
    assert_eq!(ids(&b), [12, 10, 12, 11]);
    // 100 ids is the most.
    let hundred: Vec<String> = (0..100).map(|i| (10 + i % 4).to_string()).collect();
    let b = lookup(&h, &[("team_ids", &hundred.join(","))]).await;
    assert_eq!(ids(&b).len(), 100);
    let b = lookup(&h, &[("team_ids", &format!("{},10", hundred.join(",")))]).await;
    assert_error(&b, -1);
    assert!(
        b.contains("too many team ids (101 given, at most 100)"),
        "{b}"
    );
    // By name: a prefix, case-insensitive, most active first; `%` and `_`
    // are literal.
    assert_eq!(
        ids(&lookup(&h, &[("team_name", "alp")]).await),
        [11, 10, 13]
    );
    assert_eq!(ids(&lookup(&h, &[("team_name", "ALPINE_")]).await), [11]);
    assert_eq!(ids(&lookup(&h, &[("team_name", "alp%")]).await), [13]);
    assert_eq!(
        ids(&lookup(&h, &[("team_name", "Alpine%")]).await),
        Vec::<i64>::new()
    );
    assert_eq!(
        lookup(&h, &[("team_name", "zzz")]).await,
        format!("{HEADER}<teams>\n</teams>\n")
    );
    // team_id 0 falls through to the name, as upstream; errors.
    assert_eq!(
        ids(&lookup(&h, &[("team_id", "0"), ("team_name", "Beta")]).await),
        [12]
    );
    assert_error(&lookup(&h, &[("team_id", "998")]).await, -136);
    for bad in [
        vec![("team_name", "")],
        vec![],
        vec![("team_id", "ten")],
        vec![("team_id", "10abc")],
    ] {
        let b = lookup(&h, &bad).await;
        assert_error(&b, -1);
        assert!(b.contains("missing or bad parameter: team_"), "{b}");
    }
}

#[tokio::test]
async fn show_user_bad_parameters_answer_upstreams_error() {
    let h = Harness::new("", None).await;
    for bad in [
        vec![("format", "xml")],
        vec![("userid", ""), ("format", "xml")],
        vec![("userid", "abc"), ("format", "xml")],
        vec![("userid", "1.5"), ("format", "xml")],
        vec![("userid", "99999999999999999999"), ("format", "xml")],
    ] {
        let b = h.call("show_user.php", &bad).await;
        assert_eq!(
            b,
            format!(
                "{HEADER}<error>\n    <error_num>-1</error_num>\n    \
                 <error_msg>missing or bad parameter: userid</error_msg>\n</error>\n"
            ),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn lookups_are_budgeted_per_address() {
    let h = Harness::new(
        &format!("{PROXIED}<rpc_lookups_per_ip>3</rpc_lookups_per_ip>"),
        None,
    )
    .await;
    people(&h, 1).await;
    // Three lookups of any kind, found or not, then refusals.
    let b = h
        .call_from("192.0.2.1", "show_user.php", &[("userid", "1")])
        .await;
    assert!(b.contains("<user>"), "{b}");
    let b = h
        .call_from("192.0.2.1", "show_user.php", &[("userid", "999")])
        .await;
    assert_error(&b, -136);
    let b = h
        .call_from("192.0.2.1", "team_lookup.php", &[("team_id", "10")])
        .await;
    assert!(b.contains("<team>"), "{b}");
    for (rpc, p) in [
        ("team_email_list.php", vec![("teamid", "10"), ("xml", "1")]),
        ("show_user.php", vec![("userid", "1")]),
        ("team_lookup.php", vec![("team_ids", "10")]),
    ] {
        let b = h.call_from("192.0.2.1", rpc, &p).await;
        assert_error(&b, -1);
        assert!(
            b.contains("too many lookups from your address; try again in"),
            "{b}"
        );
    }
    // Another address has its own budget.
    let b = h
        .call_from(
            "192.0.2.2",
            "team_email_list.php",
            &[("teamid", "10"), ("xml", "1")],
        )
        .await;
    assert!(b.contains("<users>"), "{b}");
    // The refusals are counted for /metrics.
    let m = h.get("metrics").await;
    assert!(m.contains("kind=\"lookups\""), "{m}");
}

#[tokio::test]
async fn get_project_config_says_client_account_creation_disabled() {
    let h = Harness::new("<disable_account_creation_rpc/>", None).await;
    let b = h.get("get_project_config.php").await;
    assert!(
        b.contains("    <min_passwd_length>")
            && b.contains("<client_account_creation_disabled/>\n"),
        "{b}"
    );
    assert!(!b.contains("<account_creation_disabled/>"), "{b}");
    let h = Harness::new("", None).await;
    let b = h.get("get_project_config.php").await;
    assert!(!b.contains("client_account_creation_disabled"), "{b}");
}

#[tokio::test]
async fn lookups_answer_project_down_while_the_web_is_stopped() {
    let h = Harness::new("", None).await;
    people(&h, 1).await;
    std::fs::write(h.dir.path().join("stop_web"), "").unwrap();
    for (rpc, p) in [
        ("show_user.php", vec![("userid", "1")]),
        ("team_email_list.php", vec![("teamid", "10")]),
        ("team_lookup.php", vec![("team_id", "10")]),
    ] {
        assert_error(&h.call(rpc, &p).await, -183);
    }
}
