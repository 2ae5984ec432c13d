//! am_set_info: account managers change profile fields and consent.
//!
//! Authenticates by account_key alone, so email and password changes are
//! refused unless the project opts in (`<am_set_info_allow_credentials/>`).

use boinc_db::account::{self, EmailChange, UserUpdate};
use boinc_db::consent_flip::{self, Flip, FlipOutcome};
use boinc_db::models::CONSENT_ENROLL;
use boinc_db::queries::{self, NewConsent};
use boinc_db::DbError;
use mysql_async::TxOpts;

use crate::error::{duplicate_key_name, RpcError};
use crate::flip_group::{FlipError, FlipGroups};
use crate::limits::Budget;
use crate::params::{flag, Params};
use crate::reply::{self, Xml};
use crate::state::AppState;
use crate::validate;
use crate::RpcRequest;

/// BOINC's email-change cooldown.
const EMAIL_CHANGE_COOLDOWN_SECS: f64 = 7.0 * 86400.0;

#[derive(Debug, Clone)]
pub struct ConsentChange {
    pub name: String,
    pub flag: bool,
    pub not_required: bool,
    pub source: String,
}

/// A validated request; `None` fields are left alone.
#[derive(Debug, Default)]
pub struct AmSetInfo {
    pub account_key: String,
    pub name: Option<String>,
    pub country: Option<String>,
    pub postal_code: Option<String>,
    pub global_prefs: Option<String>,
    pub project_prefs: Option<String>,
    pub url: Option<String>,
    pub send_email: Option<i64>,
    pub show_hosts: Option<i64>,
    pub teamid: Option<i64>,
    pub venue: Option<String>,
    pub email_addr: Option<String>,
    pub password_hash: Option<String>,
    pub consent: Option<ConsentChange>,
}

fn zero_one(p: &Params, name: &'static str) -> Result<Option<i64>, RpcError> {
    p.nonempty(name)
        .map(|v| flag(name, v).map(i64::from))
        .transpose()
}

/// Prefs as BOINC normalises them (CRLF -> LF), checked for their tags
/// and (normalised) for their column's size.
fn prefs(p: &Params, name: &str, tag: &str) -> Result<Option<String>, RpcError> {
    let Some(v) = p.nonempty(name) else {
        return Ok(None);
    };
    let v = v.replace("\r\n", "\n");
    validate::fits(name, &v)?;
    if let Some(why) = validate::prefs_problem(&v, &format!("<{tag}>"), &format!("</{tag}>")) {
        let what = if tag == "global_preferences" {
            "global"
        } else {
            "project"
        };
        return Err(RpcError::InvalidXml(format!(
            "Invalid {what} preferences: {why}"
        )));
    }
    Ok(Some(v))
}

