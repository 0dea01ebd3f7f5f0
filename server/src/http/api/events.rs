//! `/api/v1/events`: accept an event, commit it, fan it out; list events for recovery.

use app::{
    db,
    models::{validate_event_type, EventAccepted},
    state::AppState,
};
use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::http::problem::{check_limit, ApiQuery, Problem, NUL_REFUSED};

const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// A payload is delivered byte for byte, but also read back (events API, delivery API, admin
/// app) through a JSON parser. One that parser cannot read would be accepted and then shown as
/// `null`: lost to the people recovering from a failure. Refused at the door instead: nesting
/// deeper than serde_json's 128 levels, and lone UTF-16 surrogates (`"\ud800"`), which no JSON
/// reader can turn into text.
fn check_payload_readable(payload: &str) -> Result<(), Problem> {
    match serde_json::from_str::<serde_json::Value>(payload) {
        Ok(_) => Ok(()),
        Err(e) => {
            let why = if e.to_string().contains("recursion limit") {
                "nests deeper than 128 levels of arrays and objects".to_owned()
            } else {
                format!("cannot be read back faithfully ({e})")
            };
            Err(Problem::invalid("payload", format!("payload: {why}")))
        }
    }
}

/// The same idempotency key with another request is a client bug that would otherwise be
/// silent (the second event never exists): refused, as Stripe and the IETF draft on
/// `Idempotency-Key` do. The same JSON with other whitespace or key order is the same request.
async fn check_same_request(
    state: &AppState,
    accepted: &EventAccepted,
    event_type: &str,
    payload: &str,
) -> Result<(), Problem> {
    let Some(original) = db::events::find(&state.db, accepted.id).await? else { return Ok(()) };
    let same_payload = original.payload == payload
        || serde_json::from_str::<serde_json::Value>(&original.payload).ok()
            == serde_json::from_str::<serde_json::Value>(payload).ok();
    if original.event_type == event_type && same_payload {
        return Ok(());
    }
    Err(Problem::invalid(
        "idempotency_key",
        format!(
            "idempotency_key: this key was used for event {} with a different type or payload; \
             use a new key for a new event",
            accepted.id
        ),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncomingEvent<'a> {
    #[serde(rename = "type")]
    event_type: String,
    /// Kept as the exact bytes received: what receivers get is what the integrator sent.
    #[serde(borrow)]
    payload: &'a RawValue,
    idempotency_key: Option<String>,
}

#[utoipa::path(post, operation_id = "create_event", path = "/events", tag = "events", request_body = super::openapi::EventInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same as `idempotency_key`")),
    responses((status = 202, description = "Accepted", body = EventAccepted), (status = 413, description = "Larger than HERALD_MAX_PAYLOAD_BYTES", body = Problem), (status = 415, description = "Not sent as JSON", body = Problem), (status = 422, description = "Invalid input; `field` names what is wrong", body = Problem)))]
#[tracing::instrument(name = "ingest", skip_all, fields(event_id = tracing::field::Empty, event_type = tracing::field::Empty, deliveries = tracing::field::Empty, duplicate = tracing::field::Empty))]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let limit = state.api.max_payload_bytes;
    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if !content_type.is_some_and(|ct| ct.starts_with("application/json") || ct.contains("+json")) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "Send the event as JSON with `Content-Type: application/json`.",
        ));
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        Problem::too_large(format!(
            "The event is larger than the limit of {limit} bytes (HERALD_MAX_PAYLOAD_BYTES)."
        ))
    })?;
    let incoming: IncomingEvent<'_> =
        serde_json::from_slice(&bytes).map_err(|e| Problem::invalid_json(&e.to_string()))?;
    validate_event_type(&incoming.event_type).map_err(|m| Problem::invalid("type", format!("type: {m}")))?;
    let payload = incoming.payload.get();
    check_payload_readable(payload)?;

    let header_key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().map(str::to_owned))
        .transpose()
        .map_err(|_| Problem::invalid("Idempotency-Key", "the Idempotency-Key header must be ASCII"))?;
    let key = match (incoming.idempotency_key, header_key) {
        (Some(a), Some(b)) if a != b => {
            return Err(Problem::invalid(
                "idempotency_key",
                "the body's idempotency_key and the Idempotency-Key header differ",
            ))
        }
        (a, b) => a.or(b),
    };
    if let Some(k) = &key {
        if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY_LEN {
            return Err(Problem::invalid(
                "idempotency_key",
                format!("idempotency_key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"),
            ));
        }
        if k.contains('\0') {
            return Err(Problem::invalid("idempotency_key", format!("idempotency_key: {NUL_REFUSED}")));
        }
    }

    let event = db::events::NewEvent {
        event_type: incoming.event_type,
        payload: payload.to_owned(),
        idempotency_key: key,
    };
    let (sent_type, sent_payload) = (event.event_type.clone(), event.payload.clone());
    let accepted: EventAccepted = state.ingest.ingest(event).await?;
    if accepted.duplicate {
        check_same_request(&state, &accepted, &sent_type, &sent_payload).await?;
    }
    if accepted.deliveries > 0 && !accepted.duplicate && !state.ingest.hands_off() {
        state.wakeup.notify_one();
    }
    let duplicate = accepted.duplicate;
    let span = tracing::Span::current();
    span.record("event_id", tracing::field::display(&accepted.id));
    span.record("event_type", sent_type.as_str());
    span.record("deliveries", accepted.deliveries);
    span.record("duplicate", duplicate);
    let mut response = (StatusCode::ACCEPTED, Json(accepted)).into_response();
    if duplicate {
        response.extensions_mut().insert(crate::metrics::DuplicateEvent);
    }
    Ok(response)
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    since: Option<chrono::DateTime<chrono::Utc>>,
    until: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    cursor: Option<String>,
    /// Page size, 1 to 250.
    #[param(minimum = 1, maximum = 250)]
    limit: Option<u64>,
}

/// `GET /api/v1/events`: events in a window, oldest first, for recovering what a receiver missed.
#[utoipa::path(get, operation_id = "list_events", path = "/events", tag = "events", params(ListParams),
    responses((status = 200, description = "OK", body = app::models::Page<app::models::Event>), (status = 422, description = "Invalid input; `field` names what is wrong", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<app::models::Page<app::models::Event>>, Problem> {
    let limit = check_limit(params.limit, 100, db::deliveries::MAX_PAGE_SIZE)?;
    let filter =
        db::events::EventFilter { since: params.since, until: params.until, event_type: params.event_type };
    Ok(Json(db::events::list(&state.db, &filter, params.cursor.as_deref(), limit).await?))
}
