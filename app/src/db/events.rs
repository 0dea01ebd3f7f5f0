//! Events: accepted, committed, then fanned out as one delivery per subscribed webhook.

use sea_orm::{
    entity::prelude::*, ActiveValue::Set, Condition, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    SqlErr, TransactionSession, TransactionTrait, TryIntoModel,
};

use super::deliveries::{decode_cursor, encode_cursor, ListError};
use super::{
    entities::{deliveries, events, webhook_usage, webhooks},
    now,
    webhooks::event_types_of,
};
use crate::models::{
    category_of, event_type_matches, DeliveryId, DeliveryStatus, Event, EventAccepted, EventId, Page,
    WebhookState,
};

/// An event as the API accepted it, before it is stored.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub event_type: String,
    /// The JSON payload exactly as it was sent.
    pub payload: String,
    pub idempotency_key: Option<String>,
}

/// Stores an event and its deliveries in one transaction. A repeated idempotency key returns the
/// original event and stores nothing, also when two requests with the same key race.
pub async fn ingest<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    event: NewEvent,
) -> Result<EventAccepted, DbErr> {
    match ingest_many(db, std::slice::from_ref(&event)).await {
        Ok(mut accepted) => Ok(accepted.remove(0)),
        // Another request stored the same key between our check and our insert.
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            let key = event.idempotency_key.ok_or(e)?;
            let existing = find_by_idempotency_key(db, &key).await?.ok_or_else(|| {
                DbErr::Custom(format!("idempotency key {key} conflicted but is not stored"))
            })?;
            duplicate_of(db, existing).await
        }
        Err(e) => Err(e),
    }
}

/// Stores a batch of events and their deliveries in one transaction (multi-row inserts, the
/// webhooks read once), answering for each event in order. An idempotency key already stored,
/// or repeated within the batch, answers the first event with that key and stores nothing.
/// Fails as a whole, for example when a concurrent request stored one of the keys meanwhile;
/// `ingest` then settles that event alone.
pub async fn ingest_many<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    batch: &[NewEvent],
) -> Result<Vec<EventAccepted>, DbErr> {
    Ok(ingest_batch(db, batch, None).await?.0)
}

/// This process's delivery engine as the ingest sees it. It takes new deliveries straight from
/// the commit that stores them: they are written already leased to it, in the same transaction,
/// and handed over once committed, so the common case (a fresh event to a healthy webhook) needs
/// no claim and no second write. It takes only what fits its lane of each webhook; the rest is
/// stored unleased, for the claim.
pub trait HandOff: Send + Sync {
    /// Reserves room for up to `wanted` new deliveries to `webhook` (with its usage row, read in
    /// the ingest's transaction); answers how many it takes, 0 when the claim should have them.
    fn reserve(
        &self,
        webhook: &webhooks::Model,
        usage: Option<&webhook_usage::Model>,
        wanted: usize,
    ) -> usize;
    /// The lease a delivery it takes is written with: its owner, and when it expires.
    fn lease(&self, webhook: &webhooks::Model, at: DateTimeUtc) -> (String, DateTimeUtc);
    /// After the commit: the deliveries it reserved, now stored and leased to it; `unleased`:
    /// others were stored for the claim.
    fn hand(&self, handed: Vec<Handed>, unleased: bool);
    /// The transaction did not commit: these reservations (webhook, count) are void.
    fn cancel(&self, reserved: &[(Uuid, usize)]);
}

/// A new delivery handed to the engine, with what sending it needs.
#[derive(Clone, Debug)]
pub struct Handed {
    pub delivery: deliveries::Model,
    pub webhook: webhooks::Model,
    pub event: events::Model,
}

/// Reservations made for one ingest transaction: void unless the transaction commits (a failed
/// statement, a failed commit, or the request being dropped midway all cancel them).
struct Reserved<'a> {
    hand_off: &'a dyn HandOff,
    held: Vec<(Uuid, usize)>,
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        if !self.held.is_empty() {
            self.hand_off.cancel(&self.held);
        }
    }
}

