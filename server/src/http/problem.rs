//! RFC 9457 (RFC 7807) problem details: every API error is `application/problem+json`.

use axum::{
    extract::{rejection::QueryRejection, FromRequestParts, Query},
    http::{header, request::Parts, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::{de::DeserializeOwned, Serialize};

/// An RFC 9457 problem document: what went wrong and, for invalid input, which field.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    #[serde(serialize_with = "ser_status")]
    #[schema(value_type = u16)]
    pub status: StatusCode,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every invalid field of the request, when Herald checked them all (webhooks): `field` and
    /// `detail` above name the first of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub errors: Vec<FieldProblem>,
}

/// One invalid field of a request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FieldProblem {
    pub field: String,
    pub detail: String,
}

fn ser_status<S: serde::Serializer>(s: &StatusCode, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_u16(s.as_u16())
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:herald:problem:{slug}"),
            title,
            status,
            detail: detail.into(),
            field: None,
            errors: Vec::new(),
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Missing or invalid API key", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        let mut p = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "Invalid request", detail);
        p.field = Some(field.to_owned());
        p
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "Herald could not complete the request; the server log has the details.",
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable", detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status;
        let reason = self.kind.strip_prefix("urn:herald:problem:").unwrap_or("other").to_owned();
        let mut res = (status, Json(self)).into_response();
        res.extensions_mut().insert(crate::metrics::RefusedBecause(reason));
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(app::db::health::RETRY_AFTER_SECS));
        }
        res
    }
}

impl From<sea_orm::DbErr> for Problem {
    /// An unavailable database is a 503 with `Retry-After` (nothing was stored: the client
    /// tries again); anything else is Herald's fault, a 500.
    fn from(err: sea_orm::DbErr) -> Self {
        if app::db::health::is_unavailable(&err) {
            tracing::warn!(error = %err, "database unavailable in API request");
            return Problem::unavailable(format!(
                "Herald's database is unavailable ({err}); nothing was stored. Try again in a few seconds."
            ));
        }
        tracing::error!(error = %err, "database error in API request");
        Problem::internal()
    }
}

/// `Query<T>` whose rejection is a problem document naming what is wrong.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(parts.uri.query().unwrap_or_default()).unwrap_or_default();
        if let Some((name, _)) = pairs.iter().find(|(k, v)| k.contains('\0') || v.contains('\0')) {
            return Err(Problem::invalid(name, format!("{name}: {NUL_REFUSED}")));
        }
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e: QueryRejection| Problem::invalid("query", e.body_text()))
    }
}

/// `Json<T>` whose rejection is a problem document: 415 without a JSON content type,
/// 422 naming the field for invalid JSON, unknown fields or wrong types.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Problem> {
        use axum::extract::rejection::JsonRejection;
        match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(v)) => read_value(v).map(ApiJson),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "Send the body as JSON with `Content-Type: application/json`.",
            )),
            Err(JsonRejection::BytesRejection(e)) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(Problem::too_large(e.body_text()))
            }
            Err(e) => Err(Problem::invalid_json(&e.body_text())),
        }
    }
}

impl Problem {
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Payload too large", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    /// A serde error, with the field it names (serde says "unknown field `x`" or "... at line").
    pub fn invalid_json(message: &str) -> Self {
        let field = message
            .split('`')
            .nth(1)
            .filter(|_| message.contains("field"))
            .map(str::to_owned)
            .unwrap_or_else(|| "body".to_owned());
        let detail = message.trim_start_matches("Failed to deserialize the JSON body into the target type: ");
        Problem::invalid(&field, detail.to_owned())
    }
}

impl From<app::db::deliveries::ListError> for Problem {
    fn from(e: app::db::deliveries::ListError) -> Self {
        match e {
            app::db::deliveries::ListError::BadCursor => Problem::invalid("cursor", e.to_string()),
            app::db::deliveries::ListError::Db(e) => e.into(),
        }
    }
}

