use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use sea_orm::{
    entity::prelude::*,
    sea_query::{Expr, ExprTrait},
    Condition, Order, QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::{attempts, deliveries, events, webhooks};
use crate::models::{
    category_of, Attempt, AttemptId, AttemptRequest, AttemptResponse, DeliveryDetail, DeliveryId,
    DeliveryQuery, DeliveryRow, DeliverySort, EventId, Page, SortOrder, WebhookId,
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

/// Every event type Herald has stored, sorted. Read with a loose index scan (one index seek per
/// distinct type, through `idx_events_type_created`) rather than `SELECT DISTINCT`, which reads
/// every event: the log's search and filters ask for it on every page, and the events table holds
/// as many rows as the retention keeps.
pub async fn known_event_types(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    let sql = r#"WITH RECURSIVE t(event_type) AS (
            SELECT MIN(event_type) FROM events
            UNION ALL
            SELECT (SELECT MIN(event_type) FROM events WHERE event_type > t.event_type) FROM t
            WHERE t.event_type IS NOT NULL
        )
        SELECT event_type FROM t WHERE event_type IS NOT NULL"#;
    let rows = db.query_all_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql)).await?;
    rows.iter().map(|r| r.try_get_by_index::<String>(0)).collect()
}

/// Webhooks whose name or URL, and event types that, contain `q` (ignoring case), as a filter
/// on deliveries; `None` when nothing matches.
async fn search_terms(db: &DatabaseConnection, q: &str) -> Result<Option<Matching>, DbErr> {
    // An id (what support is given first): the delivery itself, or every delivery of that event.
    if let Ok(id) = Uuid::parse_str(q) {
        let by_id =
            Condition::any().add(deliveries::Column::Id.eq(id)).add(deliveries::Column::EventId.eq(id));
        return Ok(Some(Matching { page: by_id.clone(), count: by_id }));
    }
    let needle = q.to_lowercase();
    let hooks: Vec<(Uuid, String, String)> = webhooks::Entity::find()
        .select_only()
        .columns([webhooks::Column::Id, webhooks::Column::Name, webhooks::Column::Url])
        .into_tuple()
        .all(db)
        .await?;
    let ids: Vec<Uuid> = hooks
        .into_iter()
        .filter(|(_, name, url)| {
            name.to_lowercase().contains(&needle) || url.to_lowercase().contains(&needle)
        })
        .map(|(id, _, _)| id)
        .collect();
    let types: Vec<String> =
        known_event_types(db).await?.into_iter().filter(|t| t.to_lowercase().contains(&needle)).collect();
    if ids.is_empty() && types.is_empty() {
        return Ok(None);
    }
    let (mut page, mut count) = (Condition::any(), Condition::any());
    if !ids.is_empty() {
        // SQLite would pick the webhook index for the IN list and then sort every match by
        // time (292 ms for a term matching 20 of 100 webhooks at 1M deliveries); the unary `+`
        // keeps it walking the time index and stopping after a page. PostgreSQL's planner weighs
        // both with its statistics. The count has no order to keep: walking the time index to
        // count a rare webhook's deliveries read the whole log (106 ms at 1M), so it takes the
        // webhook index (5 ms).
        let column = if super::is_postgres(db) {
            Expr::col((deliveries::Entity, deliveries::Column::WebhookId))
        } else {
            Expr::cust(r#"+"deliveries"."webhook_id""#)
        };
        page = page.add(column.is_in(ids.clone()));
        count = count.add(deliveries::Column::WebhookId.is_in(ids));
    }
    if !types.is_empty() {
        page = page.add(deliveries::Column::EventType.is_in(types.clone()));
        count = count.add(deliveries::Column::EventType.is_in(types));
    }
    Ok(Some(Matching { page, count }))
}

/// The log's filters, resolved: the condition for a page (in the log's order), and the same
/// for counting its matches.
struct Matching {
    page: Condition,
    count: Condition,
}

/// The log's filters as one condition; `None` when they match nothing (found without reading
/// the log).
async fn matching(db: &DatabaseConnection, query: &DeliveryQuery) -> Result<Option<Matching>, DbErr> {
    // Nothing stored holds a NUL (input with one is refused), and PostgreSQL fails on one in a
    // comparison: such a filter matches nothing.
    if [&query.category, &query.q, &query.event_type]
        .iter()
        .any(|f| f.as_deref().is_some_and(|f| f.contains('\0')))
    {
        return Ok(None);
    }
    let mut all = Condition::all();
    if let Some(webhook_id) = query.webhook_id {
        all = all.add(deliveries::Column::WebhookId.eq(webhook_id.0));
    }
    if let Some(status) = query.status {
        all = all.add(deliveries::Column::Status.eq(status));
    }
    let event_type = query.event_type.as_deref().filter(|t| !t.is_empty());
    if let Some(event_type) = event_type {
        all = all.add(deliveries::Column::EventType.eq(event_type));
    }
    if let Some(since) = query.since {
        all = all.add(deliveries::Column::CreatedAt.gte(since));
    }
    if let Some(until) = query.until {
        all = all.add(deliveries::Column::CreatedAt.lt(until));
    }
    if let Some(category) = query.category.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        // Event types are lowercase (ingest refuses others), so `License` finds `license`.
        let category = category.to_lowercase();
        match event_type {
            // A type names its category: the category adds nothing, or rules everything out.
            // (Left in, PostgreSQL counted "failed, user, order.placed" through the category's
            // index: 92 ms at 1M deliveries, to find none.)
            Some(t) if category_of(t) != category => return Ok(None),
            Some(_) => {}
            None => all = all.add(deliveries::Column::Category.eq(category)),
        }
    }
    if let Some(q) = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        // Search is resolved against the small tables first (webhooks, and the distinct event
        // types), case-insensitively on both databases; the log is then filtered by id and type
        // through its indexes. A search that matches nothing never scans the log.
        return Ok(search_terms(db, q)
            .await?
            .map(|found| Matching { page: all.clone().add(found.page), count: all.add(found.count) }));
    }
    Ok(Some(Matching { page: all.clone(), count: all }))
}

