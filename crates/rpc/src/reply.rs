//! Every reply body: the XML header, the error element and each RPC's
//! reply element, with upstream BOINC's element names and whitespace.
//! Text from the database or the request is escaped here.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use boinc_db::account::public_lookup::{OwnerHost, PublicTeam, PublicUser};
use boinc_db::models::{Platform, User};
use boinc_db::text::xml::{escape, escape_into};

use crate::error::RpcError;

pub const XML_HEADER: &str = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n";
/// Upstream's header; kept for byte-compatibility (see SPEC section 3).
pub const CONTENT_TYPE: &str = "text/xml;charset=UTF-8";

/// A finished XML reply (body after the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xml(pub String);

impl IntoResponse for Xml {
    fn into_response(self) -> Response {
        xml_response(StatusCode::OK, self.0)
    }
}

/// What a handler answers: a finished body, or one sent as it is made
/// (team_email_list of a big team; it starts with the XML header).
pub enum Reply {
    Xml(Xml),
    Stream(axum::body::Body),
}

impl From<Xml> for Reply {
    fn from(x: Xml) -> Self {
        Reply::Xml(x)
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Reply::Xml(x) => x.into_response(),
            Reply::Stream(body) => {
                let mut r = (StatusCode::OK, body).into_response();
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
                r
            }
        }
    }
}

pub fn xml_response(status: StatusCode, body: String) -> Response {
    let mut full = String::with_capacity(XML_HEADER.len() + body.len());
    full.push_str(XML_HEADER);
    full.push_str(&body);
    let mut r = (status, full).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    r
}

pub fn error_body(num: i32, msg: &str) -> String {
    format!(
        "<error>\n    <error_num>{num}</error_num>\n    <error_msg>{}</error_msg>\n</error>\n",
        escape(msg)
    )
}

impl IntoResponse for RpcError {
    fn into_response(self) -> Response {
        if let RpcError::OutcomeUnknown = self {
            // Not an <error> reply: that would promise nothing was written.
            let mut r = (StatusCode::SERVICE_UNAVAILABLE, format!("{self}\n")).into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return r;
        }
        let body = error_body(self.error_num(), &self.to_string());
        match self {
            RpcError::BadMethod => {
                let mut r = xml_response(StatusCode::METHOD_NOT_ALLOWED, body);
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
                r
            }
            _ => xml_response(StatusCode::OK, body),
        }
    }
}

/// create_account (note upstream's leading space).
pub fn create_account(authenticator: &str) -> Xml {
    Xml(format!(
        " <account_out>\n   <authenticator>{}</authenticator>\n</account_out>\n",
        escape(authenticator)
    ))
}

pub fn lookup_account_exists() -> Xml {
    Xml("<account_out>\n   <success/>\n</account_out>\n".to_owned())
}

pub fn lookup_account(authenticator: &str) -> Xml {
    Xml(format!(
        "<account_out>\n<authenticator>{}</authenticator>\n</account_out>\n",
        escape(authenticator)
    ))
}

/// am_set_info; `warning` explains why a consent change was not recorded.
pub fn am_set_info(warning: Option<&str>) -> Xml {
    let extra = match warning {
        Some(w) => format!("<consent_warning>{}</consent_warning>", escape(w)),
        None => String::new(),
    };
    Xml(format!(
        "<am_set_info_reply>\n    <success/>\n    {extra}\n</am_set_info_reply>\n"
    ))
}

/// PHP's urlencode(): everything but `A-Za-z0-9-_.` as %XX, space as '+'.
pub fn php_urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Preferences are XML documents of their own and go out as stored
/// (as upstream), minus characters XML forbids.
fn prefs(raw: &Option<Vec<u8>>) -> String {
    let s = raw
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    s.chars()
        .filter(|c| boinc_db::text::xml::is_xml_char(*c))
        .collect()
}

pub struct AmGetInfo<'a> {
    pub user: &'a User,
    pub weak_auth: String,
    pub cpid: String,
    pub team_founder: bool,
}

