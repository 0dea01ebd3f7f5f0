//! The engine's reads and writes: claiming due deliveries under a lease, and recording an
//! attempt with everything it changes (delivery, usage, and on deactivation the webhook, its
//! queue, the activity log, the emails and the operational event) in one transaction.

use std::collections::HashMap;

use app::{
    db::{
        activity,
        entities::{attempts, deliveries, events, users, webhook_usage, webhooks},
        events as event_store, now, outbox,
    },
    models::{AttemptTrigger, DeliveryStatus, Role, WebhookState},
};
use chrono::{DateTime, Utc};
use sea_orm::{
    prelude::Expr,
    sea_query::{ExprTrait, Func, LockBehavior, LockType, Query},
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use uuid::Uuid;

use super::{dispatch::Sent, policy::Decision};

/// A delivery this process has leased, with what sending it needs.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub delivery: deliveries::Model,
    pub webhook: webhooks::Model,
    pub event: events::Model,
}

impl Claimed {
    pub fn trigger(&self) -> AttemptTrigger {
        self.delivery.pending_trigger.unwrap_or(AttemptTrigger::Automatic)
    }
}

pub struct ClaimLimits {
    pub batch: usize,
    pub per_webhook: usize,
    pub lease_margin: chrono::Duration,
}

const DUE: [DeliveryStatus; 2] = [DeliveryStatus::Pending, DeliveryStatus::Retrying];

