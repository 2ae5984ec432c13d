//! create_account: make an account (and its ENROLL consent row, in the
//! same transaction), or return the existing one on an idempotent retry.

use boinc_db::commit::Trace;
use boinc_db::consent::{self, NewConsent};
use boinc_db::models::{User, CONSENT_ENROLL};
use boinc_db::queries::{self, NewUser};
use boinc_db::{consent::terms, DbError};
use mysql_async::TxOpts;

use crate::error::{duplicate_key_name, RpcError};
use crate::params::{flag, Params};
use crate::reply::{self, Xml};
use crate::request::RpcRequest;
use crate::state::AppState;
use crate::validate;

/// A validated request.
#[derive(Debug)]
pub struct CreateAccount {
    pub email_addr: String,
    pub passwd_hash: String,
    pub user_name: String,
    pub team_name: Option<String>,
    /// `consent_flag` when given (0/1 only).
    pub consent_flag: Option<bool>,
    /// `source` when given and non-empty.
    pub source: Option<String>,
}

impl CreateAccount {
    pub fn parse(p: &Params) -> Result<Self, RpcError> {
        let email = p.required("email_addr")?;
        let passwd_hash = p.required("passwd_hash")?;
        // Present but empty is a bad name (-188, SPEC section 3), not a
        // missing parameter.
        let user_name = p
            .get("user_name")
            .ok_or(RpcError::MissingParam("user_name"))?;
        // Every stored value fits its column before anything else is
        // looked at (-205 / -188 / -1 naming the field).
        validate::lengths(p, &["email_addr", "user_name", "source"])?;
        // As stored and matched (ASCII lower-case). The syntax check refuses
        // white space, control and non-ASCII characters, so no look-alike
        // of an existing address (`a@x.org `, zero-width, accents) gets in.
        let email_addr = queries::normalise_email(email);
        if !validate::email_syntax(&email_addr) {
            return Err(RpcError::BadEmail(None));
        }
        if passwd_hash.len() != 32 {
            return Err(RpcError::generic("password hash length not 32"));
        }
        validate::user_name(user_name)?;
        let consent_flag = match p.get("consent_flag") {
            Some(v) => Some(flag("consent_flag", v)?),
            None => None,
        };
        Ok(Self {
            email_addr,
            passwd_hash: passwd_hash.to_owned(),
            user_name: user_name.to_owned(),
            team_name: p.nonempty("team_name").map(str::to_owned),
            consent_flag,
            source: p.nonempty("source").map(str::to_owned),
        })
    }
}