pub fn am_get_info(i: &AmGetInfo<'_>) -> Xml {
    let u = i.user;
    let mut ret = format!(
        "<id>{}</id>\n<name>{}</name>\n<country>{}</country>\n<weak_auth>{}</weak_auth>\n\
         <cpid>{}</cpid>\n<has_profile>{}</has_profile>\n<create_time>{}</create_time>\n\
         <global_prefs>\n{}\n</global_prefs>\n<project_prefs>\n{}\n</project_prefs>\n\
         <url>{}</url>\n<send_email>{}</send_email>\n<show_hosts>{}</show_hosts>\n\
         <teamid>{}</teamid>\n<venue>{}</venue>",
        u.id,
        php_urlencode(u.name()),
        php_urlencode(u.country.as_deref().unwrap_or("")),
        escape(&i.weak_auth),
        escape(&i.cpid),
        u.has_profile,
        u.create_time,
        prefs(&u.global_prefs),
        prefs(&u.project_prefs),
        php_urlencode(u.url.as_deref().unwrap_or("")),
        u.send_email,
        u.show_hosts,
        u.teamid,
        escape(&u.venue),
    );
    if i.team_founder {
        ret.push_str("<teamfounder/>\n");
    }
    Xml(format!(
        "<am_get_info_reply>\n    <success/>\n    {ret}\n</am_get_info_reply>\n"
    ))
}

/// Upstream's normalize_user_url(): a URL of letters, digits and
/// `-_./#?&=`, optionally after `http://` or `https://` (any case; the
/// scheme is then written in lower case), else nothing; `http://` is
/// added when no scheme was given.
pub fn normalize_user_url(url: &str) -> String {
    let parts: Vec<&str> = url.split("//").collect();
    let rest = match parts.as_slice() {
        [only] => *only,
        [scheme, rest]
            if scheme.eq_ignore_ascii_case("http:") || scheme.eq_ignore_ascii_case("https:") =>
        {
            *rest
        }
        _ => return String::new(),
    };
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-_./#?&=".contains(&b);
    if url.is_empty() || !rest.bytes().all(allowed) {
        return String::new();
    }
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") {
        format!("http://{}", &url[7..])
    } else if lower.starts_with("https://") {
        format!("https://{}", &url[8..])
    } else {
        format!("http://{url}")
    }
}

/// PHP's truthiness of a string: "" and "0" are false.
fn php_true(s: &str) -> bool {
    !s.is_empty() && s != "0"
}

/// Which optional user elements the project shows (upstream's
/// USER_COUNTRY and USER_URL, from config.xml's user_country / user_url).
pub type UserFields = boinc_db::config::profile::ProfileFields;

/// The country and url lines every user record of the lookups ends with.
fn user_tail(out: &mut String, u: &PublicUser, f: UserFields) {
    if f.country {
        out.push_str("     <country>");
        escape_into(out, u.country.as_deref().unwrap_or(""));
        out.push_str("</country>\n");
    }
    if let Some(url) = u.url.as_deref().filter(|u| f.url && php_true(u)) {
        out.push_str("    <url>");
        escape_into(out, &normalize_user_url(url));
        out.push_str("</url>\n");
    }
}

