//! Real-browser test of the ops page's data requests: an admin finds an
//! account by email, sees its consent history, downloads the export (the
//! page's own form, submitted by the page), deletes the account after
//! typing its id, and every step is in the audit shown on the page.

mod browser;

use std::time::Duration;

use boinc_db::mysql_async::prelude::*;
use boinc_db::testing::TestDb;
use browser::{PASS, USER};
use fantoccini::Locator;

async fn setup(db: &TestDb) {
    let mut c = db.conn().await;
    c.query_drop(
        "INSERT INTO user SET id = 77, create_time = 1600000000, \
         email_addr = 'gina@example.org', name = 'Gina <script>x</script>', \
         authenticator = 'ginaauthginaauthginaauthginaauth', country = 'Italy', \
         postal_code = '', total_credit = 5, expavg_credit = 0, expavg_time = 0, teamid = 0, \
         venue = '', url = '', send_email = 1, show_hosts = 1, posts = 0, seti_id = 0, \
         seti_nresults = 0, seti_last_result_time = 0, seti_total_cpu = 0, has_profile = 0, \
         cross_project_id = 'x', passwd_hash = '$2y$10$ginasecrethash', email_validated = 1, \
         donated = 0",
    )
    .await
    .unwrap();
    let v = boinc_db::consent::terms::ensure_terms_version(&mut c, "Gina's terms <v1>", 1590000000)
        .await
        .unwrap();
    c.query_drop(
        "INSERT INTO consent (id, userid, consent_type_id, consent_time, consent_flag, \
         consent_not_required, source) SELECT 5, 77, id, 1600000000, 1, 0, 'create_account' \
         FROM consent_type WHERE shortname = 'ENROLL'",
    )
    .await
    .unwrap();
    boinc_db::consent::terms::link_consent_terms(&mut c, 5, v)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_browser_find_export_delete() {
    let db = TestDb::new().await;
    setup(&db).await;
    let (addr, server) = browser::serve_ops(&db, false).await;
    let (c, _driver, _profile) = browser::browser().await;
    let wait = Duration::from_secs(20);

    let result = async {
        c.goto(&format!("http://{USER}:{PASS}@{addr}/")).await?;
        c.wait()
            .at_most(wait)
            .for_element(Locator::Id("nav-accounts"))
            .await?
            .click()
            .await?;
        c.wait()
            .at_most(wait)
            .for_element(Locator::Id("find-form"))
            .await?;
        // Find by email, with ASCII case differences only.
        c.find(Locator::Id("q"))
            .await?
            .send_keys("Gina@Example.ORG")
            .await?;
        c.find(Locator::Id("find-button")).await?.click().await?;
        let row = c
            .wait()
            .at_most(wait)
            .for_element(Locator::Id("result-77"))
            .await?
            .text()
            .await?;
        assert!(
            row.contains("Gina <script>x</script>"),
            "escaped name shown as text: {row}"
        );
        c.find(Locator::Id("open-77")).await?.click().await?;
        let history = c
            .wait()
            .at_most(wait)
            .for_element(Locator::Id("consent-history"))
            .await?
            .text()
            .await?;
        assert!(
            history.contains("ENROLL") && history.contains("consented"),
            "{history}"
        );
        let terms = c.find(Locator::Id("terms-1")).await?.html(false).await?;
        assert!(terms.contains("Gina's terms &lt;v1&gt;"), "{terms}");

        // The export: the page's form, posted by the page (same origin,
        // session cookie and CSRF token), read back as the browser got it.
        let got = c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 const f = document.getElementById('export-form');
                 // The form's own target, without the user:password the
                 // test put in the first URL (fetch refuses those).
                 const url = new URL(f.getAttribute('action'), location.origin + location.pathname);
                 fetch(url, {method: 'POST', body: new URLSearchParams(new FormData(f))})
                   .then(r => r.text().then(t => done([r.status,
                        r.headers.get('content-disposition'), t])))
                   .catch(e => done([0, '', String(e)]));",
                vec![],
            )
            .await?;
        assert_eq!(got[0], 200, "{got}");
        assert_eq!(got[1], "attachment; filename=\"account-77.json\"");
        let doc: serde_json::Value = serde_json::from_str(got[2].as_str().unwrap())?;
        assert_eq!(doc["account"]["email_addr"], "gina@example.org");
        assert_eq!(
            doc["consent"]["terms_versions"][0]["text"],
            "Gina's terms <v1>"
        );
        let text = got[2].as_str().unwrap();
        assert!(!text.contains("ginasecrethash") && !text.contains("ginaauth"));

        // Delete: a wrong confirmation changes nothing.
        c.find(Locator::Id("mode-obfuscate")).await?.click().await?;
        c.find(Locator::Id("confirm"))
            .await?
            .send_keys("78")
            .await?;
        c.find(Locator::Id("delete-button")).await?.click().await?;
        let err = c
            .wait()
            .at_most(wait)
            .for_element(Locator::Id("error"))
            .await?
            .text()
            .await?;
        assert!(err.contains("does not match"), "{err}");
        c.find(Locator::Id("mode-obfuscate")).await?.click().await?;
        c.find(Locator::Id("confirm"))
            .await?
            .send_keys("77")
            .await?;
        c.find(Locator::Id("delete-button")).await?.click().await?;
        let msg = c
            .wait()
            .at_most(wait)
            .for_element(Locator::Id("message"))
            .await?
            .text()
            .await?;
        assert!(msg.contains("obfuscated"), "{msg}");
        let state = c.find(Locator::Id("account-state")).await?.text().await?;
        assert!(state.contains("deleted"), "{state}");
        let trail = c.find(Locator::Id("audit")).await?.text().await?;
        for action in ["view", "export", "delete", "obfuscate"] {
            assert!(trail.contains(action), "{action} missing from {trail}");
        }
        assert!(trail.contains(USER));
        Ok::<_, anyhow::Error>(())
    }
    .await;
    server.abort();
    browser::finish(c, result).await;

    let mut conn = db.conn().await;
    let row: Option<(String, String)> = conn
        .query_first("SELECT email_addr, authenticator FROM user WHERE id = 77")
        .await
        .unwrap();
    let (email, auth) = row.expect("obfuscated row kept");
    assert!(email.starts_with("deleted_") && auth.starts_with("deleted_"));
    let consents: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM consent WHERE userid = 77")
        .await
        .unwrap();
    assert_eq!(consents, Some(1), "consent evidence kept");
    let actions: Vec<(String, String, String)> = conn
        .query("SELECT actor, action, mode FROM account_audit WHERE userid = 77 AND action <> 'view' ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        actions,
        vec![
            (USER.into(), "export".into(), "".into()),
            (USER.into(), "delete".into(), "obfuscate".into()),
        ]
    );
}
