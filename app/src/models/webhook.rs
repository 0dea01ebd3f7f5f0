use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{WebhookId, WebhookState};

pub const DEFAULT_TIMEOUT_MS: i32 = 15_000;
pub const MIN_TIMEOUT_MS: i32 = 1_000;
pub const MAX_TIMEOUT_MS: i32 = 30_000;
pub const MAX_RETRY_SLOTS: usize = 20;
pub const MAX_RETRY_DELAY_SECS: u32 = 7 * 24 * 3600;
/// A webhook subscribes to at most this many event types (patterns).
pub const MAX_EVENT_TYPES: usize = 100;
/// A webhook sends at most this many custom headers, each value at most `MAX_HEADER_VALUE_LEN`.
pub const MAX_HEADERS: usize = 32;
pub const MAX_HEADER_VALUE_LEN: usize = 4096;
pub const MAX_DESCRIPTION_LEN: usize = 2000;

/// How Herald authenticates to the destination, as configured (credentials in clear).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WebhookAuth {
    #[default]
    None,
    Basic {
        username: String,
        password: String,
    },
    ApiKey {
        header: String,
        value: String,
    },
}

/// Destination auth as reads show it: which kind, never the secret part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WebhookAuthView {
    None,
    Basic { username: String },
    ApiKey { header: String },
}

impl From<&WebhookAuth> for WebhookAuthView {
    fn from(auth: &WebhookAuth) -> Self {
        match auth {
            WebhookAuth::None => WebhookAuthView::None,
            WebhookAuth::Basic { username, .. } => WebhookAuthView::Basic { username: username.clone() },
            WebhookAuth::ApiKey { header, .. } => WebhookAuthView::ApiKey { header: header.clone() },
        }
    }
}

/// A webhook as the API and the app read it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Webhook {
    pub id: WebhookId,
    pub name: String,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub auth: WebhookAuthView,
    /// Custom header names; their values are write-only, like credentials.
    pub header_names: Vec<String>,
    pub timeout_ms: i32,
    pub retry_schedule: Option<Vec<u32>>,
    /// Told by email when this webhook is deactivated, and when it starts failing if
    /// `notify_on_failing`.
    pub notify_emails: Vec<String>,
    pub notify_on_failing: bool,
    /// Requests per second to this webhook, across all processes (`null`: the global default,
    /// `HERALD_WEBHOOK_RATE_LIMIT`, none unless set).
    pub rate_limit: Option<u32>,
    /// Requests that may go at once after a quiet spell (`null`: one second's worth).
    pub rate_limit_burst: Option<u32>,
    /// Ordered delivery: one request at a time, in the order events were accepted; a delivery
    /// that fails holds back the ones behind it until it succeeds, is re-sent or is skipped.
    pub ordered: bool,
    pub enabled: bool,
    pub state: WebhookState,
    pub stopped_by: Option<String>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub deactivated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What creating a webhook returns: the webhook and its signing secret, shown here once. The
/// JSON API sends [`CreatedWebhookBody`]; the admin app receives this nested shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    pub secret: String,
}

/// [`CreatedWebhook`] as `POST /api/v1/webhooks` returns it: the webhook's fields at the top
/// level (see `DeliveryDetailBody` for why the browser does not read this shape).
#[cfg(feature = "ssr")]
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CreatedWebhook)]
pub struct CreatedWebhookBody {
    #[serde(flatten)]
    pub webhook: Webhook,
    pub secret: String,
}

