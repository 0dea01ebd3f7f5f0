//! Browser-facing defences: cross-site requests refused on the session-authenticated routes,
//! and the security headers every response carries.
//!
//! The JSON API authenticates with a bearer key a browser never attaches on its own, so cross-site
//! request forgery concerns only what a session cookie opens: server functions (`/rpc/`) and
//! sign-in/out (`/auth/`). `SameSite=Lax` keeps the cookie off cross-*site* requests, not off
//! requests from another port or subdomain of the same site, hence the checks here.

use axum::{
    extract::Request,
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

/// Where a state-changing request to a session route came from, as the browser reports it.
#[derive(Debug, PartialEq, Eq)]
pub enum Provenance {
    /// The same origin, or typed/bookmarked by the person (`Sec-Fetch-Site: none`).
    Trusted,
    /// Another origin (even another port of the same host): refused.
    CrossOrigin(String),
    /// No `Sec-Fetch-Site` and no `Origin`: not a browser (curl, a script), which holds no
    /// victim's cookie to abuse; allowed.
    NotABrowser,
}

/// Judges a request by `Sec-Fetch-Site` (every current browser sends it), else by `Origin`
/// compared with `Host`.
pub fn provenance(headers: &HeaderMap) -> Provenance {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return match site {
            "same-origin" | "none" => Provenance::Trusted,
            other => Provenance::CrossOrigin(format!("Sec-Fetch-Site: {other}")),
        };
    }
    match text(header::ORIGIN) {
        None => Provenance::NotABrowser,
        Some(origin) => {
            let origin_host = origin.split_once("://").map(|(_, rest)| rest);
            match (origin_host, text(header::HOST)) {
                (Some(o), Some(host)) if o.eq_ignore_ascii_case(host) => Provenance::Trusted,
                _ => Provenance::CrossOrigin(format!("Origin: {origin}")),
            }
        }
    }
}

fn is_session_route(path: &str) -> bool {
    path.starts_with("/rpc/") || path.starts_with("/auth/")
}

/// Refuses cross-origin requests that could change something with the visitor's session:
/// server functions, sign-in (login CSRF) and sign-out.
pub async fn refuse_cross_site(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && is_session_route(req.uri().path()) {
        if let Provenance::CrossOrigin(why) = provenance(req.headers()) {
            tracing::warn!(path = req.uri().path(), %why, "cross-site request refused");
            return (
                StatusCode::FORBIDDEN,
                "Herald refused a request from another site or origin. Open Herald itself and try again.",
            )
                .into_response();
        }
    }
    next.run(req).await
}

/// The policy of every response that does not set its own (pages set theirs, with a nonce for
/// their inline scripts): nothing may be loaded, run or framed.
const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Headers on every response: no framing, no content sniffing, no URLs leaked to other sites.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    let set = |headers: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set(headers, header::CONTENT_SECURITY_POLICY, DEFAULT_CSP);
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::HeaderName::from_static("cross-origin-opener-policy"), "same-origin");
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (header::HeaderName::from_static(k), HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn provenance_prefers_fetch_metadata_then_origin() {
        assert_eq!(provenance(&headers(&[("sec-fetch-site", "same-origin")])), Provenance::Trusted);
        assert_eq!(provenance(&headers(&[("sec-fetch-site", "none")])), Provenance::Trusted);
        for site in ["same-site", "cross-site"] {
            let h = headers(&[("sec-fetch-site", site), ("origin", "http://h:1"), ("host", "h:1")]);
            assert!(matches!(provenance(&h), Provenance::CrossOrigin(_)), "{site}");
        }
        assert_eq!(
            provenance(&headers(&[("origin", "http://h:3000"), ("host", "h:3000")])),
            Provenance::Trusted
        );
        assert!(matches!(
            provenance(&headers(&[("origin", "http://h:4000"), ("host", "h:3000")])),
            Provenance::CrossOrigin(_)
        ));
        assert!(matches!(
            provenance(&headers(&[("origin", "null"), ("host", "h")])),
            Provenance::CrossOrigin(_)
        ));
        assert_eq!(provenance(&headers(&[("host", "h")])), Provenance::NotABrowser);
    }
}