impl AmSetInfo {
    /// The text fields stored in varchar columns (for `validate::stored_in`).
    pub fn stored_text(&self) -> [(&'static str, Option<&str>); 7] {
        [
            ("name", self.name.as_deref()),
            ("email_addr", self.email_addr.as_deref()),
            (
                "consent_source",
                self.consent.as_ref().map(|c| c.source.as_str()),
            ),
            ("postal_code", self.postal_code.as_deref()),
            ("venue", self.venue.as_deref()),
            ("country", self.country.as_deref()),
            ("url", self.url.as_deref()),
        ]
    }

    /// The consent change, when it is all the request asks for: such
    /// requests are grouped (`crate::flip_group`).
    pub fn consent_only(&self) -> Option<&ConsentChange> {
        let other_fields = self.name.is_some()
            || self.country.is_some()
            || self.postal_code.is_some()
            || self.global_prefs.is_some()
            || self.project_prefs.is_some()
            || self.url.is_some()
            || self.send_email.is_some()
            || self.show_hosts.is_some()
            || self.teamid.is_some()
            || self.venue.is_some()
            || self.email_addr.is_some()
            || self.password_hash.is_some();
        self.consent.as_ref().filter(|_| !other_fields)
    }

    /// The parameter source: the POST body when it carries account_key,
    /// else the query string (never a mix of both).
    pub fn source(req: &RpcRequest) -> &Params {
        if req.body.nonempty("account_key").is_some() {
            &req.body
        } else {
            &req.query
        }
    }

    /// `user_country` / `user_url` off (config.xml): that field is ignored,
    /// as upstream does, so it is neither checked nor stored.
    pub fn parse(p: &Params, user_country: bool, user_url: bool) -> Result<Self, RpcError> {
        let account_key = p.required("account_key")?.to_owned();
        // Every stored value fits its column (prefs: after normalising).
        let mut stored = vec![
            "name",
            "email_addr",
            "consent_source",
            "postal_code",
            "venue",
        ];
        stored.extend(user_country.then_some("country"));
        stored.extend(user_url.then_some("url"));
        validate::lengths(p, &stored)?;
        let country = p.nonempty("country").filter(|_| user_country);
        if let Some(c) = country {
            validate::country(c)?;
        }
        let name = p.nonempty("name").map(str::to_owned);
        if let Some(n) = &name {
            validate::user_name(n)?;
        }
        let teamid = match p.nonempty("teamid") {
            Some(v) => Some(
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| RpcError::MissingParam("teamid"))?,
            ),
            None => None,
        };
        // All four consent parameters, or the consent table is untouched.
        let consent = match (
            p.get("consent_name"),
            p.get("consent_flag"),
            p.get("consent_not_required"),
            p.get("consent_source"),
        ) {
            (Some(name), Some(f), Some(nr), Some(source)) => Some(ConsentChange {
                name: name.to_owned(),
                flag: flag("consent_flag", f)?,
                not_required: flag("consent_not_required", nr)?,
                source: source.to_owned(),
            }),
            _ => None,
        };
        Ok(Self {
            account_key,
            name,
            country: country.map(str::to_owned),
            postal_code: p.nonempty("postal_code").map(str::to_owned),
            global_prefs: prefs(p, "global_prefs", "global_preferences")?,
            project_prefs: prefs(p, "project_prefs", "project_preferences")?,
            url: p.nonempty("url").filter(|_| user_url).map(str::to_owned),
            send_email: zero_one(p, "send_email")?,
            show_hosts: zero_one(p, "show_hosts")?,
            teamid,
            venue: p.nonempty("venue").map(str::to_owned),
            email_addr: p.nonempty("email_addr").map(queries::normalise_email),
            password_hash: p.nonempty("password_hash").map(str::to_owned),
            consent,
        })
    }
}

/// Keep the project-specific block the account manager knows nothing
/// about (as BOINC does): copy it from the stored prefs if the new ones
/// lack one.
fn keep_project_specific(new: String, old: &str) -> String {
    const OPEN: &str = "<project_specific>";
    const CLOSE: &str = "</project_specific>";
    const ROOT: &str = "<project_preferences>";
    if find_ci(&new, OPEN).is_some() {
        return new;
    }
    let Some(start) = find_ci(old, OPEN) else {
        return new;
    };
    let Some(end) = find_ci(&old[start..], CLOSE).map(|e| start + e + CLOSE.len()) else {
        return new;
    };
    match find_ci(&new, ROOT) {
        Some(at) => {
            let at = at + ROOT.len();
            format!("{}\n{}\n{}", &new[..at], &old[start..end], &new[at..])
        }
        None => new,
    }
}

fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    hay.to_ascii_lowercase().find(&needle.to_ascii_lowercase())
}

fn enroll_withdrawal() -> RpcError {
    RpcError::generic(
        "Withdrawing consent to the project's terms of use (ENROLL) is not possible through \
         am_set_info: leaving the terms means deleting the account, which is done on the \
         project's web site.",
    )
}

fn disabled_warning(shortname: &str) -> String {
    format!("consent type '{shortname}' is not enabled on this project; nothing recorded")
}

/// Quoted with escapes: a look-alike shows as one (in the reply and in the
/// log, which it cannot forge lines in).
fn unknown_warning(name: &str) -> String {
    format!("consent type {name:?} does not exist (names are exact); nothing recorded")
}

fn applied(userid: i64, warning: Option<String>, recorded: bool) -> Xml {
    if let Some(w) = &warning {
        tracing::warn!(userid, "am_set_info: {w}");
    }
    tracing::info!(userid, consent_recorded = recorded, "am_set_info applied");
    reply::am_set_info(warning.as_deref())
}