#[cfg(feature = "ssr")]
impl From<CreatedWebhook> for CreatedWebhookBody {
    fn from(c: CreatedWebhook) -> Self {
        Self { webhook: c.webhook, secret: c.secret }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WebhookCreate {
    #[cfg_attr(feature = "ssr", schema(min_length = 1, max_length = 200, pattern = r"\S"))]
    pub name: String,
    #[cfg_attr(
        feature = "ssr",
        schema(max_length = 2048, pattern = "^[hH][tT][tT][pP][sS]?://[^/@?#\\s]+(?:[/?#]\\S*)?$")
    )]
    pub url: String,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 2000))]
    pub description: String,
    /// Event types (`license.assigned`), categories (`license.*`) or `*`.
    #[cfg_attr(feature = "ssr", schema(min_items = 1, max_items = 100))]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub auth: WebhookAuth,
    /// Sent with every request; values are write-only. Herald's own headers cannot be replaced.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[cfg_attr(feature = "ssr", schema(minimum = 1000, maximum = 30000))]
    pub timeout_ms: Option<i32>,
    /// Seconds to wait before each retry (1 to 20 delays, each at most 604800).
    #[cfg_attr(feature = "ssr", schema(min_items = 1, max_items = 20))]
    pub retry_schedule: Option<Vec<u32>>,
    /// Email addresses told when this webhook is deactivated (at most 10).
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_items = 10))]
    pub notify_emails: Vec<String>,
    /// Also email them when the webhook starts failing (first failure after a success, at most
    /// once per `HERALD_FAILURE_NOTICE_MINUTES`).
    #[serde(default)]
    pub notify_on_failing: bool,
    /// Requests per second to this webhook, across all processes; deliveries over it wait (they
    /// are not failures). Absent: the global default (`HERALD_WEBHOOK_RATE_LIMIT`).
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 10000))]
    pub rate_limit: Option<u32>,
    /// Requests that may go at once after a quiet spell. Absent: one second's worth.
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 10000))]
    pub rate_limit_burst: Option<u32>,
    /// Deliver in order, one request at a time; a failed delivery holds back the ones behind it
    /// until it succeeds, is re-sent or is skipped (`POST /webhooks/{id}/line/skip`).
    #[serde(default)]
    pub ordered: bool,
    pub enabled: Option<bool>,
}

/// A partial update: absent fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    #[cfg_attr(feature = "ssr", schema(min_length = 1, max_length = 200, pattern = r"\S"))]
    pub name: Option<String>,
    #[cfg_attr(
        feature = "ssr",
        schema(max_length = 2048, pattern = "^[hH][tT][tT][pP][sS]?://[^/@?#\\s]+(?:[/?#]\\S*)?$")
    )]
    pub url: Option<String>,
    #[cfg_attr(feature = "ssr", schema(max_length = 2000))]
    pub description: Option<String>,
    #[cfg_attr(feature = "ssr", schema(min_items = 1, max_items = 100))]
    pub event_types: Option<Vec<String>>,
    pub auth: Option<WebhookAuth>,
    pub headers: Option<BTreeMap<String, String>>,
    #[cfg_attr(feature = "ssr", schema(minimum = 1000, maximum = 30000))]
    pub timeout_ms: Option<i32>,
    /// `null` returns the webhook to the global schedule.
    #[serde(default, deserialize_with = "double_option")]
    pub retry_schedule: Option<Option<Vec<u32>>>,
    #[cfg_attr(feature = "ssr", schema(max_items = 10))]
    pub notify_emails: Option<Vec<String>>,
    pub notify_on_failing: Option<bool>,
    /// `null` returns the webhook to the global default.
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 10000))]
    pub rate_limit: Option<Option<u32>>,
    /// `null`: one second's worth.
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 10000))]
    pub rate_limit_burst: Option<Option<u32>>,
    pub ordered: Option<bool>,
    pub enabled: Option<bool>,
}

fn double_option<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// A field that failed validation and why, phrased for the person who typed it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError { field: field.to_owned(), message: message.into() }
    }
}

pub fn validate_name(name: &str) -> Result<(), FieldError> {
    let len = name.trim().chars().count();
    if len == 0 {
        return Err(FieldError::new("name", "must not be empty"));
    }
    if len > 200 {
        return Err(FieldError::new("name", "must be at most 200 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new("name", "must not contain control characters (tabs, line breaks, NUL)"));
    }
    Ok(())
}

/// Free text: line breaks and tabs are fine, NUL is not (PostgreSQL cannot store it).
pub fn validate_description(description: &str) -> Result<(), FieldError> {
    if description.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(FieldError::new(
            "description",
            format!("must be at most {MAX_DESCRIPTION_LEN} characters"),
        ));
    }
    if description.contains('\0') {
        return Err(FieldError::new("description", "must not contain NUL characters"));
    }
    Ok(())
}

/// An absolute http(s) URL with a host. Whether the host is allowed is decided at send time,
/// against the address it resolves to (the SSRF guard), not here.
pub fn validate_url(url: &str) -> Result<(), FieldError> {
    let err = |m: &str| Err(FieldError::new("url", m));
    let url = url.trim();
    if url.len() > 2048 {
        return err("must be at most 2048 characters");
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return err("must be an absolute URL starting with http:// or https://");
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return err("must use http or https");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port.split(']').next().map(|h| h.trim_start_matches('[')).unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    if host.is_empty() {
        return err("must name a host");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return err("must not contain spaces or control characters");
    }
    if authority.contains('@') {
        return err(
            "must not contain credentials (`user:password@`): set them in `auth` (basic), which Herald \
             keeps write-only, instead of in the URL, which is shown wherever the webhook is",
        );
    }
    Ok(())
}

/// A URL with any `user:password@` replaced by `***@`, for showing. Webhooks stored before
/// credentials in URLs were refused still send them; no read shows them.
pub fn redact_url_credentials(url: &str) -> std::borrow::Cow<'_, str> {
    let Some((scheme, rest)) = url.split_once("://") else { return url.into() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[authority_end..]).into(),
        None => url.into(),
    }
}