/// `ingest_many`, offering the new deliveries to `hand_off`: answers also what it took, and
/// whether any delivery was stored unleased (for the claim).
pub async fn ingest_batch<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    batch: &[NewEvent],
    hand_off: Option<&dyn HandOff>,
) -> Result<(Vec<EventAccepted>, Vec<Handed>, bool), DbErr> {
    let at = now();
    let txn = super::begin_write(db).await?;
    let keys: Vec<&str> = batch.iter().filter_map(|e| e.idempotency_key.as_deref()).collect();
    let mut stored = std::collections::HashMap::new();
    for chunk in super::statement_chunks(txn.get_database_backend(), &keys) {
        for event in events::Entity::find()
            .filter(events::Column::IdempotencyKey.is_in(chunk.to_vec()))
            .all(&txn)
            .await?
        {
            let key = event.idempotency_key.clone().unwrap_or_default();
            stored.insert(key, event);
        }
    }
    let webhooks: Vec<webhooks::Model> = webhooks::Entity::find().all(&txn).await?;

    let mut answers: Vec<EventAccepted> = Vec::with_capacity(batch.len());
    let mut first_with_key: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut event_rows = Vec::new();
    let mut delivery_rows = Vec::new();
    for event in batch {
        if let Some(key) = event.idempotency_key.as_deref() {
            if let Some(original) = stored.remove(key) {
                answers.push(duplicate_of(&txn, original).await?);
                first_with_key.insert(key, answers.len() - 1);
                continue;
            }
            if let Some(&i) = first_with_key.get(key) {
                answers.push(EventAccepted { duplicate: true, ..answers[i].clone() });
                continue;
            }
            first_with_key.insert(key, answers.len());
        }
        let event_id = EventId::new();
        let category = category_of(&event.event_type).to_owned();
        let mut deliveries = 0;
        for w in webhooks
            .iter()
            .filter(|w| event_types_of(w).iter().any(|p| event_type_matches(p, &event.event_type)))
        {
            delivery_rows.push(new_delivery(event_id, &event.event_type, &category, w, at));
            deliveries += 1;
        }
        event_rows.push(events::ActiveModel {
            id: Set(event_id.0),
            event_type: Set(event.event_type.clone()),
            category: Set(category),
            payload: Set(event.payload.clone()),
            idempotency_key: Set(event.idempotency_key.clone()),
            created_at: Set(at),
        });
        answers.push(EventAccepted {
            id: event_id,
            event_type: event.event_type.clone(),
            created_at: at,
            deliveries,
            duplicate: false,
        });
    }
    // Concurrent batches (PostgreSQL has several writers) lock idempotency keys in one order,
    // so two batches holding the same keys wait for each other instead of deadlocking.
    event_rows.sort_by(|a, b| a.idempotency_key.as_ref().cmp(b.idempotency_key.as_ref()));
    for chunk in super::statement_chunks(txn.get_database_backend(), &event_rows) {
        events::Entity::insert_many(chunk.to_vec()).exec_without_returning(&txn).await?;
    }
    place_in_lines(&txn, &webhooks, &mut delivery_rows).await?;
    let mut reserved = None;
    let mut leased = Vec::new();
    if let Some(hand_off) = hand_off.filter(|_| !delivery_rows.is_empty()) {
        let r = reserved.insert(Reserved { hand_off, held: Vec::new() });
        leased = lease_new(&txn, r, &webhooks, &mut delivery_rows, at).await?;
    }
    let unleased = leased.len() < delivery_rows.len();
    for chunk in super::statement_chunks(txn.get_database_backend(), &delivery_rows) {
        deliveries::Entity::insert_many(chunk.to_vec()).exec_without_returning(&txn).await?;
    }
    txn.commit().await?;
    let mut handed = Vec::with_capacity(leased.len());
    if let Some(mut r) = reserved {
        r.held.clear(); // committed: no longer void
        let webhooks: std::collections::HashMap<Uuid, &webhooks::Model> =
            webhooks.iter().map(|w| (w.id, w)).collect();
        let events: std::collections::HashMap<Uuid, &events::ActiveModel> =
            event_rows.iter().filter_map(|e| Some((*e.id.try_as_ref()?, e))).collect();
        for i in leased {
            let row = delivery_rows[i].clone();
            let (Ok(delivery), Some(webhook)) = (
                row.try_into_model(),
                delivery_rows[i].webhook_id.try_as_ref().and_then(|w| webhooks.get(w)),
            ) else {
                continue; // cannot happen: every column is set; its lease then expires
            };
            let Some(Ok(event)) = events.get(&delivery.event_id).map(|e| (*e).clone().try_into_model())
            else {
                continue;
            };
            handed.push(Handed { delivery, webhook: (*webhook).clone(), event });
        }
    }
    Ok((answers, handed, unleased))
}

