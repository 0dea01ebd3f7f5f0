use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use sea_orm::{entity::prelude::*, Condition, QueryFilter, QueryOrder, QuerySelect};

use super::entities::{attempts, deliveries, events, webhooks};
use crate::models::{
    Attempt, AttemptId, AttemptRequest, AttemptResponse, DeliveryDetail, DeliveryId, DeliveryQuery,
    DeliveryRow, EventId, Page, WebhookId,
};

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 250;

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("cursor: not a cursor this list produced")]
    BadCursor,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Position after the last row of a page: by creation time, then id.
pub(crate) fn encode_cursor(created_at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{id}", created_at.timestamp_micros()))
}

pub(crate) fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (micros, id) = raw.split_once('|')?;
    Some((DateTime::from_timestamp_micros(micros.parse().ok()?)?, Uuid::parse_str(id).ok()?))
}

/// The delivery log: newest first, filtered, keyset-paginated.
pub async fn list(db: &DatabaseConnection, query: &DeliveryQuery) -> Result<Page<DeliveryRow>, ListError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE);
    let mut select = deliveries::Entity::find().find_also_related(webhooks::Entity);
    if let Some(webhook_id) = query.webhook_id {
        select = select.filter(deliveries::Column::WebhookId.eq(webhook_id.0));
    }
    if let Some(status) = query.status {
        select = select.filter(deliveries::Column::Status.eq(status));
    }
    if let Some(event_type) = query.event_type.as_deref().filter(|t| !t.is_empty()) {
        select = select.filter(deliveries::Column::EventType.eq(event_type));
    }
    if let Some(since) = query.since {
        select = select.filter(deliveries::Column::CreatedAt.gte(since));
    }
    if let Some(until) = query.until {
        select = select.filter(deliveries::Column::CreatedAt.lt(until));
    }
    if let Some(category) = query.category.as_deref().filter(|c| !c.is_empty()) {
        select = select.filter(deliveries::Column::Category.eq(category));
    }
    if let Some(q) = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let pattern = format!("%{}%", q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        select = select.filter(
            Condition::any()
                .add(webhooks::Column::Name.like(&pattern))
                .add(webhooks::Column::Url.like(&pattern))
                .add(deliveries::Column::EventType.like(&pattern)),
        );
    }
    if let Some(cursor) = query.cursor.as_deref().filter(|c| !c.is_empty()) {
        let (at, id) = decode_cursor(cursor).ok_or(ListError::BadCursor)?;
        select = select.filter(Condition::any().add(deliveries::Column::CreatedAt.lt(at)).add(
            Condition::all().add(deliveries::Column::CreatedAt.eq(at)).add(deliveries::Column::Id.lt(id)),
        ));
    }
    let rows = select
        .order_by_desc(deliveries::Column::CreatedAt)
        .order_by_desc(deliveries::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let (rows, next_cursor) = super::split_page(rows, limit, |(d, _)| encode_cursor(d.created_at, d.id));
    let items = rows.into_iter().map(|(d, w)| row(d, w)).collect();
    Ok(Page { items, next_cursor })
}

fn row(d: deliveries::Model, w: Option<webhooks::Model>) -> DeliveryRow {
    let (webhook_name, webhook_url) = w.map(|w| (w.name, w.url)).unwrap_or_default();
    DeliveryRow {
        id: DeliveryId(d.id),
        event_id: EventId(d.event_id),
        webhook_id: WebhookId(d.webhook_id),
        webhook_name,
        webhook_url,
        event_type: d.event_type,
        category: d.category,
        status: d.status,
        attempt_count: d.attempt_count,
        last_response_code: d.last_response_code,
        last_outcome: d.last_outcome,
        last_attempt_at: d.last_attempt_at,
        last_duration_ms: d.last_duration_ms,
        created_at: d.created_at,
    }
}

fn header_map(json: Option<&str>) -> std::collections::BTreeMap<String, String> {
    json.and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default()
}

impl From<attempts::Model> for Attempt {
    fn from(a: attempts::Model) -> Self {
        Attempt {
            id: AttemptId(a.id),
            attempt_number: a.attempt_number,
            trigger: a.trigger,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            request: AttemptRequest {
                url: a.request_url,
                method: a.request_method,
                headers: header_map(Some(&a.request_headers)),
                body: a.request_body,
            },
            response: a.response_status.map(|status| AttemptResponse {
                status,
                headers: header_map(a.response_headers.as_deref()),
                body: a.response_body,
                body_truncated: a.response_body_truncated,
            }),
            outcome: a.outcome,
            error: a.error,
        }
    }
}

/// One delivery with its payload and attempts.
pub async fn detail(db: &DatabaseConnection, id: DeliveryId) -> Result<Option<DeliveryDetail>, DbErr> {
    let Some((delivery, webhook)) =
        deliveries::Entity::find_by_id(id.0).find_also_related(webhooks::Entity).one(db).await?
    else {
        return Ok(None);
    };
    let payload = events::Entity::find_by_id(delivery.event_id)
        .one(db)
        .await?
        .and_then(|e| serde_json::from_str(&e.payload).ok())
        .unwrap_or(serde_json::Value::Null);
    let attempts = attempts::Entity::find()
        .filter(attempts::Column::DeliveryId.eq(delivery.id))
        .order_by_asc(attempts::Column::AttemptNumber)
        .all(db)
        .await?
        .into_iter()
        .map(Attempt::from)
        .collect();
    let next_attempt_at = delivery.next_attempt_at;
    Ok(Some(DeliveryDetail { delivery: row(delivery, webhook), next_attempt_at, payload, attempts }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let at = DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap();
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(at, id)), Some((at, id)));
        assert_eq!(decode_cursor("not-a-cursor"), None);
    }
}