/// A page size from the query, within 1..=`max`, or `default` when absent.
pub fn check_limit(limit: Option<u64>, default: u64, max: u64) -> Result<u64, Problem> {
    match limit.unwrap_or(default) {
        l if (1..=max).contains(&l) => Ok(l),
        _ => Err(Problem::invalid("limit", format!("limit must be between 1 and {max}"))),
    }
}

/// A JSON body that may be left out entirely: an empty body, or `null`, means `T::default()`.
pub fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| Problem::invalid_json(&e.to_string()))?;
        if value.is_null() {
            return Ok(T::default()); // `null`: nothing given, as an empty body
        }
        read_value(value)
    }
}

/// Reads a JSON body into `T`, the one way every API body is read: NUL characters refused
/// (`refuse_nul`), integral floats taken as integers, and a wrong type named by its field's path
/// (`notify_emails`, `auth.username`), where serde alone says only what it expected.
fn read_value<T: DeserializeOwned>(mut value: serde_json::Value) -> Result<T, Problem> {
    refuse_nul(&value)?;
    integral_floats_as_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        match path.as_str() {
            "." | "" => Problem::invalid_json(&inner),
            _ if inner.contains("unknown field") => Problem::invalid_json(&inner),
            _ => Problem::invalid(&path, format!("{path}: {inner}")),
        }
    })
}

/// JSON has one number type: `10.0` is the integer 10 to JSON Schema (and to JavaScript, which
/// may send it so), but not to serde. Numbers without a fractional part become integers before
/// the body is read, so an integer field takes them; a real fraction is still refused.
fn integral_floats_as_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
                *value = serde_json::Value::from(f as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        serde_json::Value::Object(map) => map.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// Why a NUL character is refused wherever it appears outside an event's payload.
pub const NUL_REFUSED: &str = "must not contain NUL characters (\\u0000): PostgreSQL cannot store them";

/// Input Herald would store as text must hold no NUL: PostgreSQL refuses them, so accepting one
/// would end in a 500 there (and a value that differs between databases). The answer names the
/// field by its path (`headers.X-Tenant`, `event_types[2]`).
pub fn refuse_nul(value: &serde_json::Value) -> Result<(), Problem> {
    fn walk(value: &serde_json::Value, path: &str) -> Option<String> {
        let join = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
        match value {
            serde_json::Value::String(s) if s.contains('\0') => Some(path.to_owned()),
            serde_json::Value::Array(items) => {
                items.iter().enumerate().find_map(|(i, v)| walk(v, &format!("{path}[{i}]")))
            }
            serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
                if k.contains('\0') {
                    Some(join(&k.replace('\0', "\\u0000")))
                } else {
                    walk(v, &join(k))
                }
            }),
            _ => None,
        }
    }
    match walk(value, "") {
        Some(path) => {
            let field = if path.is_empty() { "body".to_owned() } else { path };
            Err(Problem::invalid(&field, format!("{field}: {NUL_REFUSED}")))
        }
        None => Ok(()),
    }
}

impl From<app::models::FieldError> for FieldProblem {
    fn from(e: app::models::FieldError) -> Self {
        FieldProblem { detail: format!("{}: {}", e.field, e.message), field: e.field }
    }
}

impl From<app::models::FieldError> for Problem {
    fn from(e: app::models::FieldError) -> Self {
        let FieldProblem { field, detail } = e.into();
        Problem::invalid(&field, detail)
    }
}

impl Problem {
    /// Every problem the request has at once (a 422 listing them in `errors`, the first also as
    /// `field` and `detail`), or nothing when there are none: a client fixes them in one round.
    pub fn check_all(problems: Vec<app::models::FieldError>) -> Result<(), Problem> {
        let errors: Vec<FieldProblem> = problems.into_iter().map(FieldProblem::from).collect();
        let Some(first) = errors.first() else {
            return Ok(());
        };
        let mut problem = Problem::invalid(&first.field, first.detail.clone());
        problem.errors = errors;
        Err(problem)
    }
}