/// How many deliveries the log's filters match, counted up to `cap`: `(count, more)`, where
/// `more` says there are more than `cap`. Bounded so a count never reads a million-row log.
pub async fn count(db: &DatabaseConnection, query: &DeliveryQuery, cap: u64) -> Result<(u64, bool), DbErr> {
    match matching(db, query).await? {
        Some(cond) => count_matching(db, cond.count, cap).await,
        None => Ok((0, false)),
    }
}

/// The admin app's log page: a page of rows and how many match (up to `cap`), with the filters
/// resolved once for both (search reads the webhooks and the event types).
pub async fn list_counted(
    db: &DatabaseConnection,
    query: &DeliveryQuery,
    cap: u64,
) -> Result<(Page<DeliveryRow>, (u64, bool)), ListError> {
    match matching(db, query).await? {
        Some(cond) => {
            Ok((list_matching(db, query, cond.page).await?, count_matching(db, cond.count, cap).await?))
        }
        None => Ok((Page { items: Vec::new(), next_cursor: None }, (0, false))),
    }
}

async fn count_matching(db: &DatabaseConnection, cond: Condition, cap: u64) -> Result<(u64, bool), DbErr> {
    use sea_orm::{sea_query::Query, QueryTrait};

    let matched = deliveries::Entity::find()
        .select_only()
        .column(deliveries::Column::Id)
        .filter(cond)
        .limit(cap + 1)
        .into_query();
    let wrapped =
        Query::select().expr_as(Expr::cust("COUNT(*)"), "n").from_subquery(matched, "matched").to_owned();
    let n = db.query_one(&wrapped).await?.map(|r| r.try_get::<i64>("", "n")).transpose()?.unwrap_or(0);
    let n = u64::try_from(n).unwrap_or(0);
    Ok((std::cmp::min(n, cap), n > cap))
}

