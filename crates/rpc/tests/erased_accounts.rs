//! Accounts erased by `boinc-ops account delete` (boinc_db::erase) are
//! refused by every RPC exactly as an unknown account is: the old
//! authenticator, the deletion marker and the old email find nothing.

mod common;

use boinc_db::erase::{erase, Mode};
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
            .call("lookup_account.php", &[("email_addr", &email), ("passwd_hash", &hash)])
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
                    .call(rpc, &[("account_key", "0123456789abcdef"), ("name", "Back")])
                    .await;
                assert_error(&got, -136);
                assert_eq!(got, never, "{mode:?} {rpc}");
            }
        }
        let got = h
            .call("lookup_account.php", &[("email_addr", &email), ("passwd_hash", &hash)])
            .await;
        let never = h
            .call(
                "lookup_account.php",
                &[("email_addr", &unknown_email), ("passwd_hash", &unknown_hash)],
            )
            .await;
        assert_error(&got, -136);
        assert_eq!(got, never, "{mode:?} lookup_account");
        let got = h.call("lookup_account.php", &[("email_addr", &email)]).await;
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
