//! Every reply body: the XML header, the error element and each RPC's
//! reply element, with upstream BOINC's element names and whitespace.
//! Text from the database or the request is escaped here.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use boinc_db::models::{Platform, User};
use boinc_db::xml::escape;

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
        .filter(|c| boinc_db::xml::is_xml_char(*c))
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

pub struct ProjectConfigReply<'a> {
    pub long_name: &'a str,
    pub master_url: &'a str,
    pub web_rpc_url_base: &'a str,
    pub server_version: &'a str,
    pub account_manager: bool,
    pub local_revision: Option<&'a str>,
    pub web_stopped: bool,
    pub account_creation_disabled: bool,
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