/// Leases up to `limits.batch` due deliveries of active webhooks, oldest due first, never more
/// than `per_webhook` in flight for one webhook across all processes (counted from live leases),
/// so a slow or failing webhook cannot take every slot. On PostgreSQL, rows another process is
/// claiming are skipped (`FOR UPDATE SKIP LOCKED`); on SQLite, writers are serialised and the
/// conditional update does the same.
pub async fn claim(
    db: &DatabaseConnection,
    worker: &str,
    limits: &ClaimLimits,
) -> Result<Vec<Claimed>, DbErr> {
    let at = now();
    let in_flight: HashMap<Uuid, i64> = deliveries::Entity::find()
        .select_only()
        .column(deliveries::Column::WebhookId)
        .column_as(deliveries::Column::Id.count(), "n")
        .filter(deliveries::Column::LeaseExpiresAt.gt(at))
        .group_by(deliveries::Column::WebhookId)
        .into_tuple::<(Uuid, i64)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let saturated: Vec<Uuid> =
        in_flight.iter().filter(|(_, n)| **n as usize >= limits.per_webhook).map(|(id, _)| *id).collect();

    let mut candidates = deliveries::Entity::find()
        .select_only()
        .column(deliveries::Column::Id)
        .column(deliveries::Column::WebhookId)
        .column(webhooks::Column::TimeoutMs)
        .inner_join(webhooks::Entity)
        .filter(deliveries::Column::Status.is_in(DUE))
        .filter(deliveries::Column::NextAttemptAt.lte(at))
        .filter(
            sea_orm::Condition::any()
                .add(deliveries::Column::LeaseExpiresAt.is_null())
                .add(deliveries::Column::LeaseExpiresAt.lte(at)),
        )
        .filter(webhooks::Column::State.eq(WebhookState::Active))
        .order_by_asc(deliveries::Column::NextAttemptAt)
        .limit((limits.batch * 4) as u64);
    if !saturated.is_empty() {
        candidates = candidates.filter(deliveries::Column::WebhookId.is_not_in(saturated));
    }
    let candidates: Vec<(Uuid, Uuid, i32)> = candidates.into_tuple().all(db).await?;

    // Fair share: each webhook gets at most its free slots, in order of due time.
    let mut taken: HashMap<Uuid, i64> = HashMap::new();
    let mut by_timeout: HashMap<i32, Vec<Uuid>> = HashMap::new();
    let mut chosen = 0;
    for (id, webhook_id, timeout_ms) in candidates {
        let used =
            in_flight.get(&webhook_id).copied().unwrap_or(0) + taken.get(&webhook_id).copied().unwrap_or(0);
        if used as usize >= limits.per_webhook {
            continue;
        }
        *taken.entry(webhook_id).or_default() += 1;
        by_timeout.entry(timeout_ms).or_default().push(id);
        chosen += 1;
        if chosen == limits.batch {
            break;
        }
    }

    let mut leased = Vec::new();
    for (timeout_ms, ids) in by_timeout {
        let expires = at + chrono::Duration::milliseconds(i64::from(timeout_ms)) + limits.lease_margin;
        let still_free = Query::select()
            .column(deliveries::Column::Id)
            .from(deliveries::Entity)
            .and_where(deliveries::Column::Id.is_in(ids))
            .and_where(deliveries::Column::Status.is_in(DUE))
            .cond_where(
                sea_orm::Condition::any()
                    .add(deliveries::Column::LeaseExpiresAt.is_null())
                    .add(deliveries::Column::LeaseExpiresAt.lte(at)),
            )
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .to_owned();
        let rows = deliveries::Entity::update_many()
            .col_expr(deliveries::Column::LeaseOwner, Expr::value(worker))
            .col_expr(deliveries::Column::LeaseExpiresAt, Expr::value(expires))
            .filter(deliveries::Column::Id.in_subquery(still_free))
            .exec_with_returning(db)
            .await?;
        leased.extend(rows);
    }
    if leased.is_empty() {
        return Ok(Vec::new());
    }

    let webhook_ids: Vec<Uuid> = leased.iter().map(|d| d.webhook_id).collect();
    let event_ids: Vec<Uuid> = leased.iter().map(|d| d.event_id).collect();
    let webhooks: HashMap<Uuid, webhooks::Model> = webhooks::Entity::find()
        .filter(webhooks::Column::Id.is_in(webhook_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|w| (w.id, w))
        .collect();
    let events: HashMap<Uuid, events::Model> = events::Entity::find()
        .filter(events::Column::Id.is_in(event_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    Ok(leased
        .into_iter()
        .filter_map(|delivery| {
            let webhook = webhooks.get(&delivery.webhook_id)?.clone();
            let event = events.get(&delivery.event_id)?.clone();
            Some(Claimed { delivery, webhook, event })
        })
        .collect())
}

/// A webhook this attempt deactivated, for logging.
pub struct Deactivated {
    pub webhook: String,
    pub reason: String,
    pub held: u64,
}

/// Records the attempt and applies the decision. Returns the deactivation it caused, if any.
pub async fn record(
    db: &DatabaseConnection,
    worker: &str,
    claimed: &Claimed,
    sent: &Sent,
    decision: &Decision,
) -> Result<Option<Deactivated>, DbErr> {
    let at = now();
    let d = &claimed.delivery;
    let status_code = sent.response.as_ref().map(|r| i32::from(r.status));
    let json = |m: &std::collections::BTreeMap<String, String>| serde_json::to_string(m).unwrap_or_default();
    let txn = db.begin().await?;
    attempts::Entity::insert(attempts::ActiveModel {
        id: Set(Uuid::now_v7()),
        delivery_id: Set(d.id),
        webhook_id: Set(d.webhook_id),
        attempt_number: Set(d.attempt_count + 1),
        trigger: Set(claimed.trigger()),
        started_at: Set(sent.started_at),
        duration_ms: Set(sent.duration_ms),
        request_url: Set(sent.url.clone()),
        request_method: Set("POST".into()),
        request_headers: Set(json(&sent.request_headers)),
        request_body: Set(Some(sent.body.clone())),
        response_status: Set(status_code),
        response_headers: Set(sent.response.as_ref().map(|r| json(&r.headers))),
        response_body: Set(sent.response.as_ref().map(|r| r.body.clone())),
        response_body_truncated: Set(sent.response.as_ref().is_some_and(|r| r.truncated)),
        outcome: Set(sent.outcome),
        error: Set(sent.error.clone()),
        sent_by: Set(Some(worker.to_owned())),
    })
    .exec_without_returning(&txn)
    .await?;

    deliveries::Entity::update_many()
        .col_expr(deliveries::Column::Status, Expr::value(decision.status.as_str()))
        .col_expr(deliveries::Column::AttemptCount, Expr::col(deliveries::Column::AttemptCount).add(1))
        .col_expr(deliveries::Column::RetrySlot, Expr::value(decision.retry_slot))
        .col_expr(deliveries::Column::QuickRetryCount, Expr::value(decision.quick_retry_count))
        .col_expr(deliveries::Column::NextAttemptAt, Expr::value(decision.next_attempt_at))
        .col_expr(deliveries::Column::LastAttemptAt, Expr::value(sent.started_at))
        .col_expr(deliveries::Column::LastResponseCode, Expr::value(status_code))
        .col_expr(deliveries::Column::LastOutcome, Expr::value(sent.outcome.as_str()))
        .col_expr(deliveries::Column::LastDurationMs, Expr::value(sent.duration_ms))
        .col_expr(deliveries::Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(deliveries::Column::LeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(deliveries::Column::PendingTrigger, Expr::value(Option::<String>::None))
        .col_expr(deliveries::Column::UpdatedAt, Expr::value(at))
        .filter(deliveries::Column::Id.eq(d.id))
        .exec(&txn)
        .await?;

    let usage = webhook_usage::Entity::update_many()
        .col_expr(webhook_usage::Column::TotalCalls, Expr::col(webhook_usage::Column::TotalCalls).add(1))
        .filter(webhook_usage::Column::WebhookId.eq(d.webhook_id));
    let usage = if sent.outcome == app::models::Outcome::Success {
        usage
            .col_expr(webhook_usage::Column::ConsecutiveErrors, Expr::value(0))
            .col_expr(webhook_usage::Column::LastSuccessAt, Expr::value(sent.started_at))
            .col_expr(webhook_usage::Column::FirstFailureAt, Expr::value(Option::<DateTime<Utc>>::None))
    } else {
        let last_error = match (&sent.response, &sent.error) {
            (Some(r), _) => format!("{}: HTTP {}", sent.outcome, r.status),
            (None, Some(e)) => format!("{}: {e}", sent.outcome),
            (None, None) => sent.outcome.to_string(),
        };
        usage
            .col_expr(
                webhook_usage::Column::TotalErrors,
                Expr::col(webhook_usage::Column::TotalErrors).add(1),
            )
            .col_expr(
                webhook_usage::Column::ConsecutiveErrors,
                Expr::col(webhook_usage::Column::ConsecutiveErrors).add(1),
            )
            .col_expr(webhook_usage::Column::LastError, Expr::value(last_error))
            .col_expr(webhook_usage::Column::LastErrorAt, Expr::value(sent.started_at))
            .col_expr(
                webhook_usage::Column::FirstFailureAt,
                Expr::expr(Func::coalesce([
                    Expr::col(webhook_usage::Column::FirstFailureAt),
                    Expr::value(sent.started_at),
                ])),
            )
    };
    usage.exec(&txn).await?;

    let deactivated = match &decision.deactivate {
        Some(reason) => deactivate(&txn, claimed, reason, sent, at).await?,
        None => None,
    };
    txn.commit().await?;
    Ok(deactivated)
}

/// Moves an active webhook to `too_many_errors`, holds its queue, and tells people: an activity
/// log line, an email to every API user, and a `webhook.deactivated` event.
async fn deactivate(
    txn: &sea_orm::DatabaseTransaction,
    claimed: &Claimed,
    reason: &str,
    sent: &Sent,
    at: DateTime<Utc>,
) -> Result<Option<Deactivated>, DbErr> {
    let w = &claimed.webhook;
    let changed = webhooks::Entity::update_many()
        .col_expr(webhooks::Column::State, Expr::value(WebhookState::TooManyErrors.as_str()))
        .col_expr(webhooks::Column::DeactivatedAt, Expr::value(at))
        .col_expr(webhooks::Column::UpdatedAt, Expr::value(at))
        .filter(webhooks::Column::Id.eq(w.id))
        .filter(webhooks::Column::State.eq(WebhookState::Active))
        .exec(txn)
        .await?
        .rows_affected;
    if changed == 0 {
        return Ok(None); // stopped or deactivated meanwhile: someone else told people
    }
    let held = app::db::webhooks::hold_queue(txn, app::models::WebhookId(w.id), at).await?;
    let last_error =
        sent.error.clone().or_else(|| sent.response.as_ref().map(|r| format!("HTTP {}", r.status)));
    activity::record(
        txn,
        activity::Activity {
            actor: Some("engine"),
            kind: "webhook.deactivated",
            subject: Some(w.name.clone()),
            summary: format!("Webhook {} deactivated: {reason}; {held} queued deliveries held", w.name),
        },
    )
    .await?;

    let subject = format!("Herald: webhook \"{}\" was deactivated", w.name);
    let body = format!(
        "Herald stopped delivering to the webhook \"{name}\" ({url}) at {at}.\n\n\
         Reason: {reason}.\nLast error: {error}.\n\n\
         New events for it are kept as held deliveries ({held} were queued). Once the destination \
         works again, reactivate the webhook in Herald's admin app or with\n\
         POST /api/v1/webhooks/{id}/reactivate {{\"recover_since\": \"<time of the first failure>\"}}\n\
         to send what was held or failed since then.\n",
        name = w.name,
        url = w.url,
        at = at.to_rfc3339(),
        error = last_error.as_deref().unwrap_or("none recorded"),
        id = w.id,
    );
    let api_users = users::Entity::find()
        .filter(users::Column::Role.eq(Role::ApiUser))
        .filter(users::Column::DisabledAt.is_null())
        .all(txn)
        .await?;
    for user in &api_users {
        outbox::enqueue(txn, &user.email, &subject, &body).await?;
    }

    let payload = serde_json::json!({
        "webhook_id": w.id,
        "name": w.name,
        "url": w.url,
        "reason": reason,
        "last_error": last_error,
        "deactivated_at": at,
        "held_deliveries": held,
    });
    event_store::ingest(
        txn,
        "webhook.deactivated",
        payload.to_string(),
        Some(format!("webhook.deactivated:{}:{}", w.id, at.timestamp_micros())),
    )
    .await?;
    Ok(Some(Deactivated { webhook: w.name.clone(), reason: reason.to_owned(), held }))
}

/// Holds due deliveries of webhooks that are not active. Stopping or deactivating a webhook
/// holds its queue in the same transaction, but an event committed concurrently (on PostgreSQL,
/// its transaction read the webhook just before it changed) can still leave one pending; this
/// sweep, run by the engine every second, puts those where they belong.
pub async fn hold_inactive(db: &DatabaseConnection) -> Result<u64, DbErr> {
    let at = now();
    let inactive = Query::select()
        .column(webhooks::Column::Id)
        .from(webhooks::Entity)
        .and_where(webhooks::Column::State.ne(WebhookState::Active))
        .to_owned();
    Ok(deliveries::Entity::update_many()
        .col_expr(deliveries::Column::Status, Expr::value(DeliveryStatus::Held.as_str()))
        .col_expr(deliveries::Column::NextAttemptAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(deliveries::Column::UpdatedAt, Expr::value(at))
        .filter(deliveries::Column::Status.is_in(DUE))
        .filter(
            sea_orm::Condition::any()
                .add(deliveries::Column::LeaseExpiresAt.is_null())
                .add(deliveries::Column::LeaseExpiresAt.lte(at)),
        )
        .filter(deliveries::Column::WebhookId.in_subquery(inactive))
        .exec(db)
        .await?
        .rows_affected)
}

/// Gives back the claims of this process (on shutdown, for requests that did not finish), so
/// another process or the next start sends them without waiting for the lease to expire.
pub async fn release(db: &DatabaseConnection, worker: &str) -> Result<u64, DbErr> {
    Ok(deliveries::Entity::update_many()
        .col_expr(deliveries::Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(deliveries::Column::LeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(deliveries::Column::LeaseOwner.eq(worker))
        .exec(db)
        .await?
        .rows_affected)
}