/// `license.assigned`, `license.*` or `*`: lowercase segments of letters, digits, `_` and `-`.
pub fn validate_event_type_pattern(pattern: &str) -> Result<(), String> {
    if pattern == "*" {
        return Ok(());
    }
    let exact = pattern.strip_suffix(".*").unwrap_or(pattern);
    validate_event_type(exact).map_err(|_| {
        format!("`{pattern}` is not an event type: use segments like `license.assigned`, `license.*` or `*`")
    })
}

pub fn validate_event_type(event_type: &str) -> Result<(), String> {
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    };
    if event_type.is_empty() {
        return Err("must not be empty".into());
    }
    if event_type.len() > 200 {
        return Err("must be at most 200 characters".into());
    }
    if !event_type.split('.').all(segment_ok) {
        return Err(format!(
            "`{event_type}` is not an event type: lowercase segments of a-z, 0-9, `_` or `-`, separated by dots"
        ));
    }
    Ok(())
}

pub fn validate_event_types(types: &[String]) -> Result<(), FieldError> {
    if types.is_empty() {
        return Err(FieldError::new("event_types", "subscribe to at least one event type (or `*` for all)"));
    }
    if types.len() > MAX_EVENT_TYPES {
        return Err(FieldError::new(
            "event_types",
            format!("at most {MAX_EVENT_TYPES} event types; subscribe to a category (`license.*`) instead"),
        ));
    }
    for t in types {
        validate_event_type_pattern(t).map_err(|m| FieldError::new("event_types", m))?;
    }
    Ok(())
}

/// Does `pattern` (exact, `prefix.*` or `*`) select `event_type`?
pub fn event_type_matches(pattern: &str, event_type: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) => event_type.starts_with(prefix) && event_type.len() > prefix.len(),
        None => pattern == event_type,
    }
}

pub fn validate_timeout(ms: i32) -> Result<(), FieldError> {
    if !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&ms) {
        return Err(FieldError::new(
            "timeout_ms",
            format!("must be between {MIN_TIMEOUT_MS} and {MAX_TIMEOUT_MS} milliseconds"),
        ));
    }
    Ok(())
}

pub const MAX_RATE_LIMIT: u32 = 10_000;

/// A rate limit or burst: 1 to 10,000 requests.
pub fn validate_rate(field: &str, value: Option<u32>) -> Result<(), FieldError> {
    match value {
        Some(n) if !(1..=MAX_RATE_LIMIT).contains(&n) => {
            Err(FieldError::new(field, format!("must be between 1 and {MAX_RATE_LIMIT} requests")))
        }
        _ => Ok(()),
    }
}

pub fn validate_retry_schedule(schedule: &[u32]) -> Result<(), FieldError> {
    if schedule.is_empty() || schedule.len() > MAX_RETRY_SLOTS {
        return Err(FieldError::new("retry_schedule", format!("must have 1 to {MAX_RETRY_SLOTS} delays")));
    }
    if schedule.iter().any(|&s| s > MAX_RETRY_DELAY_SECS) {
        return Err(FieldError::new("retry_schedule", "each delay must be at most 7 days (604800 seconds)"));
    }
    Ok(())
}

const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "user-agent",
    "transfer-encoding",
    "connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-webhook-signature",
];

