//! Real-browser test of the ops page: headless Chromium driven over
//! chromedriver logs in with basic auth (credentials in the URL), adds a
//! consent type, enables it, toggles privacypref, and the page and the
//! database agree. Fails (never skips) when Chromium is missing.

mod browser;

use std::time::Duration;

use boinc_db::testing::TestDb;
use browser::{PASS, USER};
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_browser_admin_adds_enables_and_toggles_privacypref() {
    let db = TestDb::new().await;
    let (addr, server) = browser::serve_ops(&db, false).await;

    let (c, _driver, _profile) = browser::browser().await;

    let result = async {
        c.goto(&format!("http://{USER}:{PASS}@{addr}/")).await?;
        c.wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Id("add-form"))
            .await?;
        let body = c.source().await?;
        assert!(body.contains("ENROLL") && body.contains("Why can't I delete"));

        c.find(Locator::Id("shortname"))
            .await?
            .send_keys("BROWSER_TYPE")
            .await?;
        c.find(Locator::Id("description"))
            .await?
            .send_keys("Added by <b>a browser</b>")
            .await?;
        c.find(Locator::Id("add-button")).await?.click().await?;
        let msg = c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Id("message"))
            .await?
            .text()
            .await?;
        assert!(msg.contains("Added consent type BROWSER_TYPE"), "{msg}");
        let row = c
            .find(Locator::Id("type-BROWSER_TYPE"))
            .await?
            .text()
            .await?;
        assert!(
            row.contains("Added by <b>a browser</b>"),
            "escaped text shown as text: {row}"
        );

        c.find(Locator::Id("enabled-BROWSER_TYPE"))
            .await?
            .click()
            .await?;
        c.wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::XPath(
                "//button[@id='enabled-BROWSER_TYPE' and normalize-space(text())='Disable']",
            ))
            .await?;

        c.find(Locator::Id("privacypref-BROWSER_TYPE"))
            .await?
            .click()
            .await?;
        c.wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::XPath(
                "//button[@id='privacypref-BROWSER_TYPE' and normalize-space(text())='Turn off']",
            ))
            .await?;
        let history = c.find(Locator::Id("history")).await?.text().await?;
        assert!(history.contains("privacypref_on"), "{history}");
        assert!(history.contains(USER), "{history}");
        Ok::<_, anyhow::Error>(())
    }
    .await;
    server.abort();
    browser::finish(c, result).await;

    let mut conn = db.conn().await;
    let t = boinc_db::queries::consent_type_by_name(&mut conn, "BROWSER_TYPE")
        .await
        .unwrap()
        .expect("type in DB");
    assert_eq!((t.enabled, t.project_specific, t.privacypref), (1, 1, 1));
    assert_eq!(t.description, "Added by <b>a browser</b>");
    let audit = boinc_db::consent::types::audit_history(&mut conn, Some("BROWSER_TYPE"), 10)
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["privacypref_on", "enable", "add"]);
    assert!(audit.iter().all(|a| a.actor == USER));
}