/// A consent-only request: the same checks, then the change goes into the
/// next group commit.
async fn grouped(
    state: &AppState,
    groups: &FlipGroups,
    r: &AmSetInfo,
    c: &ConsentChange,
    failures: &Budget<'_>,
) -> Result<Xml, RpcError> {
    let charset = match state.known_charset() {
        Some(cs) => cs,
        None => state.charset(&mut state.conn().await?).await?,
    };
    validate::stored_in(charset, &r.stored_text())?;
    // An address past its failed-login budget is refused whether its key
    // is right or wrong (as alone: wrong keys are refused by the count).
    if failures.is_counted() {
        failures.admit(&mut state.conn().await?).await?;
    }
    let flip = Flip {
        account_key: r.account_key.clone(),
        type_name: c.name.clone(),
        flag: c.flag,
        not_required: c.not_required,
        source: c.source.clone(),
    };
    let outcome = groups.submit(flip).await.map_err(|e| match e {
        FlipError::Db(e) => RpcError::from(e),
        FlipError::NoConnection | FlipError::Stopped => {
            tracing::warn!(error = %e, "am_set_info: consent change not applied");
            RpcError::DbUnavailable
        }
    })?;
    match outcome {
        FlipOutcome::NoAccount => {
            failures.count_failure(&mut state.conn().await?).await?;
            Err(RpcError::NotFound)
        }
        FlipOutcome::EnrollWithdrawal { .. } => Err(enroll_withdrawal()),
        FlipOutcome::TypeDisabled { userid, shortname } => {
            Ok(applied(userid, Some(disabled_warning(&shortname)), false))
        }
        FlipOutcome::UnknownType { userid } => {
            Ok(applied(userid, Some(unknown_warning(&c.name)), false))
        }
        FlipOutcome::Applied { userid, recorded } => Ok(applied(userid, None, recorded)),
    }
}