pub async fn handle(state: &AppState, req: &RpcRequest) -> Result<Xml, RpcError> {
    state.check_web_running()?;
    let cfg = &state.config;
    let rules = &state.rules;
    const NOT_ACCEPTING: &str = "The project is not accepting new accounts.";
    if rules.account_creation_disabled {
        return Err(RpcError::CreationDisabled(NOT_ACCEPTING));
    }
    if rules.account_creation_rpc_disabled {
        return Err(RpcError::CreationDisabled(
            if rules.web_account_creation_disabled {
                NOT_ACCEPTING
            } else {
                "Please visit the project web site to create an account, then try again."
            },
        ));
    }
    let params = req.params();
    // upstream checks the invitation code first.
    state.limits.check_invite(params.get("invite_code"))?;
    let ca = CreateAccount::parse(&params)?;
    if state.limits.email_banned(&ca.email_addr) {
        return Err(RpcError::BadEmail(None));
    }
    // Only addresses known to be past their failed-login limit are turned
    // away here; failures and creations are reserved below, before their
    // work (a retry of an existing account is no creation).
    crate::limits::failed_logins(state, req.ip).check_local()?;

    let mut conn = state.conn().await?;
    // A legacy latin1 database holds N bytes, not N characters.
    validate::stored_in(
        state.charset(&mut conn).await?,
        &[
            ("email_addr", Some(&ca.email_addr)),
            ("user_name", Some(&ca.user_name)),
            ("source", ca.source.as_deref()),
        ],
    )?;
    if queries::user_by_previous_email(&mut conn, &ca.email_addr)
        .await?
        .is_some()
    {
        return Err(RpcError::NotUnique(None));
    }
    if let Some(user) = queries::user_by_email(&mut conn, &ca.email_addr).await? {
        return existing_account(state, req, &mut conn, user, &ca).await;
    }

    let enroll = queries::consent_type_by_name(&mut conn, CONSENT_ENROLL)
        .await?
        .filter(|t| t.is_enabled());
    // The terms get_project_config shows (same rule, same cached text),
    // i.e. exactly what the client showed its user: None when the file is
    // missing or blank or ENROLL is off.
    let offered = terms::offered_terms(state.project.terms(), enroll.is_some());
    if rules.require_consent {
        if state.project.terms().is_none() {
            tracing::warn!(
                path = %cfg.terms_of_use_path().display(),
                "configuration: account_creation_rpc_require_consent is set but the terms of use file is missing or empty"
            );
        }
        if enroll.is_none() {
            tracing::warn!(
                "configuration: account_creation_rpc_require_consent is set but the ENROLL consent type is disabled or missing"
            );
        }
        if ca.consent_flag.is_none() || ca.source.is_none() {
            return Err(RpcError::ConsentRequired);
        }
    }
    if queries::user_name_taken(&mut conn, &ca.user_name, 0).await? {
        return Err(RpcError::BadUserName("user name is already taken".into()));
    }
    let team = match &ca.team_name {
        Some(name) => queries::team_by_name(&mut conn, name)
            .await?
            .filter(|t| t.joinable != 0),
        None => None,
    };
    // ENROLL consent is recorded only when the project asks for it (terms
    // offered) and the client answered explicitly; it is linked to the
    // text offered.
    let (consent, terms_text) = match (&enroll, offered, ca.consent_flag, &ca.source) {
        (Some(t), Some(text), Some(flag), Some(source)) => {
            (Some((t.id, flag, source.as_str())), Some(text))
        }
        _ => (None, None),
    };

    // A new account: a slot of this address's hourly budget before the
    // work, so a burst of sign-ups cannot overshoot it.
    let slot = crate::limits::account_creations(state, req.ip)
        .reserve(&mut conn)
        .await?;
    let stored_hash = super::hash_password(&ca.passwd_hash).await?;
    let now = boinc_db::now();
    let authenticator = boinc_db::random_hex32();
    let cross_project_id = boinc_db::random_hex32();
    let new_user = NewUser {
        create_time: now,
        email_addr: &ca.email_addr,
        name: &ca.user_name,
        authenticator: &authenticator,
        cross_project_id: &cross_project_id,
        passwd_hash: &stored_hash,
        // BOINC's create_account RPC sets this country.
        country: "International",
        show_hosts: if rules.privacy_by_default { 0 } else { 1 },
        teamid: 0,
    };

    let written: Result<i64, Written> = async {
        let mut tx = conn.start_transaction(TxOpts::default()).await?;
        let userid = queries::insert_user(&mut tx, &new_user).await?;
        if let Some(t) = &team {
            queries::set_user_team(&mut tx, userid, 0, t.id).await?;
        }
        if let Some((type_id, flag, source)) = consent {
            let consent_id = consent::insert(
                &mut tx,
                &NewConsent {
                    userid,
                    consent_type_id: type_id,
                    consent_time: now,
                    consent_flag: flag,
                    consent_not_required: !flag,
                    source,
                },
            )
            .await?;
            if let Some(text) = &terms_text {
                let version = terms::ensure_terms_version(&mut tx, text, now).await?;
                terms::link_consent_terms(&mut tx, consent_id, version).await?;
            }
        }
        // The new account is the trace of a COMMIT whose answer is lost.
        crate::commit::commit(
            &state.pool,
            state.options.request_timeout,
            &req.guard,
            tx,
            Trace::Account {
                authenticator: authenticator.clone(),
            },
        )
        .await
        .map_err(|u| Written::Reply(u.into()))?;
        Ok(userid)
    }
    .await;

    match written {
        Ok(userid) => {
            slot.keep();
            tracing::info!(
                userid,
                consent = consent.map(|c| c.1),
                team = team.as_ref().map(|t| t.id),
                "account created"
            );
            Ok(reply::create_account(&authenticator))
        }
        Err(Written::Reply(e)) => {
            // No account made (or, OutcomeUnknown, perhaps one): the slot
            // does not count.
            slot.release(Some(&mut conn)).await;
            Err(e)
        }
        Err(Written::Db(e)) => {
            // No account made: the slot does not count.
            slot.release(Some(&mut conn)).await;
            match duplicate_key_name(&e) {
                // Another request created this email (or name) first: its
                // transaction is committed by now, so answer as for a retry.
                Some(key) if key.contains("email") => {
                    let user = queries::user_by_email(&mut conn, &ca.email_addr)
                        .await?
                        .ok_or(RpcError::NotUnique(None))?;
                    existing_account(state, req, &mut conn, user, &ca).await
                }
                Some(key) if key.contains("name") => {
                    Err(RpcError::BadUserName("user name is already taken".into()))
                }
                Some(_) => Err(RpcError::NotUnique(None)),
                None => Err(e.into()),
            }
        }
    }
}

/// Why the new account's transaction wrote nothing.
enum Written {
    Db(DbError),
    /// From the COMMIT (`crate::commit`): the reply as it is.
    Reply(RpcError),
}

impl From<DbError> for Written {
    fn from(e: DbError) -> Self {
        Written::Db(e)
    }
}

impl From<mysql_async::Error> for Written {
    fn from(e: mysql_async::Error) -> Self {
        Written::Db(e.into())
    }
}

/// The email has an account: the same password gets its authenticator
/// back (a retry), any other is "not unique".
async fn existing_account(
    state: &AppState,
    req: &RpcRequest,
    conn: &mut mysql_async::Conn,
    user: User,
    ca: &CreateAccount,
) -> Result<Xml, RpcError> {
    // A password oracle otherwise: limited like a login, reserved before
    // the bcrypt check.
    let slot = crate::limits::failed_logins(state, req.ip)
        .reserve(conn)
        .await?;
    if super::verify_password(user.id, &ca.passwd_hash, &user.passwd_hash).await? {
        slot.release(Some(conn)).await;
        Ok(reply::create_account(user.authenticator()))
    } else {
        slot.keep();
        Err(RpcError::NotUnique(None))
    }
}
