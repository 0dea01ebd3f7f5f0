//! Signing in and out of the admin app, and the guard that keeps pages behind it.

use app::{auth::SESSION_COOKIE, db::sessions, state::AppState};
use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, Method},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
    Form,
};
use cookie::{time, Cookie, SameSite};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// Only a path on this origin: an attacker's link must not turn sign-in into a redirect
/// elsewhere. Browsers drop tabs and newlines from URLs and read `\\` as `/`, so `/\t/host`
/// and `/\\host` mean `//host`, another host: only visible ASCII other than `\\` passes, and
/// the second character must not start an authority. Anything else goes to the log.
fn safe_next(next: &str) -> &str {
    let visible = next.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b'\\');
    if visible && next.starts_with('/') && !next.starts_with("//") {
        next
    } else {
        "/"
    }
}

fn with_cookie(mut res: Response, cookie: Cookie<'_>) -> Response {
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

pub async fn login(State(state): State<AppState>, Form(form): Form<LoginForm>) -> Response {
    let next = safe_next(&form.next).to_owned();
    // No stored email holds a NUL, and PostgreSQL cannot even compare one: refused, not a 500.
    let credentials_usable = !form.email.contains('\0') && !form.password.contains('\0');
    let found = match credentials_usable {
        true => app::db::users::authenticate(&state.db, &form.email, &form.password).await,
        false => Ok(None),
    };
    let user = match found {
        Ok(Some(user)) => user,
        Ok(None) => {
            tracing::info!(email = %form.email, "sign-in refused");
            let query = serde_urlencoded::to_string([("error", "invalid"), ("next", next.as_str())])
                .unwrap_or_default();
            return Redirect::to(&format!("/login?{query}")).into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "sign-in failed");
            return Redirect::to("/login?error=unavailable").into_response();
        }
    };
    let token = match sessions::create(&state.db, user.id, state.web.session_ttl).await {
        Ok(token) => token,
        Err(e) => {
            tracing::error!(error = %e, "cannot create session");
            return Redirect::to("/login?error=unavailable").into_response();
        }
    };
    tracing::info!(email = %user.email, "signed in");
    let cookie = Cookie::build((SESSION_COOKIE, token))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.web.secure_cookies)
        .max_age(time::Duration::seconds(state.web.session_ttl.num_seconds()))
        .build();
    with_cookie(Redirect::to(&next).into_response(), cookie)
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = app::auth::session_token(&headers) {
        if let Err(e) = sessions::delete(&state.db, &token).await {
            tracing::error!(error = %e, "cannot delete session");
        }
    }
    let cookie = Cookie::build((SESSION_COOKIE, "")).path("/").max_age(time::Duration::ZERO).build();
    with_cookie(Redirect::to("/login").into_response(), cookie)
}

/// Paths anyone may fetch: the sign-in page and its assets, the API (which checks keys),
/// and server functions (which check the session themselves).
/// The token of an `Authorization: Bearer <token>` header; RFC 9110 §11.1: the scheme is
/// case-insensitive (`bearer`, `BEARER`).
pub fn bearer(value: &axum::http::HeaderValue) -> Option<&str> {
    let (scheme, token) = value.to_str().ok()?.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}

fn is_public(path: &str) -> bool {
    path == "/login"
        || path == "/favicon.ico"
        || path == "/metrics"
        || ["/auth/", "/pkg/", "/api/", "/rpc/"].iter().any(|p| path.starts_with(p))
}

/// Sends people who are not signed in to the sign-in page, remembering where they were going.
pub async fn page_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !matches!(*req.method(), Method::GET | Method::HEAD) || is_public(path) {
        return next.run(req).await;
    }
    let user = match app::auth::session_token(req.headers()) {
        Some(token) => sessions::user_for_token(&state.db, &token).await,
        None => Ok(None),
    };
    match user {
        Ok(Some(_)) => next.run(req).await,
        Ok(None) => {
            let target = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let query = serde_urlencoded::to_string([("next", target)]).unwrap_or_default();
            Redirect::to(&format!("/login?{query}")).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot check session");
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, "Herald cannot reach its database.").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_only_redirects_to_local_paths() {
        assert_eq!(safe_next("/?status=failed"), "/?status=failed");
        assert_eq!(safe_next("//evil.example/"), "/");
        assert_eq!(safe_next("https://evil.example/"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
        assert_eq!(safe_next("/%09/evil.example/x"), "/%09/evil.example/x", "encoded: stays a path");
        for hostile in
            ["/\t/evil.example/x", "/\n/evil.example", "/\nX-Injected: 1", "/a\\b", "/é", "/ x", ""]
        {
            assert_eq!(safe_next(hostile), "/", "{hostile:?}");
        }
    }
}