/// Offers the new deliveries to the engine, webhook by webhook, the oldest first, and writes
/// the lease on those it takes. Answers their indexes in `rows`. Reads each webhook's usage
/// (failing, paused) in the transaction, so the engine decides on what is stored now.
async fn lease_new(
    txn: &impl ConnectionTrait,
    reserved: &mut Reserved<'_>,
    webhooks: &[webhooks::Model],
    rows: &mut [deliveries::ActiveModel],
    at: DateTimeUtc,
) -> Result<Vec<usize>, DbErr> {
    let mut per_webhook: std::collections::HashMap<Uuid, Vec<usize>> = std::collections::HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let due = matches!(row.status.try_as_ref(), Some(DeliveryStatus::Pending))
            && matches!(row.line_seq.try_as_ref(), Some(None));
        if let (true, Some(webhook_id)) = (due, row.webhook_id.try_as_ref()) {
            per_webhook.entry(*webhook_id).or_default().push(i);
        }
    }
    if per_webhook.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = per_webhook.keys().copied().collect();
    let usage: std::collections::HashMap<Uuid, webhook_usage::Model> = webhook_usage::Entity::find()
        .filter(webhook_usage::Column::WebhookId.is_in(ids))
        .all(txn)
        .await?
        .into_iter()
        .map(|u| (u.webhook_id, u))
        .collect();
    let mut leased = Vec::new();
    for w in webhooks {
        let Some(indexes) = per_webhook.get(&w.id) else { continue };
        let granted = reserved.hand_off.reserve(w, usage.get(&w.id), indexes.len());
        if granted == 0 {
            continue;
        }
        reserved.held.push((w.id, granted));
        let (owner, expires) = reserved.hand_off.lease(w, at);
        for &i in &indexes[..granted.min(indexes.len())] {
            rows[i].lease_owner = Set(Some(owner.clone()));
            rows[i].lease_expires_at = Set(Some(expires));
            leased.push(i);
        }
    }
    Ok(leased)
}

/// A test event for one webhook (the admin app's "Send test event"): stored and delivered like any
/// other, to that webhook alone, whatever it subscribes to. Answers its delivery.
pub async fn send_test(
    db: &DatabaseConnection,
    w: &webhooks::Model,
    sent_by: &str,
) -> Result<DeliveryId, DbErr> {
    let at = now();
    let event_id = EventId::new();
    let event_type = "herald.test";
    let payload = serde_json::json!({
        "type": event_type,
        "webhook_id": w.id,
        "webhook": w.name,
        "sent_by": sent_by,
        "sent_at": at,
        "message": "A test event from Herald: if you can read this, the webhook works.",
    });
    let txn = super::begin_write(db).await?;
    events::ActiveModel {
        id: Set(event_id.0),
        event_type: Set(event_type.into()),
        category: Set(category_of(event_type).into()),
        payload: Set(payload.to_string()),
        idempotency_key: Set(None),
        created_at: Set(at),
    }
    .insert(&txn)
    .await?;
    let mut rows = [new_delivery(event_id, event_type, category_of(event_type), w, at)];
    place_in_lines(&txn, std::slice::from_ref(w), &mut rows).await?;
    let [row] = rows;
    let delivery = row.insert(&txn).await?;
    txn.commit().await?;
    Ok(DeliveryId(delivery.id))
}