/// How many of a webhook's deliveries created since `since` are in each status (through
/// `idx_deliveries_webhook_created`).
pub async fn status_counts(
    db: &DatabaseConnection,
    webhook: WebhookId,
    since: DateTime<Utc>,
) -> Result<crate::models::StatusCounts, DbErr> {
    use crate::models::DeliveryStatus;

    let rows: Vec<(DeliveryStatus, i64)> = deliveries::Entity::find()
        .select_only()
        .column(deliveries::Column::Status)
        .column_as(deliveries::Column::Id.count(), "n")
        .filter(deliveries::Column::WebhookId.eq(webhook.0))
        .filter(deliveries::Column::CreatedAt.gte(since))
        .group_by(deliveries::Column::Status)
        .into_tuple()
        .all(db)
        .await?;
    let mut counts = crate::models::StatusCounts::default();
    for (status, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        match status {
            DeliveryStatus::Succeeded => counts.succeeded += n,
            DeliveryStatus::Failed => counts.failed += n,
            DeliveryStatus::Retrying => counts.retrying += n,
            _ => counts.waiting += n,
        }
    }
    Ok(counts)
}

/// The delivery log: newest first, filtered, keyset-paginated.
pub async fn list(db: &DatabaseConnection, query: &DeliveryQuery) -> Result<Page<DeliveryRow>, ListError> {
    match matching(db, query).await? {
        Some(cond) => list_matching(db, query, cond.page).await,
        None => Ok(Page { items: Vec::new(), next_cursor: None }),
    }
}

async fn list_matching(
    db: &DatabaseConnection,
    query: &DeliveryQuery,
    cond: Condition,
) -> Result<Page<DeliveryRow>, ListError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE);
    let mut select = deliveries::Entity::find().find_also_related(webhooks::Entity).filter(cond);
    let sort = query.sort.unwrap_or_default();
    let desc = query.order.unwrap_or_default() == SortOrder::Desc;
    // Deliveries never attempted have no response code; they sort as 0. Written out, with the 0
    // a literal rather than a bound parameter, so it is the expression `idx_deliveries_code_sort`
    // indexes.
    let code = || Expr::cust(r#"COALESCE("deliveries"."last_response_code", 0)"#);
    let key: Option<Expr> = match sort {
        DeliverySort::Time => None,
        DeliverySort::Status => Some(Expr::col((deliveries::Entity, deliveries::Column::Status))),
        DeliverySort::ResponseCode => Some(code()),
    };
    if let Some(cursor) = query.cursor.as_deref().filter(|c| !c.is_empty()) {
        let (cursor_sort, value, at, id) = decode_sorted_cursor(cursor).ok_or(ListError::BadCursor)?;
        if cursor_sort != sort {
            return Err(ListError::BadCursor);
        }
        let mut left = vec![
            Expr::col((deliveries::Entity, deliveries::Column::CreatedAt)),
            Expr::col((deliveries::Entity, deliveries::Column::Id)),
        ];
        let mut right = vec![Expr::value(at), Expr::value(id)];
        if let Some(k) = key.clone() {
            left.insert(0, k);
            right.insert(
                0,
                match sort {
                    DeliverySort::ResponseCode => {
                        Expr::value(value.parse::<i32>().map_err(|_| ListError::BadCursor)?)
                    }
                    _ => Expr::value(value),
                },
            );
        }
        let (l, r) = (Expr::tuple(left), Expr::tuple(right));
        select = select.filter(if desc { l.lt(r) } else { l.gt(r) });
    }
    let direction = if desc { Order::Desc } else { Order::Asc };
    if let Some(k) = key {
        select = select.order_by(k, direction.clone());
    }
    let rows = select
        .order_by(deliveries::Column::CreatedAt, direction.clone())
        .order_by(deliveries::Column::Id, direction)
        .limit(limit + 1)
        .all(db)
        .await?;
    let (rows, next_cursor) = super::split_page(rows, limit, |(d, _)| {
        let value = match sort {
            DeliverySort::Time => String::new(),
            DeliverySort::Status => d.status.as_str().to_owned(),
            DeliverySort::ResponseCode => d.last_response_code.unwrap_or(0).to_string(),
        };
        encode_sorted_cursor(sort, &value, d.created_at, d.id)
    });
    let urls =
        attempted_urls(db, rows.iter().filter(|(d, _)| d.attempt_count > 0).map(|(d, _)| d.id)).await?;
    let items = rows
        .into_iter()
        .map(|(d, w)| {
            let url = urls.get(&d.id).cloned();
            DeliveryRow { attempted_url: url, ..row(d, w) }
        })
        .collect();
    Ok(Page { items, next_cursor })
}