pub async fn handle(state: &AppState, req: &RpcRequest) -> Result<Xml, RpcError> {
    state.check_web_running()?;
    let r = AmSetInfo::parse(
        AmSetInfo::source(req),
        state.config_default_on("user_country"),
        state.config_default_on("user_url"),
    )?;
    let allow_credentials = state.config.bool("am_set_info_allow_credentials");

    // Unknown keys count as failed logins per address (key guessing).
    let failures = crate::limits::failed_logins(state, req.ip);
    failures.check_local()?;
    if let (Some(c), Some(groups)) = (r.consent_only(), state.flip_groups()) {
        return grouped(state, groups, &r, c, &failures).await;
    }
    let mut conn = state.conn().await?;
    validate::stored_in(state.charset(&mut conn).await?, &r.stored_text())?;
    let Some(user) = queries::user_by_authenticator(&mut conn, &r.account_key).await? else {
        failures.count_failure(&mut conn).await?;
        return Err(RpcError::NotFound);
    };
    failures.admit(&mut conn).await?;

    // Credentials. Re-sending the current email or password is harmless
    // (account managers send whole profiles); changing them needs opt-in.
    let email_change = match &r.email_addr {
        Some(e) if !queries::same_email(&user.email_addr, e) => {
            if !allow_credentials {
                return Err(RpcError::generic(
                    "This project does not allow changing the email address through \
                     am_set_info; please change it on the project's web site.",
                ));
            }
            if !validate::email_syntax(e) {
                return Err(RpcError::BadEmail(Some("Invalid email address".into())));
            }
            Some(e.clone())
        }
        _ => None,
    };
    let new_passwd_hash = match &r.password_hash {
        Some(h) => {
            if super::verify_password(user.id, h, &user.passwd_hash).await? {
                None
            } else if !allow_credentials {
                return Err(RpcError::generic(
                    "This project does not allow changing the password through am_set_info; \
                     please change it on the project's web site.",
                ));
            } else if h.len() != 32 {
                return Err(RpcError::generic("password hash length not 32"));
            } else {
                Some(super::hash_password(h).await?)
            }
        }
        None => None,
    };

    let now = boinc_db::now();
    let mut warning: Option<String> = None;
    let outcome: Result<Result<bool, RpcError>, DbError> = async {
        let mut tx = conn.start_transaction(TxOpts::default()).await?;
        // Serialise changes to this account; re-read it under the lock (one
        // statement does both).
        let Some(cur) = account::lock_and_read_user(&mut tx, user.id).await? else {
            return Ok(Err(RpcError::NotFound));
        };
        // Erased (or key changed) while we waited for the lock: the key no
        // longer names this account.
        if cur.authenticator() != r.account_key || boinc_db::erase::is_deleted(&cur) {
            return Ok(Err(RpcError::NotFound));
        }
        // The consent type, by its exact name; what may be done is decided
        // on the type found, never on the text sent. The same read brings
        // the user's latest row of that type (seen under the lock).
        let consent = match &r.consent {
            Some(c) => match account::consent_type_and_latest(&mut tx, &c.name, cur.id).await? {
                Some((t, _)) if t.shortname == CONSENT_ENROLL && !c.flag => {
                    return Ok(Err(enroll_withdrawal()));
                }
                Some((t, latest)) if t.is_enabled() => Some((c, t, latest)),
                Some((t, _)) => {
                    warning = Some(disabled_warning(&t.shortname));
                    None
                }
                None => {
                    warning = Some(unknown_warning(&c.name));
                    None
                }
            },
            None => None,
        };
        let mut upd = UserUpdate::default();
        if let Some(name) = &r.name {
            if name != cur.name() {
                if queries::user_name_taken(&mut tx, name, cur.id).await? {
                    return Ok(Err(RpcError::BadUserName(
                        "user name is already taken".into(),
                    )));
                }
                upd.name = Some(name.clone());
            }
        }
        upd.country = r.country.clone();
        upd.postal_code = r.postal_code.clone();
        upd.global_prefs = r.global_prefs.clone();
        if let Some(p) = &r.project_prefs {
            let old = cur
                .project_prefs
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let merged = keep_project_specific(p.clone(), &old);
            // The kept block may push it past the column's size.
            if let Err(e) = validate::fits("project_prefs", &merged) {
                return Ok(Err(e));
            }
            upd.project_prefs = Some(merged);
        }
        upd.url = r.url.clone();
        upd.send_email = r.send_email;
        upd.show_hosts = r.show_hosts;
        upd.venue = r.venue.clone();
        if let Some(new_email) = &email_change {
            if queries::user_by_email(&mut tx, new_email).await?.is_some() {
                return Ok(Err(RpcError::NotUnique(Some(
                    "There's already an account with that email address.".into(),
                ))));
            }
            if queries::user_by_previous_email(&mut tx, new_email)
                .await?
                .is_some()
            {
                return Ok(Err(RpcError::NotUnique(Some(
                    "Email address is already in use".into(),
                ))));
            }
            if cur.email_addr_change_time + EMAIL_CHANGE_COOLDOWN_SECS > now as f64 {
                return Ok(Err(RpcError::BadEmail(Some(
                    "Email address was changed within the past 7 days; please look for an \
                     email to the previous address if this change is incorrect."
                        .into(),
                ))));
            }
            upd.email = Some(EmailChange {
                new_email: new_email.clone(),
                previous_email: cur.email_addr.clone(),
                change_time: now,
            });
        }
        upd.passwd_hash = new_passwd_hash.clone();
        account::update_user(&mut tx, cur.id, &upd).await?;

        match r.teamid {
            Some(0) => queries::set_user_team(&mut tx, cur.id, cur.teamid, 0).await?,
            Some(id) => {
                if let Some(team) = queries::team_by_id(&mut tx, id).await? {
                    if team.joinable != 0 {
                        queries::set_user_team(&mut tx, cur.id, cur.teamid, team.id).await?;
                    }
                }
            }
            None => {}
        }

        let mut recorded = false;
        if let Some((c, t, latest)) = consent {
            if consent_flip::changes_latest(latest, c.flag) {
                queries::insert_consent(
                    &mut tx,
                    &NewConsent {
                        userid: cur.id,
                        consent_type_id: t.id,
                        // The server's clock; the caller has no say.
                        consent_time: now,
                        consent_flag: c.flag,
                        consent_not_required: c.not_required,
                        source: &c.source,
                    },
                )
                .await?;
                recorded = true;
            }
        }
        tx.commit().await?;
        Ok(Ok(recorded))
    }
    .await;

    let recorded = match outcome {
        Ok(inner) => inner?,
        Err(e) => {
            return Err(match duplicate_key_name(&e) {
                Some(k) if k.contains("email") => RpcError::NotUnique(Some(
                    "There's already an account with that email address.".into(),
                )),
                Some(k) if k.contains("name") => {
                    RpcError::BadUserName("user name is already taken".into())
                }
                Some(_) => RpcError::NotUnique(None),
                None => e.into(),
            })
        }
    };
    Ok(applied(user.id, warning, recorded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_specific_block_is_kept() {
        let old = "<project_preferences>\n<project_specific>\n<x>1</x>\n</project_specific>\n<resource_share>50</resource_share>\n</project_preferences>";
        let new =
            "<project_preferences>\n<resource_share>100</resource_share>\n</project_preferences>"
                .to_owned();
        let merged = keep_project_specific(new, old);
        assert!(merged.contains("<x>1</x>"), "{merged}");
        assert!(merged.contains("<resource_share>100"));
        let with =
            "<project_preferences>\n<project_specific>y</project_specific>\n</project_preferences>"
                .to_owned();
        assert_eq!(keep_project_specific(with.clone(), old), with);
    }
}
