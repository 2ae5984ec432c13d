//! Accounts erased by `boinc-ops account delete` (boinc_db::account::erase) are
//! refused by every RPC exactly as an unknown account is: the old
//! authenticator, the deletion marker and the old email find nothing.

mod common;

use boinc_db::account::erase::{erase, Mode};
use common::*;

#[tokio::test]
async fn erased_accounts_are_unknown_to_every_rpc() {
    let h = Harness::consent_project("").await;
    for (n, mode) in [Mode::Obfuscate, Mode::Wipe].into_iter().enumerate() {
        let email = format!("gone{n}@example.com");
        let auth = h.new_account(&email, &format!("Gone {n}"), &[]).await;
        let id = h.user(&email).await.unwrap().id;
        let hash = passwd_hash("secret", &email);
        // Works before.
        let body = h
            .call(
                "lookup_account.php",
                &[("email_addr", &email), ("passwd_hash", &hash)],
            )
            .await;
        assert_eq!(tag(&body, "authenticator").as_deref(), Some(auth.as_str()));

        let mut c = h.conn().await;
        erase(&mut c, id, mode, "tester").await.unwrap();
        let marker: Option<String> = boinc_db::mysql_async::prelude::Queryable::exec_first(
            &mut c,
            "SELECT authenticator FROM user WHERE id = ?",
            (id,),
        )
        .await
        .unwrap();
        drop(c);

        // Each call, and the same call for an account that never existed:
        // the replies are identical (-136).
        let unknown_email = format!("never{n}@example.com");
        let unknown_hash = passwd_hash("secret", &unknown_email);
        let mut keys = vec![auth.clone()];
        keys.extend(marker);
        for key in &keys {
            for rpc in ["am_get_info.php", "am_set_info.php"] {
                let got = h.call(rpc, &[("account_key", key), ("name", "Back")]).await;
                let never = h
                    .call(
                        rpc,
                        &[("account_key", "0123456789abcdef"), ("name", "Back")],
                    )
                    .await;
                assert_error(&got, -136);
                assert_eq!(got, never, "{mode:?} {rpc}");
            }
        }
        let got = h
            .call(
                "lookup_account.php",
                &[("email_addr", &email), ("passwd_hash", &hash)],
            )
            .await;
        let never = h
            .call(
                "lookup_account.php",
                &[
                    ("email_addr", &unknown_email),
                    ("passwd_hash", &unknown_hash),
                ],
            )
            .await;
        assert_error(&got, -136);
        assert_eq!(got, never, "{mode:?} lookup_account");
        let got = h
            .call("lookup_account.php", &[("email_addr", &email)])
            .await;
        assert_error(&got, -136);
        // Nothing an RPC did brought the name back.
        if mode == Mode::Obfuscate {
            let names: Vec<String> = {
                let mut c = h.conn().await;
                boinc_db::mysql_async::prelude::Queryable::exec(
                    &mut c,
                    "SELECT name FROM user WHERE id = ?",
                    (id,),
                )
                .await
                .unwrap()
            };
            assert!(names[0].starts_with("deleted_"), "{names:?}");
        }
    }
}

/// An am_set_info that found the account just before an erase committed
/// finds the row busy and tries again, then must see that its key is
/// gone: it may not write the old profile back into the anonymised row.
#[tokio::test]
async fn am_set_info_waiting_on_an_erase_is_refused() {
    let (h, id, body) = set_info_racing_an_erase(&[("name", "Back Again")]).await;
    assert_error(&body, -136);
    use boinc_db::mysql_async::prelude::*;
    let mut c = h.conn().await;
    let name: Option<String> = c
        .exec_first("SELECT name FROM user WHERE id = ?", (id,))
        .await
        .unwrap();
    // The erase's marker, not the name the call sent.
    let name = name.unwrap();
    assert!(name.starts_with("deleted_"), "{name}");
}

/// The same for a consent change alone, which goes through the group
/// commit (`flip_group`; the busy account is handed back and applied
/// alone): no consent row for the erased account.
#[tokio::test]
async fn consent_change_waiting_on_an_erase_is_refused() {
    let (h, id, body) = set_info_racing_an_erase(&[
        ("consent_name", "STATSEXPORT"),
        ("consent_flag", "1"),
        ("consent_not_required", "0"),
        ("consent_source", "AM"),
    ])
    .await;
    assert_error(&body, -136);
    assert!(h.consents(id).await.iter().all(|c| c.0 != "STATSEXPORT"));
}

/// Starts the real erase (`boinc_db::account::erase`, as `boinc-ops account
/// delete` runs it) of a fresh account and holds it mid-transaction, after
/// it has locked the row and replaced the key: `user_deleted`, which it
/// writes next, is locked by another session. Sends am_set_info with
/// `params` for the account, waits until the call has found the row busy
/// and is trying again, then lets the erase commit. The reply.
async fn set_info_racing_an_erase(params: &[(&str, &str)]) -> (Harness, i64, String) {
    use boinc_db::mysql_async::prelude::*;
    let h = Harness::consent_project("").await;
    h.set_type_enabled("STATSEXPORT", true).await;
    let auth = h.new_account("race@example.com", "Racer", &[]).await;
    let id = h.user("race@example.com").await.unwrap().id;

    let mut holder = h.conn().await;
    holder
        .query_drop("LOCK TABLES user_deleted WRITE")
        .await
        .unwrap();
    let eraser = {
        let mut c = h.conn().await;
        tokio::spawn(async move { erase(&mut c, id, Mode::Obfuscate, "tester").await })
    };
    let mut watch = h.conn().await;
    boinc_db::testing::wait_for_statement(&mut watch, "INSERT INTO user_deleted%").await;
    let call = {
        let url = h.url("am_set_info.php");
        let client = h.client.clone();
        let mut query: Vec<(String, String)> = vec![("account_key".into(), auth.clone())];
        query.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        tokio::spawn(async move {
            client
                .get(url)
                .query(&query)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    let retries = || h.server.state.metrics.busy_retries.get();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while retries() == 0 {
        if std::time::Instant::now() >= deadline || call.is_finished() {
            holder.query_drop("UNLOCK TABLES").await.unwrap();
            panic!("am_set_info never met the lock: {}", call.await.unwrap());
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(!eraser.is_finished(), "the erase did not wait");
    holder.query_drop("UNLOCK TABLES").await.unwrap();
    let outcome = eraser.await.unwrap().expect("the erase commits");
    assert_eq!(outcome.userid, id);
    let body = call.await.unwrap();
    (h, id, body)
}
