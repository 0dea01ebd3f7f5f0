//! Webhooks: the destinations events are delivered to.

use std::collections::BTreeMap;

use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::Duration;
use rand::RngCore;
use sea_orm::{entity::prelude::*, ActiveValue::Set, QueryOrder, QuerySelect};

use super::{
    entities::{webhook_usage, webhooks},
    now,
};
use crate::models::{
    CreatedWebhook, Page, Webhook, WebhookAuth, WebhookCreate, WebhookId, WebhookPatch, WebhookState,
    DEFAULT_TIMEOUT_MS,
};

/// A Standard Webhooks signing secret: `whsec_` and 24 random bytes in base64.
pub fn new_secret() -> String {
    let mut key = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut key);
    format!("whsec_{}", STANDARD.encode(key))
}

pub fn auth_of(model: &webhooks::Model) -> WebhookAuth {
    serde_json::from_str(&model.auth).unwrap_or_default()
}

pub fn headers_of(model: &webhooks::Model) -> BTreeMap<String, String> {
    serde_json::from_str(&model.headers).unwrap_or_default()
}

pub fn event_types_of(model: &webhooks::Model) -> Vec<String> {
    serde_json::from_str(&model.event_types).unwrap_or_default()
}

pub fn notify_emails_of(model: &webhooks::Model) -> Vec<String> {
    serde_json::from_str(&model.notify_emails).unwrap_or_default()
}

pub fn retry_schedule_of(model: &webhooks::Model) -> Option<Vec<u32>> {
    model.retry_schedule.as_deref().and_then(|s| serde_json::from_str(s).ok())
}

fn json<T: serde::Serialize>(value: &T) -> String {
    // Maps, vectors and enums of strings always serialise.
    serde_json::to_string(value).unwrap_or_default()
}

