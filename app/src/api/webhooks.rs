//! Webhooks in the admin app: list, one with its recent deliveries, create, stop, reactivate,
//! secret reveal and rotation. The same query layer as `/api/v1/webhooks`.

use chrono::{DateTime, Utc};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use super::state;

use crate::{
    error::AppError,
    models::{
        CreatedWebhook, DeliveryRow, Webhook, WebhookCreate, WebhookId, WebhookPatch, WebhookWithUsage,
    },
};

#[server(prefix = "/rpc", endpoint = "list_webhooks")]
pub async fn list_webhooks() -> Result<Vec<WebhookWithUsage>, AppError> {
    crate::auth::current_user().await?;
    Ok(crate::db::webhooks::list_with_usage(&state().db).await?)
}

/// A webhook, its usage, its last `limit` deliveries (newest first), whether there are more, and
/// (when it is not active) what reactivating it with recovery would send.
#[server(prefix = "/rpc", endpoint = "get_webhook")]
pub async fn get_webhook(
    id: WebhookId,
    limit: u64,
) -> Result<(WebhookWithUsage, Vec<DeliveryRow>, bool, Option<crate::models::Reactivation>), AppError> {
    crate::auth::current_user().await?;
    let db = &state().db;
    let found =
        crate::db::webhooks::find(db, id).await?.ok_or_else(|| AppError::NotFound("This webhook".into()))?;
    let usage = crate::db::webhooks::usage(db, id).await?.unwrap_or_default();
    let query = crate::models::DeliveryQuery {
        webhook_id: Some(id),
        limit: Some(limit.clamp(1, 250)),
        ..Default::default()
    };
    let page = crate::db::deliveries::list(db, &query).await.map_err(|_| AppError::Internal)?;
    let more = page.next_cursor.is_some();
    let reactivation = crate::db::webhooks::reactivation_of(db, &found, None).await?;
    Ok((WebhookWithUsage { webhook: (&found).into(), usage }, page.items, more, reactivation))
}

#[server(prefix = "/rpc", endpoint = "create_webhook")]
pub async fn create_webhook(input: WebhookCreate) -> Result<CreatedWebhook, AppError> {
    let user = crate::auth::current_admin().await?;
    input.validate()?;
    Ok(crate::db::webhooks::create(&state().db, input, &format!("user {}", user.email)).await?)
}

/// Changes a webhook (admins only). The admin app never sees custom header values (they are
/// write-only), so here, unlike `PATCH /api/v1/webhooks/{id}`, a header the webhook already has
/// sent with an empty value keeps the value it has.
#[server(prefix = "/rpc", endpoint = "update_webhook")]
pub async fn update_webhook(id: WebhookId, patch: WebhookPatch) -> Result<Webhook, AppError> {
    let user = crate::auth::current_admin().await?;
    let mut patch = patch;
    patch.validate()?;
    let db = &state().db;
    if let Some(headers) = patch.headers.as_mut().filter(|h| h.values().any(String::is_empty)) {
        let current = crate::db::webhooks::find(db, id)
            .await?
            .ok_or_else(|| AppError::NotFound("This webhook".into()))?;
        let kept = crate::db::webhooks::headers_of(&current);
        for (name, value) in headers.iter_mut().filter(|(_, v)| v.is_empty()) {
            if let Some(old) = kept.get(name) {
                value.clone_from(old);
            }
        }
    }
    crate::db::webhooks::update(db, id, patch, &format!("user {}", user.email))
        .await?
        .ok_or_else(|| AppError::NotFound("This webhook".into()))
}

/// Deletes a webhook with its deliveries and their attempts (admins only).
#[server(prefix = "/rpc", endpoint = "delete_webhook")]
pub async fn delete_webhook(id: WebhookId) -> Result<(), AppError> {
    let user = crate::auth::current_admin().await?;
    match crate::db::webhooks::delete(&state().db, id, &format!("user {}", user.email)).await? {
        true => Ok(()),
        false => Err(AppError::NotFound("This webhook".into())),
    }
}