fn element(out: &mut String, indent: &str, name: &str, value: &str) {
    out.push_str(indent);
    out.push('<');
    out.push_str(name);
    out.push('>');
    escape_into(out, value);
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

/// show_user (upstream's show_user_xml); `owner`: the account's own
/// `auth=`, which adds its venue and hosts.
pub fn show_user(u: &PublicUser, owner: Option<&[OwnerHost]>, f: UserFields) -> Xml {
    let mut s = String::with_capacity(512);
    s.push_str("<user>\n");
    element(&mut s, "    ", "id", &u.id.to_string());
    element(&mut s, "    ", "cpid", &u.cpid());
    element(&mut s, "    ", "create_time", &u.create_time.to_string());
    element(&mut s, "    ", "name", u.name.as_deref().unwrap_or(""));
    element(&mut s, "    ", "total_credit", &u.total_credit);
    element(&mut s, "    ", "expavg_credit", &u.expavg_credit);
    element(&mut s, "    ", "expavg_time", &u.expavg_time);
    element(&mut s, "    ", "teamid", &u.teamid.to_string());
    element(&mut s, "    ", "has_profile", &u.has_profile.to_string());
    if let Some(hosts) = owner {
        element(&mut s, "   ", "venue", &u.venue);
        for h in hosts {
            owner_host(&mut s, h);
        }
    }
    user_tail(&mut s, u, f);
    s.push_str("</user>\n");
    Xml(s)
}

/// One of the owner's hosts (upstream's show_host_xml).
fn owner_host(s: &mut String, h: &OwnerHost) {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    s.push_str("    <host>\n");
    let i = "        ";
    element(s, i, "id", &h.id.to_string());
    element(s, i, "create_time", &h.create_time.to_string());
    element(s, i, "rpc_seqno", &h.rpc_seqno.to_string());
    element(s, i, "rpc_time", &h.rpc_time.to_string());
    element(s, i, "host_cpid", &opt(&h.host_cpid));
    element(s, i, "total_credit", &h.total_credit);
    element(s, i, "expavg_credit", &h.expavg_credit);
    element(s, i, "expavg_time", &h.expavg_time);
    element(s, i, "domain_name", &opt(&h.domain_name));
    element(s, i, "p_ncpus", &h.p_ncpus.to_string());
    element(s, i, "p_vendor", &opt(&h.p_vendor));
    element(s, i, "p_model", &opt(&h.p_model));
    element(s, i, "p_fpops", &h.p_fpops);
    element(s, i, "p_iops", &h.p_iops);
    element(s, i, "os_name", &opt(&h.os_name));
    element(s, i, "os_version", &opt(&h.os_version));
    element(s, i, "m_nbytes", &h.m_nbytes);
    element(s, i, "d_free", &h.d_free);
    element(s, i, "d_total", &h.d_total);
    element(s, i, "venue", &h.venue);
    s.push_str("    </host>\n");
}

/// team_email_list's list, around the members.
pub const MEMBERS_OPEN: &str = "<users>\n";
pub const MEMBERS_CLOSE: &str = "</users>\n";

/// One team member (upstream's show_team_member, whose whitespace is
/// odd: `</total_credit>` is followed by `</user>` or the next element on
/// the same line).
pub fn team_member_into(s: &mut String, u: &PublicUser, credit_only: bool, f: UserFields) {
    s.push_str("<user>\n");
    element(s, "    ", "id", &u.id.to_string());
    element(s, "    ", "cpid", &u.cpid());
    s.push_str("    <total_credit>");
    escape_into(s, &u.total_credit);
    s.push_str("</total_credit>");
    if !credit_only {
        s.push_str("    <create_time>");
        s.push_str(&u.create_time.to_string());
        s.push_str("</create_time>\n");
        element(s, "    ", "name", u.name.as_deref().unwrap_or(""));
        element(s, "    ", "expavg_credit", &u.expavg_credit);
        element(s, "    ", "expavg_time", &u.expavg_time);
        element(s, "    ", "has_profile", &u.has_profile.to_string());
        user_tail(s, u, f);
    }
    s.push_str("</user>\n");
}

/// One team (upstream's show_team_xml).
pub fn team_into(s: &mut String, t: &PublicTeam) {
    s.push_str("<team>\n");
    let i = "    ";
    element(s, i, "id", &t.id.to_string());
    element(s, i, "create_time", &t.create_time.to_string());
    element(s, i, "userid", &t.userid.to_string());
    element(s, i, "name", &t.name);
    element(s, i, "url", t.url.as_deref().unwrap_or(""));
    element(s, i, "type", &t.team_type.to_string());
    element(s, i, "country", t.country.as_deref().unwrap_or(""));
    element(s, i, "total_credit", &t.total_credit);
    element(s, i, "expavg_credit", &t.expavg_credit);
    element(s, i, "expavg_time", &t.expavg_time);
    s.push_str("</team>\n");
}

pub fn team(t: &PublicTeam) -> Xml {
    let mut s = String::with_capacity(512);
    team_into(&mut s, t);
    Xml(s)
}

/// team_lookup by several ids or by name.
pub fn teams(ts: &[PublicTeam]) -> Xml {
    let mut s = String::with_capacity(64 + 512 * ts.len());
    s.push_str("<teams>\n");
    for t in ts {
        team_into(&mut s, t);
    }
    s.push_str("</teams>\n");
    Xml(s)
}

pub struct ProjectConfigReply<'a> {
    pub long_name: &'a str,
    pub master_url: &'a str,
    pub web_rpc_url_base: &'a str,
    pub server_version: &'a str,
    pub account_manager: bool,
    pub local_revision: Option<&'a str>,
    pub web_stopped: bool,
    pub account_creation_disabled: bool,
    /// `disable_account_creation_rpc`: BOINC's Manager hides "create
    /// account" (upstream's server never sends it; its clients read it).
    pub client_account_creation_disabled: bool,
    pub invite_code_required: bool,
    pub min_passwd_length: i64,
    pub sched_stopped: bool,
    pub min_client_version: Option<&'a str>,
    pub platforms: &'a [Platform],
    pub terms_of_use: Option<&'a str>,
    pub ldap_auth: bool,
    /// `project_keywords.xml`: an XML fragment, sent as it is (as upstream).
    pub keywords: Option<&'a str>,
    pub account_ownership_public_key: Option<&'a str>,
}

