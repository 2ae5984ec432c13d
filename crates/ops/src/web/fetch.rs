//! Is a GET the admin opening a page of this site, or something another
//! site made their browser fetch? Viewing an account writes an audit row
//! into that person's trail (and export), so only the first may count:
//! an `<img src=".../account?id=N">` on any site the admin visits would
//! otherwise write one, since the browser sends the saved login along.
//!
//! Browsers say where a request comes from in the Fetch Metadata headers
//! (Sec-Fetch-Site/-Mode/-Dest; every current browser, but only to https
//! or localhost origins). Without them (the ops page on plain http, an
//! old browser, curl), the session cookie decides: it is `SameSite=Strict`,
//! so a browser sends it only with requests from this site and with
//! addresses the admin typed or bookmarked, and a request for a page asks
//! for `text/html`, which no image, script or style load does.

use axum::http::header::{self, HeaderMap};

/// What a GET of an account page is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fetch {
    /// A top-level navigation from this site (a link, a redirect after a
    /// form) or by the admin's own hand (typed address, bookmark): shown,
    /// and audited as a view.
    PageView,
    /// A top-level navigation that another site started, or one we cannot
    /// tell apart from it: answered with a link to the page, nothing shown
    /// or audited until the admin follows it.
    ForeignNavigation,
    /// Not a page at all (image, script, frame, fetch()): refused.
    Subresource,
}

pub(super) fn classify(headers: &HeaderMap, has_session_cookie: bool) -> Fetch {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        let navigate = get("sec-fetch-mode") == Some("navigate");
        // Dest is missing only in browsers older than it (Chrome < 80).
        let document = get("sec-fetch-dest").is_none_or(|d| d == "document");
        if !navigate || !document {
            return Fetch::Subresource;
        }
        return match site {
            "same-origin" | "none" => Fetch::PageView,
            _ => Fetch::ForeignNavigation,
        };
    }
    let wants_html = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"));
    match (wants_html, has_session_cookie) {
        (false, _) => Fetch::Subresource,
        (true, true) => Fetch::PageView,
        (true, false) => Fetch::ForeignNavigation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    const NAV: [(&str, &str); 2] = [
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-dest", "document"),
    ];

    #[test]
    fn fetch_metadata_decides_when_sent() {
        for site in ["same-origin", "none"] {
            let h = headers(&[("sec-fetch-site", site), NAV[0], NAV[1]]);
            assert_eq!(classify(&h, false), Fetch::PageView, "{site}");
        }
        for site in ["cross-site", "same-site", "bogus"] {
            let h = headers(&[("sec-fetch-site", site), NAV[0], NAV[1]]);
            // A cookie changes nothing once the browser says where from.
            assert_eq!(classify(&h, true), Fetch::ForeignNavigation, "{site}");
        }
        for (mode, dest) in [
            ("no-cors", "image"),
            ("navigate", "iframe"),
            ("navigate", "frame"),
            ("navigate", "embed"),
            ("cors", "empty"),
            ("no-cors", "script"),
            ("same-origin", "document"),
        ] {
            let h = headers(&[
                ("sec-fetch-site", "same-origin"),
                ("sec-fetch-mode", mode),
                ("sec-fetch-dest", dest),
                ("accept", "text/html"),
            ]);
            assert_eq!(classify(&h, true), Fetch::Subresource, "{mode} {dest}");
        }
        let old_chrome = headers(&[("sec-fetch-site", "same-origin"), NAV[0]]);
        assert_eq!(classify(&old_chrome, false), Fetch::PageView);
        let no_mode = headers(&[("sec-fetch-site", "same-origin"), NAV[1]]);
        assert_eq!(classify(&no_mode, true), Fetch::Subresource);
    }

    #[test]
    fn without_it_the_strict_cookie_and_accept_decide() {
        let page = headers(&[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")]);
        assert_eq!(classify(&page, true), Fetch::PageView);
        assert_eq!(classify(&page, false), Fetch::ForeignNavigation);
        for accept in ["image/webp,*/*", "*/*", "text/css,*/*;q=0.1", ""] {
            let h = headers(&[("accept", accept)]);
            assert_eq!(classify(&h, true), Fetch::Subresource, "{accept}");
        }
        assert_eq!(classify(&HeaderMap::new(), true), Fetch::Subresource);
    }
}