fn valid_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn valid_header_value(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

pub fn validate_headers(headers: &BTreeMap<String, String>) -> Result<(), FieldError> {
    if headers.len() > MAX_HEADERS {
        return Err(FieldError::new("headers", format!("at most {MAX_HEADERS} custom headers")));
    }
    for (name, value) in headers {
        if name.len() > 256 || value.len() > MAX_HEADER_VALUE_LEN {
            return Err(FieldError::new(
                "headers",
                format!("header names take at most 256 characters and values at most {MAX_HEADER_VALUE_LEN}"),
            ));
        }
        if !valid_header_name(name) {
            return Err(FieldError::new("headers", format!("`{name}` is not a valid header name")));
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(FieldError::new(
                "headers",
                format!("`{name}` is set by Herald and cannot be overridden"),
            ));
        }
        if !valid_header_value(value) {
            return Err(FieldError::new("headers", format!("the value of `{name}` must be printable ASCII")));
        }
    }
    Ok(())
}

pub const MAX_NOTIFY_EMAILS: usize = 10;

/// An address mail can be sent to: one `@` with text on both sides, a dot in the domain, no
/// spaces or control characters, at most 254 characters (RFC 5321). The mailer checks the rest.
pub fn validate_notify_emails(emails: &[String]) -> Result<(), FieldError> {
    if emails.len() > MAX_NOTIFY_EMAILS {
        return Err(FieldError::new("notify_emails", format!("at most {MAX_NOTIFY_EMAILS} addresses")));
    }
    for email in emails {
        let ok = email.len() <= 254
            && !email
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ',' | ';' | '<' | '>'))
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if !ok {
            return Err(FieldError::new("notify_emails", format!("`{email}` is not an email address")));
        }
    }
    Ok(())
}

pub fn validate_auth(auth: &WebhookAuth) -> Result<(), FieldError> {
    match auth {
        WebhookAuth::None => Ok(()),
        WebhookAuth::Basic { username, .. }
            if username.is_empty() || username.contains(':') || username.chars().any(char::is_control) =>
        {
            Err(FieldError::new("auth.username", "must not be empty nor contain `:` or control characters"))
        }
        WebhookAuth::Basic { password, .. } if password.contains('\0') || password.len() > 1024 => {
            Err(FieldError::new("auth.password", "must be at most 1024 bytes, without NUL characters"))
        }
        WebhookAuth::Basic { .. } => Ok(()),
        WebhookAuth::ApiKey { header, .. } if !valid_header_name(header) => {
            Err(FieldError::new("auth.header", format!("`{header}` is not a valid header name")))
        }
        WebhookAuth::ApiKey { value, .. } if value.is_empty() || !valid_header_value(value) => {
            Err(FieldError::new("auth.value", "must be a non-empty printable ASCII value"))
        }
        WebhookAuth::ApiKey { .. } => Ok(()),
    }
}

/// Collects every field's problem, not only the first: a form shows them all at once.
#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn check(&mut self, result: Result<(), FieldError>) {
        if let Err(e) = result {
            self.0.push(e);
        }
    }

    fn first(self) -> Result<(), FieldError> {
        self.0.into_iter().next().map_or(Ok(()), Err)
    }
}

impl WebhookCreate {
    /// Every field that is not valid, in the order of the form (empty: valid).
    pub fn problems(&self) -> Vec<FieldError> {
        self.checked().0
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        self.checked().first()
    }

    fn checked(&self) -> Problems {
        let mut p = Problems::default();
        p.check(validate_name(&self.name));
        p.check(validate_url(&self.url));
        p.check(validate_description(&self.description));
        p.check(validate_event_types(&self.event_types));
        p.check(validate_auth(&self.auth));
        p.check(validate_headers(&self.headers));
        if let Some(ms) = self.timeout_ms {
            p.check(validate_timeout(ms));
        }
        if let Some(schedule) = &self.retry_schedule {
            p.check(validate_retry_schedule(schedule));
        }
        p.check(validate_notify_emails(&self.notify_emails));
        p.check(validate_rate("rate_limit", self.rate_limit));
        p.check(validate_rate("rate_limit_burst", self.rate_limit_burst));
        p
    }
}

impl WebhookPatch {
    /// Every field that is not valid, in the order of the form (empty: valid).
    pub fn problems(&self) -> Vec<FieldError> {
        self.checked().0
    }

    pub fn validate(&self) -> Result<(), FieldError> {
        self.checked().first()
    }