/// The URL each delivery's last attempt went to (a webhook's URL can change between attempts).
async fn attempted_urls(
    db: &DatabaseConnection,
    ids: impl Iterator<Item = Uuid>,
) -> Result<std::collections::HashMap<Uuid, String>, DbErr> {
    let ids: Vec<Uuid> = ids.collect();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let found: Vec<(Uuid, i32, String)> = attempts::Entity::find()
        .select_only()
        .columns([
            attempts::Column::DeliveryId,
            attempts::Column::AttemptNumber,
            attempts::Column::RequestUrl,
        ])
        .filter(attempts::Column::DeliveryId.is_in(ids))
        .order_by_asc(attempts::Column::AttemptNumber)
        .into_tuple()
        .all(db)
        .await?;
    // In attempt order, so the last one written for each delivery is its latest.
    Ok(found
        .into_iter()
        .map(|(id, _, url)| (id, crate::models::redact_url_credentials(&url).into_owned()))
        .collect())
}

fn sort_name(sort: DeliverySort) -> &'static str {
    match sort {
        DeliverySort::Time => "time",
        DeliverySort::Status => "status",
        DeliverySort::ResponseCode => "response_code",
    }
}

/// Position after the last row of a sorted page: the sort, its key, then time and id.
fn encode_sorted_cursor(sort: DeliverySort, value: &str, created_at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{value}|{}|{id}", sort_name(sort), created_at.timestamp_micros()))
}

fn decode_sorted_cursor(cursor: &str) -> Option<(DeliverySort, String, DateTime<Utc>, Uuid)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let mut parts = raw.splitn(4, '|');
    let sort = match parts.next()? {
        "time" => DeliverySort::Time,
        "status" => DeliverySort::Status,
        "response_code" => DeliverySort::ResponseCode,
        _ => return None,
    };
    let value = parts.next()?.to_owned();
    let at = DateTime::from_timestamp_micros(parts.next()?.parse().ok()?)?;
    let id = Uuid::parse_str(parts.next()?).ok()?;
    Some((sort, value, at, id))
}

