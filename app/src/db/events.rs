//! Events: accepted, committed, then fanned out as one delivery per subscribed webhook.

use sea_orm::{
    entity::prelude::*, ActiveValue::Set, Condition, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    SqlErr, TransactionSession, TransactionTrait,
};

use super::deliveries::{decode_cursor, encode_cursor, ListError};
use super::{
    entities::{deliveries, events, webhooks},
    now,
    webhooks::event_types_of,
};
use crate::models::{
    category_of, event_type_matches, DeliveryId, DeliveryStatus, Event, EventAccepted, EventId, Page,
    WebhookState,
};

/// Stores an event and its deliveries in one transaction. A repeated idempotency key returns the
/// original event and stores nothing, also when two requests with the same key race.
pub async fn ingest<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    event_type: &str,
    payload: String,
    idempotency_key: Option<String>,
) -> Result<EventAccepted, DbErr> {
    if let Some(key) = &idempotency_key {
        if let Some(existing) = find_by_idempotency_key(db, key).await? {
            return duplicate_of(db, existing).await;
        }
    }
    match insert_with_deliveries(db, event_type, payload, idempotency_key.clone()).await {
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            let key = idempotency_key.ok_or(e)?;
            let existing = find_by_idempotency_key(db, &key).await?.ok_or_else(|| {
                DbErr::Custom(format!("idempotency key {key} conflicted but is not stored"))
            })?;
            duplicate_of(db, existing).await
        }
        other => other,
    }
}

async fn insert_with_deliveries<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    event_type: &str,
    payload: String,
    idempotency_key: Option<String>,
) -> Result<EventAccepted, DbErr> {
    let at = now();
    let event_id = EventId::new();
    let category = category_of(event_type).to_owned();
    let txn = db.begin().await?;
    events::ActiveModel {
        id: Set(event_id.0),
        event_type: Set(event_type.to_owned()),
        category: Set(category.clone()),
        payload: Set(payload),
        idempotency_key: Set(idempotency_key),
        created_at: Set(at),
    }
    .insert(&txn)
    .await?;

    let subscribed: Vec<webhooks::Model> = webhooks::Entity::find()
        .all(&txn)
        .await?
        .into_iter()
        .filter(|w| event_types_of(w).iter().any(|p| event_type_matches(p, event_type)))
        .collect();
    let count = subscribed.len() as u64;
    let rows: Vec<deliveries::ActiveModel> = subscribed
        .iter()
        .map(|w| {
            let deliverable = w.enabled && w.state == WebhookState::Active;
            deliveries::ActiveModel {
                id: Set(DeliveryId::new().0),
                event_id: Set(event_id.0),
                webhook_id: Set(w.id),
                event_type: Set(event_type.to_owned()),
                category: Set(category.clone()),
                status: Set(if deliverable { DeliveryStatus::Pending } else { DeliveryStatus::Held }),
                attempt_count: Set(0),
                quick_retry_count: Set(0),
                next_attempt_at: Set(deliverable.then_some(at)),
                last_attempt_at: Set(None),
                last_response_code: Set(None),
                last_outcome: Set(None),
                last_duration_ms: Set(None),
                lease_owner: Set(None),
                lease_expires_at: Set(None),
                created_at: Set(at),
                updated_at: Set(at),
                retry_slot: Set(0),
                pending_trigger: Set(None),
            }
        })
        .collect();
    // Bounded chunks keep each INSERT under SQLite's bound-parameter limit.
    for chunk in rows.chunks(500) {
        deliveries::Entity::insert_many(chunk.to_vec()).exec(&txn).await?;
    }
    txn.commit().await?;
    Ok(EventAccepted {
        id: event_id,
        event_type: event_type.to_owned(),
        created_at: at,
        deliveries: count,
        duplicate: false,
    })
}

pub async fn find_by_idempotency_key(
    db: &impl ConnectionTrait,
    key: &str,
) -> Result<Option<events::Model>, DbErr> {
    events::Entity::find().filter(events::Column::IdempotencyKey.eq(key)).one(db).await
}

async fn duplicate_of(db: &impl ConnectionTrait, event: events::Model) -> Result<EventAccepted, DbErr> {
    let deliveries = deliveries::Entity::find()
        .filter(deliveries::Column::EventId.eq(event.id))
        .select_only()
        .column(deliveries::Column::Id)
        .count(db)
        .await?;
    Ok(EventAccepted {
        id: EventId(event.id),
        event_type: event.event_type,
        created_at: event.created_at,
        deliveries,
        duplicate: true,
    })
}

/// Events in a time window, oldest first, for receivers recovering what they missed.
/// Keyset-paginated on (created_at, id): rows arriving meanwhile never shift a page.
pub async fn list(
    db: &DatabaseConnection,
    filter: &EventFilter,
    cursor: Option<&str>,
    limit: u64,
) -> Result<Page<Event>, ListError> {
    let mut select = events::Entity::find();
    if let Some(since) = filter.since {
        select = select.filter(events::Column::CreatedAt.gte(since));
    }
    if let Some(until) = filter.until {
        select = select.filter(events::Column::CreatedAt.lt(until));
    }
    if let Some(event_type) = filter.event_type.as_deref().filter(|t| !t.is_empty()) {
        select = select.filter(events::Column::EventType.eq(event_type));
    }
    if let Some(cursor) = cursor.filter(|c| !c.is_empty()) {
        let (at, id) = decode_cursor(cursor).ok_or(ListError::BadCursor)?;
        select = select.filter(
            Condition::any()
                .add(events::Column::CreatedAt.gt(at))
                .add(Condition::all().add(events::Column::CreatedAt.eq(at)).add(events::Column::Id.gt(id))),
        );
    }
    let rows = select
        .order_by_asc(events::Column::CreatedAt)
        .order_by_asc(events::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let (rows, next_cursor) = super::split_page(rows, limit, |e| encode_cursor(e.created_at, e.id));
    let items = rows
        .into_iter()
        .map(|e| Event {
            id: EventId(e.id),
            payload: serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null),
            event_type: e.event_type,
            category: e.category,
            idempotency_key: e.idempotency_key,
            created_at: e.created_at,
        })
        .collect();
    Ok(Page { items, next_cursor })
}

#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    pub event_type: Option<String>,
}