/// Gives the new deliveries of ordered webhooks their places in their lines, in the order of
/// the batch (the order the events arrived in). Nothing to do, and no statement, when no
/// webhook is ordered.
async fn place_in_lines(
    txn: &impl ConnectionTrait,
    webhooks: &[webhooks::Model],
    rows: &mut [deliveries::ActiveModel],
) -> Result<(), DbErr> {
    let ordered: std::collections::HashSet<uuid::Uuid> =
        webhooks.iter().filter(|w| w.ordered_since.is_some()).map(|w| w.id).collect();
    if ordered.is_empty() {
        return Ok(());
    }
    let mut counts = std::collections::BTreeMap::new();
    for row in rows.iter() {
        if let Some(webhook_id) = row.webhook_id.try_as_ref().filter(|id| ordered.contains(id)) {
            *counts.entry(*webhook_id).or_insert(0) += 1;
        }
    }
    if counts.is_empty() {
        return Ok(());
    }
    let mut next = super::lines::reserve(txn, &counts).await?;
    for row in rows.iter_mut() {
        let place = row.webhook_id.try_as_ref().and_then(|id| next.get_mut(id));
        if let Some(place) = place {
            row.line_seq = Set(Some(*place));
            *place += 1;
        }
    }
    Ok(())
}

/// The most events one ingest transaction takes.
const INGEST_BATCH: usize = 256;

/// Group commit waits for no more once a batch holds this many events: each may fan out to
/// many deliveries, and an ingest that outruns the engine leaves them to the claim (measured
/// with 32: fan-out to 10 delivered 4,183-4,977/s instead of 4,756-5,548/s, peak RSS +40 MiB).
const GATHER_EVENTS: usize = 8;

/// Group commit for the events API: requests hand their events to one writer task, which
/// stores whatever arrived meanwhile in one transaction (`ingest_many`). Under load one commit
/// serves many requests; an event arriving alone is written at once. Each request still gets
/// its own answer, and its own error.
#[derive(Clone)]
pub struct IngestQueue {
    queue: tokio::sync::mpsc::Sender<Waiting>,
    health: super::health::DbHealth,
    /// This process's engine, once it runs: new deliveries go to it straight from the commit.
    hand_off: HandOffSlot,
}

type HandOffSlot = std::sync::Arc<std::sync::OnceLock<std::sync::Arc<dyn HandOff>>>;

impl std::fmt::Debug for IngestQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestQueue").field("hands_off", &self.hands_off()).finish()
    }
}

#[derive(Debug)]
struct Waiting {
    event: NewEvent,
    answer: tokio::sync::oneshot::Sender<Result<EventAccepted, DbErr>>,
}

impl IngestQueue {
    /// Starts the writers; they stop when the last clone of the queue is dropped. SQLite has
    /// one writer (it writes one transaction at a time anyway); PostgreSQL has four, so one
    /// batch is written while the next waits for its commit to reach the disk.
    ///
    /// An answer is `Ok` only once the transaction holding the event has committed. While the
    /// database is unavailable (`health`), events are refused at once, never queued.
    ///
    /// A writer that finds few events waits up to `group_commit` for more (`gather::Gather`).
    pub fn start(
        db: DatabaseConnection,
        health: super::health::DbHealth,
        group_commit: std::time::Duration,
    ) -> Self {
        let (queue, waiting) = tokio::sync::mpsc::channel(INGEST_BATCH * 4);
        // The writers share one gathering: its rate is the queue's, not one writer's.
        let gather = super::gather::Gather::new(group_commit, INGEST_BATCH, GATHER_EVENTS);
        let waiting = std::sync::Arc::new(tokio::sync::Mutex::new((waiting, gather)));
        let writers = if super::is_postgres(&db) { 4 } else { 1 };
        let hand_off = HandOffSlot::default();
        for _ in 0..writers {
            tokio::spawn(write_all(db.clone(), waiting.clone(), health.clone(), hand_off.clone()));
        }
        IngestQueue { queue, health, hand_off }
    }