fn row(d: deliveries::Model, w: Option<webhooks::Model>) -> DeliveryRow {
    let (webhook_name, webhook_url) =
        w.map(|w| (w.name, crate::models::redact_url_credentials(&w.url).into_owned())).unwrap_or_default();
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
        attempted_url: None,
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
                url: crate::models::redact_url_credentials(&a.request_url).into_owned(),
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
    let attempts: Vec<Attempt> = attempts::Entity::find()
        .filter(attempts::Column::DeliveryId.eq(delivery.id))
        .order_by_asc(attempts::Column::AttemptNumber)
        .all(db)
        .await?
        .into_iter()
        .map(Attempt::from)
        .collect();
    let attempted_url = attempts.last().map(|a| a.request.url.clone());
    let next_attempt_at = delivery.next_attempt_at;
    let reactivation = match &webhook {
        Some(w) => super::webhooks::reactivation_of(db, w, Some(delivery.id)).await?,
        None => None,
    };
    Ok(Some(DeliveryDetail {
        delivery: DeliveryRow { attempted_url, ..row(delivery, webhook) },
        next_attempt_at,
        payload,
        attempts,
        reactivation,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_cursor_round_trips() {
        let at = DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap();
        let id = Uuid::now_v7();
        let c = encode_sorted_cursor(DeliverySort::ResponseCode, "503", at, id);
        assert_eq!(decode_sorted_cursor(&c), Some((DeliverySort::ResponseCode, "503".into(), at, id)));
        assert_eq!(decode_sorted_cursor(&encode_cursor(at, id)), None);
    }

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let at = DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap();
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(at, id)), Some((at, id)));
        assert_eq!(decode_cursor("not-a-cursor"), None);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("no such delivery")]
    NotFound,
    #[error("This delivery succeeded; only deliveries that did not succeed can be re-sent.")]
    Succeeded,
    #[error("This delivery is being sent right now; wait for the attempt to finish.")]
    InFlight,
    #[error("This delivery is already queued to be sent.")]
    Queued,
    #[error("{}: it receives nothing until it is reactivated (optionally recovering what was held or failed).", inactive(*.0))]
    WebhookInactive(crate::models::WebhookState),
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn inactive(state: crate::models::WebhookState) -> &'static str {
    match state {
        crate::models::WebhookState::Stopped => "Its webhook was stopped",
        _ => "Its webhook was deactivated after too many errors",
    }
}

/// Queues a re-send of one delivery that did not succeed: it is sent at once, by the engine, as
/// an attempt with `trigger` (manual). Failed and held deliveries become pending; a retrying one
/// keeps its schedule if the re-send fails too.
pub async fn retry(
    db: &DatabaseConnection,
    id: DeliveryId,
    trigger: crate::models::AttemptTrigger,
) -> Result<DeliveryRow, RetryError> {
    use sea_orm::sea_query::Expr;

    use crate::models::{DeliveryStatus, WebhookState};

    let (delivery, webhook) = deliveries::Entity::find_by_id(id.0)
        .find_also_related(webhooks::Entity)
        .one(db)
        .await?
        .ok_or(RetryError::NotFound)?;
    let at = super::now();
    match delivery.status {
        DeliveryStatus::Succeeded => return Err(RetryError::Succeeded),
        _ if delivery.lease_expires_at.is_some_and(|l| l > at) => return Err(RetryError::InFlight),
        DeliveryStatus::Pending => return Err(RetryError::Queued),
        _ => {}
    }
    if let Some(w) = webhook.as_ref().filter(|w| w.state != WebhookState::Active) {
        return Err(RetryError::WebhookInactive(w.state));
    }
    let new_status = if delivery.status == DeliveryStatus::Retrying {
        DeliveryStatus::Retrying
    } else {
        DeliveryStatus::Pending
    };
    let changed = deliveries::Entity::update_many()
        .col_expr(deliveries::Column::Status, Expr::value(new_status.as_str()))
        .col_expr(deliveries::Column::NextAttemptAt, Expr::value(at))
        .col_expr(deliveries::Column::PendingTrigger, Expr::value(trigger.as_str()))
        .col_expr(deliveries::Column::UpdatedAt, Expr::value(at))
        .filter(deliveries::Column::Id.eq(id.0))
        .filter(deliveries::Column::Status.eq(delivery.status))
        .filter(
            Condition::any()
                .add(deliveries::Column::LeaseExpiresAt.is_null())
                .add(deliveries::Column::LeaseExpiresAt.lte(at)),
        )
        .exec(db)
        .await?
        .rows_affected;
    if changed == 0 {
        return Err(RetryError::InFlight); // the engine took it between our read and write
    }
    if delivery.line_seq.is_none() && webhook.as_ref().is_some_and(|w| w.ordered_since.is_some()) {
        super::lines::number_unplaced(db, delivery.webhook_id).await?;
    }
    let updated = deliveries::Entity::find_by_id(id.0).one(db).await?.ok_or(RetryError::NotFound)?;
    Ok(row(updated, webhook))
}