impl From<&webhooks::Model> for Webhook {
    fn from(m: &webhooks::Model) -> Self {
        Webhook {
            id: WebhookId(m.id),
            name: m.name.clone(),
            url: crate::models::redact_url_credentials(&m.url).into_owned(),
            description: m.description.clone(),
            event_types: event_types_of(m),
            auth: (&auth_of(m)).into(),
            header_names: headers_of(m).into_keys().collect(),
            timeout_ms: m.timeout_ms,
            retry_schedule: retry_schedule_of(m),
            notify_emails: notify_emails_of(m),
            notify_on_failing: m.notify_on_failing,
            rate_limit: m.rate_limit.map(|n| n.max(1) as u32),
            rate_limit_burst: m.rate_limit_burst.map(|n| n.max(1) as u32),
            ordered: m.ordered_since.is_some(),
            enabled: m.enabled,
            state: m.state,
            stopped_by: m.stopped_by.clone(),
            stopped_at: m.stopped_at,
            deactivated_at: m.deactivated_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// Creates a webhook (input already validated) with its usage counters.
pub async fn create(
    db: &DatabaseConnection,
    input: WebhookCreate,
    actor: &str,
) -> Result<CreatedWebhook, DbErr> {
    let at = now();
    let enabled = input.enabled.unwrap_or(true);
    let secret = new_secret();
    let model = webhooks::ActiveModel {
        id: Set(WebhookId::new().0),
        name: Set(input.name.trim().to_owned()),
        url: Set(input.url.trim().to_owned()),
        description: Set(input.description),
        secret: Set(secret.clone()),
        previous_secret: Set(None),
        previous_secret_expires_at: Set(None),
        auth: Set(json(&input.auth)),
        headers: Set(json(&input.headers)),
        event_types: Set(json(&input.event_types)),
        timeout_ms: Set(input.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)),
        retry_schedule: Set(input.retry_schedule.as_ref().map(json)),
        enabled: Set(enabled),
        state: Set(if enabled { WebhookState::Active } else { WebhookState::Stopped }),
        stopped_by: Set((!enabled).then(|| actor.to_owned())),
        stopped_at: Set((!enabled).then_some(at)),
        deactivated_at: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
        notify_emails: Set(json(&input.notify_emails)),
        notify_on_failing: Set(input.notify_on_failing),
        rate_limit: Set(input.rate_limit.map(|n| n as i32)),
        rate_limit_burst: Set(input.rate_limit_burst.map(|n| n as i32)),
        ordered_since: Set(input.ordered.then_some(at)),
    };
    let txn = super::begin_write(db).await?;
    let model = model.insert(&txn).await?;
    webhook_usage::ActiveModel {
        webhook_id: Set(model.id),
        total_calls: Set(0),
        total_errors: Set(0),
        consecutive_errors: Set(0),
        last_error: Set(None),
        last_error_at: Set(None),
        last_success_at: Set(None),
        first_failure_at: Set(None),
        failing_notified_at: Set(None),
        rate_tat_us: Set(0),
        paused_until: Set(None),
        pause_reason: Set(None),
        line_seq: Set(0),
        line_blocked_by: Set(None),
    }
    .insert(&txn)
    .await?;
    log(
        &txn,
        actor,
        "webhook.created",
        &model,
        format!("Created webhook {} for {}", model.name, crate::models::redact_url_credentials(&model.url)),
    )
    .await?;
    txn.commit().await?;
    Ok(CreatedWebhook { webhook: (&model).into(), secret })
}

pub async fn find(db: &DatabaseConnection, id: WebhookId) -> Result<Option<webhooks::Model>, DbErr> {
    webhooks::Entity::find_by_id(id.0).one(db).await
}

/// All webhooks in creation order, keyset-paginated by id (UUIDv7 ids sort by creation).
pub async fn list(
    db: &DatabaseConnection,
    after: Option<WebhookId>,
    limit: u64,
) -> Result<Page<Webhook>, DbErr> {
    let mut select = webhooks::Entity::find().order_by_asc(webhooks::Column::Id).limit(limit + 1);
    if let Some(after) = after {
        select = select.filter(webhooks::Column::Id.gt(after.0));
    }
    let (rows, next_cursor) = super::split_page(select.all(db).await?, limit, |w| w.id.to_string());
    Ok(Page { items: rows.iter().map(Webhook::from).collect(), next_cursor })
}

/// Applies a validated patch. Turning `enabled` off stops the webhook (recording who and when);
/// turning it on makes a stopped webhook active again.
pub async fn update(
    db: &DatabaseConnection,
    id: WebhookId,
    patch: WebhookPatch,
    actor: &str,
) -> Result<Option<Webhook>, DbErr> {
    // Read and written in one transaction: a webhook deleted meanwhile is a 404, not a failed
    // update (on SQLite the write lock is taken first; on PostgreSQL the row is locked).
    let txn = super::begin_write(db).await?;
    let Some(current) = webhooks::Entity::find_by_id(id.0).lock_exclusive().one(&txn).await? else {
        return Ok(None);
    };
    let at = now();
    let mut model: webhooks::ActiveModel = current.clone().into();
    if let Some(name) = patch.name {
        model.name = Set(name.trim().to_owned());
    }
    if let Some(url) = patch.url {
        model.url = Set(url.trim().to_owned());
    }
    if let Some(description) = patch.description {
        model.description = Set(description);
    }
    if let Some(types) = patch.event_types {
        model.event_types = Set(json(&types));
    }
    if let Some(auth) = patch.auth {
        model.auth = Set(json(&auth));
    }
    if let Some(headers) = patch.headers {
        model.headers = Set(json(&headers));
    }
    if let Some(ms) = patch.timeout_ms {
        model.timeout_ms = Set(ms);
    }
    if let Some(schedule) = patch.retry_schedule {
        model.retry_schedule = Set(schedule.as_ref().map(json));
    }
    if let Some(emails) = patch.notify_emails {
        model.notify_emails = Set(json(&emails));
    }
    if let Some(on_failing) = patch.notify_on_failing {
        model.notify_on_failing = Set(on_failing);
    }
    if let Some(rate) = patch.rate_limit {
        model.rate_limit = Set(rate.map(|n| n as i32));
    }
    if let Some(burst) = patch.rate_limit_burst {
        model.rate_limit_burst = Set(burst.map(|n| n as i32));
    }
    // Switching ordered delivery on or off starts a new line: no earlier failure blocks it.
    let reordering = patch.ordered.filter(|&o| o != current.ordered_since.is_some());
    if let Some(ordered) = reordering {
        model.ordered_since = Set(ordered.then_some(at));
    }
    match patch.enabled {
        Some(false) if current.enabled => {
            model.enabled = Set(false);
            model.state = Set(WebhookState::Stopped);
            model.stopped_by = Set(Some(actor.to_owned()));
            model.stopped_at = Set(Some(at));
        }
        Some(true) if !current.enabled => {
            model.enabled = Set(true);
            if current.state == WebhookState::Stopped {
                model.state = Set(WebhookState::Active);
                model.stopped_by = Set(None);
                model.stopped_at = Set(None);
            }
        }
        _ => {}
    }
    model.updated_at = Set(at);
    let stopping = matches!(patch.enabled, Some(false)) && current.enabled;
    let updated = model.update(&txn).await?;
    if let Some(ordered) = reordering {
        webhook_usage::Entity::update_many()
            .col_expr(
                webhook_usage::Column::LineBlockedBy,
                sea_orm::sea_query::Expr::value(Option::<Uuid>::None),
            )
            .filter(webhook_usage::Column::WebhookId.eq(id.0))
            .exec(&txn)
            .await?;
        if ordered {
            super::lines::number_unplaced(&txn, id.0).await?;
        }
    }
    if stopping {
        // A stopped webhook receives nothing: what was queued for it waits as held.
        hold_queue(&txn, id, at).await?;
    }
    let (kind, summary) = if stopping {
        ("webhook.stopped", format!("Stopped webhook {}", updated.name))
    } else {
        ("webhook.updated", format!("Updated webhook {}", updated.name))
    };
    log(&txn, actor, kind, &updated, summary).await?;
    txn.commit().await?;
    Ok(Some((&updated).into()))
}

/// Moves a webhook's pending and retrying deliveries that are not in flight to held
/// (recoverable on reactivation).
pub async fn hold_queue(
    db: &impl ConnectionTrait,
    id: WebhookId,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<u64, DbErr> {
    use sea_orm::{sea_query::Expr, QueryFilter};

    use super::entities::deliveries;
    use crate::models::DeliveryStatus;

    Ok(deliveries::Entity::update_many()
        .col_expr(deliveries::Column::Status, Expr::value(DeliveryStatus::Held.as_str()))
        .col_expr(
            deliveries::Column::NextAttemptAt,
            Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
        )
        .col_expr(deliveries::Column::UpdatedAt, Expr::value(at))
        .filter(deliveries::Column::WebhookId.eq(id.0))
        .filter(deliveries::Column::Status.is_in([DeliveryStatus::Pending, DeliveryStatus::Retrying]))
        // One in flight keeps its claim: its attempt's outcome decides what becomes of it.
        .filter(
            sea_orm::Condition::any()
                .add(deliveries::Column::LeaseExpiresAt.is_null())
                .add(deliveries::Column::LeaseExpiresAt.lte(at)),
        )
        .exec(db)
        .await?
        .rows_affected)
}

/// One activity-log line about a webhook.
async fn log(
    db: &impl ConnectionTrait,
    actor: &str,
    kind: &str,
    webhook: &webhooks::Model,
    summary: String,
) -> Result<(), DbErr> {
    super::activity::record(
        db,
        super::activity::Activity {
            actor: Some(actor),
            kind,
            subject: Some(webhook.id.to_string()),
            summary,
        },
    )
    .await
}

/// Deletes a webhook with its deliveries and attempts.
pub async fn delete(db: &DatabaseConnection, id: WebhookId, actor: &str) -> Result<bool, DbErr> {
    let txn = super::begin_write(db).await?;
    let Some(current) = webhooks::Entity::find_by_id(id.0).one(&txn).await? else { return Ok(false) };
    webhooks::Entity::delete_by_id(id.0).exec(&txn).await?;
    log(
        &txn,
        actor,
        "webhook.deleted",
        &current,
        format!("Deleted webhook {} ({})", current.name, crate::models::redact_url_credentials(&current.url)),
    )
    .await?;
    txn.commit().await?;
    Ok(true)
}

/// Replaces the signing secret; the old one keeps signing beside it for `grace`.
pub async fn rotate_secret(
    db: &DatabaseConnection,
    id: WebhookId,
    grace: Duration,
    actor: &str,
) -> Result<Option<String>, DbErr> {
    let txn = super::begin_write(db).await?;
    let Some(current) = webhooks::Entity::find_by_id(id.0).lock_exclusive().one(&txn).await? else {
        return Ok(None);
    };
    let secret = new_secret();
    let at = now();
    let mut model: webhooks::ActiveModel = current.clone().into();
    model.previous_secret = Set(Some(current.secret));
    model.previous_secret_expires_at = Set(Some(at + grace));
    model.secret = Set(secret.clone());
    model.updated_at = Set(at);
    let updated = model.update(&txn).await?;
    let hours = grace.num_minutes() as f64 / 60.0;
    log(
        &txn,
        actor,
        "webhook.secret_rotated",
        &updated,
        format!(
            "Rotated the signing secret of {}; the old one signs beside it for {hours:.1} h",
            updated.name
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(Some(secret))
}

/// Makes a stopped or deactivated webhook active again and resets its error streak. With
/// `recover_since`, its held and failed deliveries created since then are queued to be sent
/// again; returns how many.
pub async fn reactivate(
    db: &DatabaseConnection,
    id: WebhookId,
    recover_since: Option<chrono::DateTime<chrono::Utc>>,
    actor: &str,
) -> Result<Option<(Webhook, u64)>, DbErr> {
    use sea_orm::{sea_query::Expr, QueryFilter};

    use super::entities::deliveries;
    use crate::models::DeliveryStatus;

    let at = now();
    let txn = super::begin_write(db).await?;
    let Some(current) = webhooks::Entity::find_by_id(id.0).lock_exclusive().one(&txn).await? else {
        return Ok(None);
    };
    let mut model: webhooks::ActiveModel = current.into();
    model.enabled = Set(true);
    model.state = Set(WebhookState::Active);
    model.stopped_by = Set(None);
    model.stopped_at = Set(None);
    model.deactivated_at = Set(None);
    model.updated_at = Set(at);
    let updated = model.update(&txn).await?;
    webhook_usage::Entity::update_many()
        .col_expr(webhook_usage::Column::ConsecutiveErrors, Expr::value(0))
        .col_expr(
            webhook_usage::Column::FirstFailureAt,
            Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
        )
        .filter(webhook_usage::Column::WebhookId.eq(id.0))
        .exec(&txn)
        .await?;
    let recovered = match recover_since {
        Some(since) => {
            deliveries::Entity::update_many()
                .col_expr(deliveries::Column::Status, Expr::value(DeliveryStatus::Pending.as_str()))
                .col_expr(deliveries::Column::NextAttemptAt, Expr::value(at))
                .col_expr(deliveries::Column::QuickRetryCount, Expr::value(0))
                .col_expr(deliveries::Column::RetrySlot, Expr::value(0))
                .col_expr(deliveries::Column::PendingTrigger, Expr::value(Option::<String>::None))
                .col_expr(deliveries::Column::UpdatedAt, Expr::value(at))
                .filter(deliveries::Column::WebhookId.eq(id.0))
                .filter(deliveries::Column::Status.is_in([DeliveryStatus::Held, DeliveryStatus::Failed]))
                .filter(deliveries::Column::CreatedAt.gte(since))
                .exec(&txn)
                .await?
                .rows_affected
        }
        None => 0,
    };
    if recovered > 0 {
        super::lines::number_unplaced(&txn, id.0).await?;
    }
    super::activity::record(
        &txn,
        super::activity::Activity {
            actor: Some(actor),
            kind: "webhook.reactivated",
            subject: Some(updated.name.clone()),
            summary: match recover_since {
                Some(since) => format!(
                    "Webhook {} reactivated; {recovered} deliveries since {since} queued again",
                    updated.name
                ),
                None => format!("Webhook {} reactivated", updated.name),
            },
        },
    )
    .await?;
    txn.commit().await?;
    Ok(Some(((&updated).into(), recovered)))
}

/// The webhooks deactivated after too many errors, by name: id and name.
pub async fn deactivated(db: &DatabaseConnection) -> Result<Vec<(WebhookId, String)>, DbErr> {
    Ok(webhooks::Entity::find()
        .filter(webhooks::Column::State.eq(WebhookState::TooManyErrors))
        .order_by_asc(webhooks::Column::Name)
        .all(db)
        .await?
        .into_iter()
        .map(|w| (WebhookId(w.id), w.name))
        .collect())
}

/// Where recovery starts by default: at the webhook's first failure (or when it was deactivated
/// or stopped), or earlier, at the creation of the oldest delivery that failed or was held since
/// then (recovery selects by creation time, and a delivery created before the first failure can
/// have failed after it).
pub async fn recover_from(
    db: &impl ConnectionTrait,
    w: &webhooks::Model,
) -> Result<chrono::DateTime<chrono::Utc>, DbErr> {
    use super::entities::deliveries;
    use crate::models::DeliveryStatus;

    let usage = webhook_usage::Entity::find_by_id(w.id).one(db).await?;
    let base =
        usage.and_then(|u| u.first_failure_at).or(w.deactivated_at).or(w.stopped_at).unwrap_or(w.created_at);
    let oldest: Option<chrono::DateTime<chrono::Utc>> = deliveries::Entity::find()
        .select_only()
        .column_as(deliveries::Column::CreatedAt.min(), "oldest")
        .filter(deliveries::Column::WebhookId.eq(w.id))
        .filter(deliveries::Column::Status.is_in([DeliveryStatus::Failed, DeliveryStatus::Held]))
        .filter(deliveries::Column::UpdatedAt.gte(base))
        .into_tuple::<Option<chrono::DateTime<chrono::Utc>>>()
        .one(db)
        .await?
        .flatten();
    Ok(oldest.map_or(base, |o| o.min(base)))
}

/// For a webhook that is not active: what reactivating it with recovery from its default
/// starting point would send again, not counting `except`. None while it is active.
pub async fn reactivation_of(
    db: &impl ConnectionTrait,
    w: &webhooks::Model,
    except: Option<Uuid>,
) -> Result<Option<crate::models::Reactivation>, DbErr> {
    use super::entities::deliveries;
    use crate::models::DeliveryStatus;

    if w.state == WebhookState::Active {
        return Ok(None);
    }
    let since = recover_from(db, w).await?;
    let count = |status: DeliveryStatus| {
        let mut select = deliveries::Entity::find()
            .filter(deliveries::Column::WebhookId.eq(w.id))
            .filter(deliveries::Column::Status.eq(status))
            .filter(deliveries::Column::CreatedAt.gte(since));
        if let Some(id) = except {
            select = select.filter(deliveries::Column::Id.ne(id));
        }
        select.count(db)
    };
    Ok(Some(crate::models::Reactivation {
        state: w.state,
        since,
        held: count(DeliveryStatus::Held).await?,
        failed: count(DeliveryStatus::Failed).await?,
    }))
}

impl From<webhook_usage::Model> for crate::models::WebhookUsage {
    fn from(u: webhook_usage::Model) -> Self {
        crate::models::WebhookUsage {
            total_calls: u.total_calls,
            total_errors: u.total_errors,
            consecutive_errors: u.consecutive_errors,
            last_error: u.last_error,
            last_error_at: u.last_error_at,
            last_success_at: u.last_success_at,
            first_failure_at: u.first_failure_at,
            paused_until: u.paused_until.filter(|until| *until > now()),
            pause_reason: u.pause_reason.filter(|_| u.paused_until.is_some_and(|until| until > now())),
            // Set by `usage` and `list_with_usage`, which know whether the blocker still blocks.
            line_blocked_by: None,
            line_waiting: None,
        }
    }
}

pub async fn usage(
    db: &DatabaseConnection,
    id: WebhookId,
) -> Result<Option<crate::models::WebhookUsage>, DbErr> {
    let Some(found) = webhook_usage::Entity::find_by_id(id.0).one(db).await? else { return Ok(None) };
    let ordered =
        webhooks::Entity::find_by_id(id.0).one(db).await?.is_some_and(|w| w.ordered_since.is_some());
    let blocker = found.line_blocked_by;
    let blocking = super::lines::still_blocking(db, [(ordered, blocker)]).await?;
    let mut usage: crate::models::WebhookUsage = found.into();
    usage.line_blocked_by = blocker.filter(|b| blocking.contains(b)).map(crate::models::DeliveryId);
    if ordered {
        usage.line_waiting = Some(super::lines::waiting(db, id.0).await?);
    }
    Ok(Some(usage))
}

/// Every webhook with its usage, by name (an admin's list; webhooks number in the hundreds).
pub async fn list_with_usage(db: &DatabaseConnection) -> Result<Vec<crate::models::WebhookWithUsage>, DbErr> {
    let rows = webhooks::Entity::find().order_by_asc(webhooks::Column::Name).all(db).await?;
    let mut usage: std::collections::HashMap<Uuid, webhook_usage::Model> =
        webhook_usage::Entity::find().all(db).await?.into_iter().map(|u| (u.webhook_id, u)).collect();
    let blocking = super::lines::still_blocking(
        db,
        rows.iter().map(|w| (w.ordered_since.is_some(), usage.get(&w.id).and_then(|u| u.line_blocked_by))),
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|w| {
            let found = usage.remove(&w.id);
            let blocker = found.as_ref().and_then(|u| u.line_blocked_by).filter(|b| blocking.contains(b));
            let mut usage: crate::models::WebhookUsage = found.map(Into::into).unwrap_or_default();
            usage.line_blocked_by = blocker.map(crate::models::DeliveryId);
            crate::models::WebhookWithUsage { usage, webhook: (&w).into() }
        })
        .collect())
}