/// Makes a stopped or deactivated webhook active; with `recover_since`, its held and failed
/// deliveries since then are sent again. Answers how many were queued.
#[server(prefix = "/rpc", endpoint = "reactivate_webhook")]
pub async fn reactivate_webhook(
    id: WebhookId,
    recover_since: Option<DateTime<Utc>>,
) -> Result<u64, AppError> {
    let user = crate::auth::current_admin().await?;
    let state = state();
    let (_, recovered) =
        crate::db::webhooks::reactivate(&state.db, id, recover_since, &format!("user {}", user.email))
            .await?
            .ok_or_else(|| AppError::NotFound("This webhook".into()))?;
    state.wakeup.notify_one();
    Ok(recovered)
}

/// Where a webhook's deliveries since `since` stand: the webhook page follows a recovery with it.
#[server(prefix = "/rpc", endpoint = "recovery_progress")]
pub async fn recovery_progress(
    id: WebhookId,
    since: DateTime<Utc>,
) -> Result<crate::models::StatusCounts, AppError> {
    crate::auth::current_user().await?;
    Ok(crate::db::deliveries::status_counts(&state().db, id, since).await?)
}

/// Lets an ordered webhook's line go on past the failed delivery that blocks it (admins only).
/// Answers how many deliveries wait behind it.
#[server(prefix = "/rpc", endpoint = "skip_blocked")]
pub async fn skip_blocked(id: WebhookId, delivery: crate::models::DeliveryId) -> Result<u64, AppError> {
    use crate::db::lines::{skip, SkipRefused};
    let user = crate::auth::current_admin().await?;
    let state = state();
    match skip(&state.db, id, delivery, &format!("user {}", user.email)).await? {
        Ok(waiting) => {
            state.wakeup.notify_one();
            Ok(waiting)
        }
        Err(SkipRefused::NoWebhook) => Err(AppError::NotFound("This webhook".into())),
        Err(refused) => Err(AppError::Conflict(refused.describe(delivery))),
    }
}

/// Sends a test event to this webhook alone (admins only), recorded as a delivery like any other.
#[server(prefix = "/rpc", endpoint = "send_test_event")]
pub async fn send_test_event(id: WebhookId) -> Result<crate::models::DeliveryId, AppError> {
    let user = crate::auth::current_admin().await?;
    let state = state();
    let found = crate::db::webhooks::find(&state.db, id)
        .await?
        .ok_or_else(|| AppError::NotFound("This webhook".into()))?;
    if found.state != crate::models::WebhookState::Active {
        return Err(AppError::Conflict(
            "This webhook is not active: reactivate it first, then send a test event.".into(),
        ));
    }
    let delivery = crate::db::events::send_test(&state.db, &found, &user.email).await?;
    state.wakeup.notify_one();
    Ok(delivery)
}

#[server(prefix = "/rpc", endpoint = "reveal_secret")]
pub async fn reveal_secret(id: WebhookId) -> Result<String, AppError> {
    crate::auth::current_admin().await?;
    let found = crate::db::webhooks::find(&state().db, id)
        .await?
        .ok_or_else(|| AppError::NotFound("This webhook".into()))?;
    Ok(found.secret)
}

/// A new secret; the old one keeps signing beside it for `grace_hours` (at most 7 days).
#[server(prefix = "/rpc", endpoint = "rotate_secret")]
pub async fn rotate_secret(id: WebhookId, grace_hours: u32) -> Result<String, AppError> {
    let user = crate::auth::current_admin().await?;
    if grace_hours > 7 * 24 {
        return Err(AppError::Invalid {
            field: "grace_hours".into(),
            message: "must be at most 168 (7 days)".into(),
        });
    }
    crate::db::webhooks::rotate_secret(
        &state().db,
        id,
        chrono::Duration::hours(i64::from(grace_hours)),
        &format!("user {}", user.email),
    )
    .await?
    .ok_or_else(|| AppError::NotFound("This webhook".into()))
}