pub fn project_config(p: &ProjectConfigReply<'_>) -> Xml {
    let mut s = format!(
        "<project_config>\n    <name>{}</name>\n    <master_url>{}</master_url>\n    \
         <web_rpc_url_base>{}</web_rpc_url_base>\n",
        escape(p.long_name),
        escape(p.master_url),
        escape(p.web_rpc_url_base)
    );
    // Upstream's order and indentation (some elements unindented).
    s.push_str(&format!(
        "<server_version>{}</server_version>\n",
        escape(p.server_version)
    ));
    if p.account_manager {
        s.push_str("    <account_manager/>\n");
    }
    if let Some(r) = p.local_revision {
        s.push_str(&format!("<local_revision>{}</local_revision>\n", escape(r)));
    }
    if p.web_stopped {
        s.push_str(&format!(
            "\n        <error_num>{}</error_num>\n        <web_stopped>1</web_stopped>\n    ",
            crate::error::num::PROJECT_DOWN
        ));
    } else {
        s.push_str("    <web_stopped>0</web_stopped>\n");
    }
    if p.account_creation_disabled {
        s.push_str("    <account_creation_disabled/>\n");
    }
    if p.client_account_creation_disabled {
        s.push_str("    <client_account_creation_disabled/>\n");
    }
    if p.invite_code_required {
        s.push_str("    <invite_code_required/>\n");
    }
    s.push_str(&format!(
        "    <min_passwd_length>{}</min_passwd_length>\n",
        p.min_passwd_length
    ));
    s.push_str(if p.sched_stopped {
        "    <sched_stopped>1</sched_stopped>\n"
    } else {
        "    <sched_stopped>0</sched_stopped>\n"
    });
    if let Some(v) = p.min_client_version {
        s.push_str(&format!(
            "<min_client_version>{}</min_client_version>\n",
            escape(v)
        ));
    }
    s.push_str("    <platforms>");
    for pl in p.platforms {
        s.push_str(&format!(
            "\n            <platform>\n                <platform_name>{}</platform_name>\n                \
             <user_friendly_name>{}</user_friendly_name>",
            escape(&pl.name),
            escape(&pl.user_friendly_name)
        ));
        if !pl.plan_class.is_empty() {
            s.push_str(&format!(
                "\n                <plan_class>{}</plan_class>\n",
                escape(&pl.plan_class)
            ));
        }
        s.push_str("\n            </platform>");
    }
    s.push_str("\n    </platforms>\n");
    if let Some(t) = p.terms_of_use {
        s.push_str(&format!(
            "    <terms_of_use>\n{}\n</terms_of_use>\n",
            escape(t)
        ));
    }
    if p.ldap_auth {
        s.push_str("<ldap_auth/>\n");
    }
    if let Some(k) = p.keywords {
        s.push_str(k);
    }
    if let Some(k) = p.account_ownership_public_key {
        s.push_str(&format!(
            "    <account_ownership_public_key>{k}</account_ownership_public_key>\n"
        ));
    }
    s.push_str("</project_config>");
    Xml(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_urls_as_upstream_normalizes_them() {
        assert_eq!(normalize_user_url("example.org/x"), "http://example.org/x");
        assert_eq!(
            normalize_user_url("HTTPS://Example.org"),
            "https://Example.org"
        );
        assert_eq!(
            normalize_user_url("Http://a.b/?q=1&r#f"),
            "http://a.b/?q=1&r#f"
        );
        assert_eq!(normalize_user_url("ftp://a.b"), "");
        assert_eq!(normalize_user_url("javascript:alert(1)"), "");
        assert_eq!(normalize_user_url("http://a//b"), "");
        assert_eq!(normalize_user_url("a b"), "");
        assert_eq!(normalize_user_url(""), "");
    }

    #[test]
    fn urlencode_matches_php() {
        assert_eq!(php_urlencode("a b*c~é/"), "a+b%2Ac%7E%C3%A9%2F");
        assert_eq!(php_urlencode("A-z_0.9"), "A-z_0.9");
    }

    #[test]
    fn error_body_is_upstreams_and_escaped() {
        assert_eq!(
            error_body(-137, "a<b"),
            "<error>\n    <error_num>-137</error_num>\n    <error_msg>a&lt;b</error_msg>\n</error>\n"
        );
    }
}