    /// From now on, new deliveries are offered to this process's engine as they are stored
    /// (once; later calls change nothing).
    pub fn hand_off_to(&self, engine: std::sync::Arc<dyn HandOff>) {
        let _ = self.hand_off.set(engine);
    }

    /// Whether new deliveries go to the engine from the commit (which then wakes it for what
    /// it did not take), so the API need not wake it.
    pub fn hands_off(&self) -> bool {
        self.hand_off.get().is_some()
    }

    pub async fn ingest(&self, event: NewEvent) -> Result<EventAccepted, DbErr> {
        if let Some(refused) = self.health.refuse() {
            return Err(refused);
        }
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.queue
            .send(Waiting { event, answer })
            .await
            .map_err(|_| DbErr::Custom("the event writer has stopped".into()))?;
        answered.await.map_err(|_| DbErr::Custom("the event writer has stopped".into()))?
    }
}

type Queue = (tokio::sync::mpsc::Receiver<Waiting>, super::gather::Gather);

async fn write_all(
    db: DatabaseConnection,
    waiting: std::sync::Arc<tokio::sync::Mutex<Queue>>,
    health: super::health::DbHealth,
    hand_off: HandOffSlot,
) {
    let mut batch = Vec::with_capacity(INGEST_BATCH);
    loop {
        let taken = {
            let (queue, gather) = &mut *waiting.lock().await;
            gather.next(queue, &mut batch, |_| false).await
        };
        if taken == 0 {
            break;
        }
        let (events, answers): (Vec<_>, Vec<_>) = batch.drain(..).map(|w| (w.event, w.answer)).unzip();
        // Queued before the outage was known: refused like those that arrive during it.
        if let Some(refused) = health.refuse() {
            for answer in answers {
                let _ = answer.send(Err(refused.clone()));
            }
            continue;
        }
        let _turn = super::sqlite_write_turn(&db).await;
        let engine = hand_off.get().map(|h| h.as_ref());
        match ingest_batch(&db, &events, engine).await {
            Ok((accepted, handed, unleased)) => {
                health.wrote();
                if let Some(engine) = engine {
                    engine.hand(handed, unleased);
                }
                for (answer, accepted) in answers.into_iter().zip(accepted) {
                    let _ = answer.send(Ok(accepted));
                }
            }
            // The database is unavailable: none of these is stored, and trying each on its own
            // would only make every request wait longer for the same answer.
            Err(e) if health.failed(&e) => {
                for answer in answers {
                    let _ = answer.send(Err(e.clone()));
                }
            }
            // One event's failure must not fail the others, and a key stored concurrently (by
            // another writer or process) is a duplicate, not an error: each event is stored on
            // its own, where `ingest` settles that race.
            Err(_) => {
                for (answer, event) in answers.into_iter().zip(events) {
                    let accepted = ingest(&db, event).await;
                    if let (Some(engine), Ok(a)) = (engine, &accepted) {
                        engine.hand(Vec::new(), a.deliveries > 0 && !a.duplicate);
                        // for the claim
                    }
                    let _ = answer.send(accepted);
                }
            }
        }
    }
}

/// A new delivery of an event to a webhook: due now, or held when the webhook is not active.
pub fn new_delivery(
    event_id: EventId,
    event_type: &str,
    category: &str,
    w: &webhooks::Model,
    at: DateTimeUtc,
) -> deliveries::ActiveModel {
    let deliverable = w.enabled && w.state == WebhookState::Active;
    deliveries::ActiveModel {
        id: Set(DeliveryId::new().0),
        event_id: Set(event_id.0),
        webhook_id: Set(w.id),
        event_type: Set(event_type.to_owned()),
        category: Set(category.to_owned()),
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
        line_seq: Set(None),
    }
}

pub async fn find(db: &impl ConnectionTrait, id: EventId) -> Result<Option<events::Model>, DbErr> {
    events::Entity::find_by_id(id.0).one(db).await
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
