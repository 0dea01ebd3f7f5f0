//! One HTTP request to a webhook: built, signed, sent with the webhook's timeout and without
//! following redirects, and captured (request and capped response) for the attempt log.

use std::{
    collections::BTreeMap,
    error::Error as _,
    time::{Duration, Instant},
};

use app::{
    db::{
        entities::{deliveries, events, webhooks},
        webhooks::{auth_of, headers_of},
    },
    models::{Outcome, WebhookAuth},
};
use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::{guard::Blocked, signing};

pub const USER_AGENT: &str = concat!("Herald/", env!("CARGO_PKG_VERSION"), " (webhook delivery)");
/// Shown in the attempt log instead of destination credentials and custom header values,
/// which the API treats as write-only.
pub const REDACTED: &str = "***";

/// What was sent and what came back.
#[derive(Clone, Debug)]
pub struct Sent {
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub url: String,
    pub request_headers: BTreeMap<String, String>,
    pub body: String,
    pub response: Option<Response>,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub retry_after: Option<Duration>,
}

#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub truncated: bool,
}

pub struct Request<'a> {
    pub webhook: &'a webhooks::Model,
    pub event: &'a events::Model,
    pub delivery: &'a deliveries::Model,
    pub attempt_number: i32,
}

/// Headers to send, and the same headers as the log shows them (credentials hidden).
fn headers(req: &Request<'_>, now: DateTime<Utc>) -> (HeaderMap, BTreeMap<String, String>) {
    let mut sent = Vec::<(String, String, bool)>::new(); // name, value, secret
    let msg_id = req.event.id.to_string();
    let timestamp = now.timestamp();
    let mut secrets = vec![req.webhook.secret.as_str()];
    if let (Some(previous), Some(until)) =
        (req.webhook.previous_secret.as_deref(), req.webhook.previous_secret_expires_at)
    {
        if until > now {
            secrets.push(previous);
        }
    }
    let signature = signing::signature_header(secrets, &msg_id, timestamp, req.event.payload.as_bytes());
    let mut add = |name: &str, value: String, secret: bool| sent.push((name.to_owned(), value, secret));
    add("content-type", "application/json".into(), false);
    add("user-agent", USER_AGENT.into(), false);
    add("webhook-id", msg_id, false);
    add("webhook-timestamp", timestamp.to_string(), false);
    add("webhook-signature", signature.clone(), false);
    add("x-webhook-signature", signature, false);
    add("x-herald-event-type", req.event.event_type.clone(), false);
    add("x-herald-delivery-id", req.delivery.id.to_string(), false);
    add("x-herald-attempt", req.attempt_number.to_string(), false);
    if let Some(traceparent) = crate::traces::traceparent() {
        add("traceparent", traceparent, false);
    }
    match auth_of(req.webhook) {
        WebhookAuth::None => {}
        WebhookAuth::Basic { username, password } => {
            add("authorization", format!("Basic {}", STANDARD.encode(format!("{username}:{password}"))), true)
        }
        WebhookAuth::ApiKey { header, value } => add(&header.to_ascii_lowercase(), value, true),
    }
    for (name, value) in headers_of(req.webhook) {
        add(&name.to_ascii_lowercase(), value, true);
    }
    let mut map = HeaderMap::new();
    let mut shown = BTreeMap::new();
    for (name, value, secret) in sent {
        // Names and values were validated when the webhook was saved.
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
            map.insert(n, v);
        }
        shown.insert(name, if secret { REDACTED.to_owned() } else { value });
    }
    (map, shown)
}

/// Sends the request. Never fails: every failure is an outcome of the attempt.
pub async fn send(
    client: &reqwest::Client,
    guard: &super::guard::Guard,
    req: Request<'_>,
    body_cap: usize,
) -> Sent {
    let started_at = app::db::now();
    let clock = Instant::now();
    let (header_map, request_headers) = headers(&req, started_at);
    let mut sent = Sent {
        started_at,
        duration_ms: 0,
        url: req.webhook.url.clone(),
        request_headers,
        body: req.event.payload.clone(),
        response: None,
        outcome: Outcome::ConnectError,
        error: None,
        retry_after: None,
    };
    let host = url::Url::parse(&req.webhook.url).ok().and_then(|u| u.host_str().map(str::to_owned));
    if let Some(Err(blocked)) = host.as_deref().map(|h| guard.check_literal(h)) {
        sent.outcome = Outcome::Blocked;
        sent.error = Some(blocked.to_string());
        return sent;
    }
    let timeout = Duration::from_millis(u64::try_from(req.webhook.timeout_ms).unwrap_or(15_000));
    let result = client
        .post(&req.webhook.url)
        .headers(header_map)
        .body(req.event.payload.clone())
        .timeout(timeout)
        .send()
        .await;
    match result {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            sent.retry_after =
                response.headers().get("retry-after").and_then(|v| parse_retry_after(v, started_at));
            let mut body = Vec::new();
            let mut truncated = false;
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        let room = body_cap.saturating_sub(body.len());
                        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                        if chunk.len() > room {
                            truncated = true;
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        // The status line arrived, so the receiver did answer; keep what came.
                        sent.error = Some(format!("reading the response body: {}", chain(&e)));
                        break;
                    }
                }
            }
            sent.outcome = match status {
                200..=299 => Outcome::Success,
                300..=399 => Outcome::Redirect,
                400..=499 => Outcome::ClientError,
                _ => Outcome::ServerError,
            };
            sent.response = Some(Response {
                status,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
                truncated,
            });
        }
        Err(e) => {
            sent.outcome = classify(&e);
            sent.error = Some(if sent.outcome == Outcome::Timeout {
                format!("no complete answer within {} ms", req.webhook.timeout_ms)
            } else {
                chain(&e)
            });
        }
    }
    sent.duration_ms = i32::try_from(clock.elapsed().as_millis()).unwrap_or(i32::MAX);
    sent
}

/// The error and its causes, on one line.
fn chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text.replace(&format!(" for url ({})", e.url().map(|u| u.as_str()).unwrap_or_default()), "")
}

fn classify(e: &reqwest::Error) -> Outcome {
    let mut source = e.source();
    while let Some(s) = source {
        if s.downcast_ref::<Blocked>().is_some() {
            return Outcome::Blocked;
        }
        source = s.source();
    }
    if e.is_timeout() {
        return Outcome::Timeout;
    }
    let text = chain(e).to_ascii_lowercase();
    if ["certificate", "tls", "handshake", "corrupt message", "invalidcontenttype", "alert"]
        .iter()
        .any(|m| text.contains(m))
    {
        return Outcome::TlsError;
    }
    Outcome::ConnectError
}

/// `Retry-After: <seconds>` or `Retry-After: <HTTP date>`.
fn parse_retry_after(value: &HeaderValue, now: DateTime<Utc>) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(text).ok()?.with_timezone(&Utc);
    (at - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(parse_retry_after(&HeaderValue::from_static("120"), now), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("Mon, 23 Nov 2026 10:01:00 GMT"), now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after(&HeaderValue::from_static("soon"), now), None);
        assert_eq!(parse_retry_after(&HeaderValue::from_static("Mon, 23 Nov 2026 09:00:00 GMT"), now), None);
    }
}
