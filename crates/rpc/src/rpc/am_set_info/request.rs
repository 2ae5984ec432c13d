//! am_set_info's request, parsed and checked, and the pieces of its
//! reply both write paths use (a leaf: `mod` and `write` import it).

use boinc_db::queries;

use crate::error::RpcError;
use crate::params::{flag, Params};
use crate::reply::{self, Xml};
use crate::request::RpcRequest;
use crate::state::AppState;
use crate::validate;

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

pub(super) fn enroll_withdrawal() -> RpcError {
    RpcError::generic(
        "Withdrawing consent to the project's terms of use (ENROLL) is not possible through \
         am_set_info: leaving the terms means deleting the account, which is done on the \
         project's web site.",
    )
}

pub(super) fn disabled_warning(shortname: &str) -> String {
    format!("consent type '{shortname}' is not enabled on this project; nothing recorded")
}

/// Quoted with escapes: a look-alike shows as one (in the reply and in the
/// log, which it cannot forge lines in).
pub(super) fn unknown_warning(name: &str) -> String {
    format!("consent type {name:?} does not exist (names are exact); nothing recorded")
}

/// A change done (`path`: "grouped" or "alone"): logged, counted, replied.
pub(super) fn applied(
    state: &AppState,
    path: &'static str,
    userid: i64,
    warning: Option<String>,
    recorded: bool,
) -> Xml {
    state.metrics.consent_change(path, recorded);
    if let Some(w) = &warning {
        tracing::warn!(userid, "am_set_info: {w}");
    }
    tracing::info!(userid, consent_recorded = recorded, "am_set_info applied");
    reply::am_set_info(warning.as_deref())
}