    fn checked(&self) -> Problems {
        let mut p = Problems::default();
        if let Some(name) = &self.name {
            p.check(validate_name(name));
        }
        if let Some(url) = &self.url {
            p.check(validate_url(url));
        }
        if let Some(description) = &self.description {
            p.check(validate_description(description));
        }
        if let Some(types) = &self.event_types {
            p.check(validate_event_types(types));
        }
        if let Some(auth) = &self.auth {
            p.check(validate_auth(auth));
        }
        if let Some(headers) = &self.headers {
            p.check(validate_headers(headers));
        }
        if let Some(ms) = self.timeout_ms {
            p.check(validate_timeout(ms));
        }
        if let Some(Some(schedule)) = &self.retry_schedule {
            p.check(validate_retry_schedule(schedule));
        }
        if let Some(emails) = &self.notify_emails {
            p.check(validate_notify_emails(emails));
        }
        p.check(validate_rate("rate_limit", self.rate_limit.flatten()));
        p.check(validate_rate("rate_limit_burst", self.rate_limit_burst.flatten()));
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_whole_segments_only() {
        assert!(event_type_matches("*", "license.assigned"));
        assert!(event_type_matches("license.*", "license.assigned"));
        assert!(event_type_matches("license.*", "license.seat.revoked"));
        assert!(!event_type_matches("license.*", "license"));
        assert!(!event_type_matches("license.*", "licenses.assigned"));
        assert!(event_type_matches("license.assigned", "license.assigned"));
        assert!(!event_type_matches("license.assigned", "license.assigned.v2"));
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        assert!(validate_url("https://example.com/hooks").is_ok());
        assert!(validate_url("http://127.0.0.1:8080").is_ok());
        assert!(validate_url("http://[::1]:8080/x").is_ok());
        for bad in [
            "ftp://example.com",
            "example.com/hook",
            "https://",
            "https:///path",
            "http://a b.com",
            "http://alice:secret@example.com/",
            "http://token@example.com/",
        ] {
            assert_eq!(validate_url(bad).unwrap_err().field, "url", "{bad}");
        }
        assert!(validate_url("https://example.com/a@b?c=d@e").is_ok(), "an @ in the path is no credential");
    }

    #[test]
    fn notification_addresses_must_be_addresses() {
        let emails = |list: &[&str]| list.iter().map(|e| e.to_string()).collect::<Vec<_>>();
        assert!(validate_notify_emails(&emails(&["ops@example.com", "a.b+c@sub.example.org"])).is_ok());
        for bad in ["ops", "@example.com", "ops@", "ops@localhost", "a b@example.com", "a@b@c.com", "x@.com"]
        {
            assert_eq!(validate_notify_emails(&emails(&[bad])).unwrap_err().field, "notify_emails", "{bad}");
        }
        assert!(validate_notify_emails(&emails(&["a@example.com"; 11])).is_err());
    }

    #[test]
    fn credentials_in_urls_are_never_shown() {
        assert_eq!(
            redact_url_credentials("http://alice:secret@host:8080/p?q=1"),
            "http://***@host:8080/p?q=1"
        );
        assert_eq!(redact_url_credentials("https://tok@host"), "https://***@host");
        assert_eq!(redact_url_credentials("https://host/a@b"), "https://host/a@b");
        assert_eq!(redact_url_credentials("not a url"), "not a url");
    }

    #[test]
    fn event_type_patterns() {
        for ok in ["*", "license.*", "license.assigned", "user_2.created-v2"] {
            assert!(validate_event_type_pattern(ok).is_ok(), "{ok}");
        }
        for bad in ["", "License.Assigned", "license.", ".x", "license.*.x", "a b", "**"] {
            assert!(validate_event_type_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reserved_and_malformed_headers_are_refused() {
        let h = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        assert!(validate_headers(&h("X-Tenant", "acme")).is_ok());
        assert!(validate_headers(&h("Webhook-Signature", "x")).is_err());
        assert!(validate_headers(&h("Bad Header", "x")).is_err());
        assert!(validate_headers(&h("X-Ok", "line\nbreak")).is_err());
    }
}

/// How a webhook has been doing: counters updated with every attempt.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WebhookUsage {
    pub total_calls: i64,
    pub total_errors: i64,
    pub consecutive_errors: i32,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub first_failure_at: Option<DateTime<Utc>>,
    /// The receiver asked Herald to wait (429 or 503 with `Retry-After`, or 429s in a row):
    /// nothing is sent to this webhook before then.
    pub paused_until: Option<DateTime<Utc>>,
    pub pause_reason: Option<String>,
    /// Ordered delivery only: the failed delivery that holds back the rest of the line, until
    /// it is re-sent or skipped.
    pub line_blocked_by: Option<crate::models::DeliveryId>,
    /// Ordered delivery only: deliveries queued in the line (on a webhook's own page).
    pub line_waiting: Option<u64>,
}

/// What reactivating a webhook that is not active would send again with recovery: its held and
/// failed deliveries since `since` (its first failure, or when it was deactivated or stopped).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reactivation {
    pub state: WebhookState,
    pub since: DateTime<Utc>,
    pub held: u64,
    pub failed: u64,
}

/// A webhook with its usage, for lists and its own page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookWithUsage {
    pub webhook: Webhook,
    pub usage: WebhookUsage,
}
