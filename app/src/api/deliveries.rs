//! The delivery log, one delivery with its attempts, re-sends (one and bulk), jobs.

use leptos::prelude::*;

#[cfg(feature = "ssr")]
use super::state;

use crate::{
    error::AppError,
    models::{
        BulkRetryAccepted, BulkRetryFilter, DeliveryDetail, DeliveryId, DeliveryLogPage, DeliveryQuery,
        DeliveryRow, Job, JobId, LogChoices,
    },
};

/// The log counts at most this many matches; beyond, it says "more than".
pub const COUNT_CAP: u64 = 10_000;

#[server(prefix = "/rpc", endpoint = "list_deliveries")]
pub async fn list_deliveries(query: DeliveryQuery) -> Result<DeliveryLogPage, AppError> {
    use crate::db::deliveries::{list_counted, ListError};

    crate::auth::current_user().await?;
    let db = &state().db;
    let (page, (n, more)) = list_counted(db, &query, COUNT_CAP).await.map_err(|e| match e {
        ListError::BadCursor => AppError::Invalid { field: "cursor".into(), message: e.to_string() },
        ListError::Db(e) => e.into(),
    })?;
    Ok(DeliveryLogPage {
        items: page.items,
        next_cursor: page.next_cursor,
        total: crate::models::DeliveryCount { count: n, more },
        choices: log_choices(db).await?,
    })
}

#[cfg(feature = "ssr")]
async fn log_choices(db: &sea_orm::DatabaseConnection) -> Result<LogChoices, sea_orm::DbErr> {
    use crate::db::entities::webhooks;
    use sea_orm::{EntityTrait, QueryOrder, QuerySelect};

    let hooks: Vec<(uuid::Uuid, String)> = webhooks::Entity::find()
        .select_only()
        .columns([webhooks::Column::Id, webhooks::Column::Name])
        .order_by_asc(webhooks::Column::Name)
        .into_tuple()
        .all(db)
        .await?;
    Ok(LogChoices {
        webhooks: hooks.into_iter().map(|(id, name)| (crate::models::WebhookId(id), name)).collect(),
        event_types: crate::db::deliveries::known_event_types(db).await?,
    })
}

/// Every webhook and every event type Herald has seen: the pickers of the dashboard and of the
/// webhook form.
#[server(prefix = "/rpc", endpoint = "log_choices")]
pub async fn get_log_choices() -> Result<LogChoices, AppError> {
    crate::auth::current_user().await?;
    Ok(log_choices(&state().db).await?)
}

#[server(prefix = "/rpc", endpoint = "get_delivery")]
pub async fn get_delivery(id: DeliveryId) -> Result<DeliveryDetail, AppError> {
    crate::auth::current_user().await?;
    crate::db::deliveries::detail(&state().db, id)
        .await?
        .ok_or_else(|| AppError::NotFound("This delivery".into()))
}

/// Re-sends one delivery now (admins only), as an attempt with trigger `manual`.
#[server(prefix = "/rpc", endpoint = "retry_delivery")]
pub async fn retry_delivery(id: DeliveryId) -> Result<DeliveryRow, AppError> {
    use crate::db::deliveries::{retry, RetryError};

    crate::auth::current_admin().await?;
    let state = state();
    match retry(&state.db, id, crate::models::AttemptTrigger::Manual).await {
        Ok(row) => {
            state.wakeup.notify_one();
            Ok(row)
        }
        Err(RetryError::NotFound) => Err(AppError::NotFound("This delivery".into())),
        Err(RetryError::Db(e)) => Err(e.into()),
        Err(e) => Err(AppError::Conflict(e.to_string())),
    }
}

/// A re-send of a delivery whose webhook is not active (admins only): reactivates the webhook,
/// with `recover` also queueing its held and failed deliveries since its first failure, then
/// re-sends this one. Answers how many others were queued.
#[server(prefix = "/rpc", endpoint = "reactivate_and_resend")]
pub async fn reactivate_and_resend(id: DeliveryId, recover: bool) -> Result<u64, AppError> {
    use crate::db::{
        deliveries::{retry, RetryError},
        entities::{deliveries, webhooks},
    };
    use sea_orm::EntityTrait;

    let user = crate::auth::current_admin().await?;
    let state = state();
    let db = &state.db;
    let (_, webhook) = deliveries::Entity::find_by_id(id.0)
        .find_also_related(webhooks::Entity)
        .one(db)
        .await?
        .ok_or_else(|| AppError::NotFound("This delivery".into()))?;
    let webhook = webhook.ok_or_else(|| AppError::NotFound("Its webhook".into()))?;
    let since = match recover {
        true => Some(crate::db::webhooks::recover_from(db, &webhook).await?),
        false => None,
    };
    let actor = format!("user {}", user.email);
    let id_of_webhook = crate::models::WebhookId(webhook.id);
    let (_, recovered) = crate::db::webhooks::reactivate(db, id_of_webhook, since, &actor)
        .await?
        .ok_or_else(|| AppError::NotFound("Its webhook".into()))?;
    let requeued_with_it = match retry(db, id, crate::models::AttemptTrigger::Manual).await {
        Ok(_) => false,
        // Recovery queued it already (a failed delivery since the first failure).
        Err(RetryError::Queued) => true,
        Err(RetryError::NotFound) => return Err(AppError::NotFound("This delivery".into())),
        Err(RetryError::Db(e)) => return Err(e.into()),
        Err(e) => return Err(AppError::Conflict(e.to_string())),
    };
    state.wakeup.notify_one();
    Ok(recovered.saturating_sub(u64::from(requeued_with_it)))
}

/// Counts (`start: false`) or starts (`start: true`, admins only) a bulk re-send.
#[server(prefix = "/rpc", endpoint = "bulk_retry")]
pub async fn bulk_retry(filter: BulkRetryFilter, start: bool) -> Result<BulkRetryAccepted, AppError> {
    use crate::db::jobs::{start_bulk_retry, BulkRetryError};

    let user = if start { crate::auth::current_admin().await? } else { crate::auth::current_user().await? };
    let state = state();
    let accepted = start_bulk_retry(&state.db, &filter, !start, &format!("user {}", user.email))
        .await
        .map_err(|e| match e {
            BulkRetryError::Invalid(f) => f.into(),
            BulkRetryError::Inactive(m) => AppError::Conflict(m),
            BulkRetryError::Db(e) => e.into(),
        })?;
    if accepted.job.is_some() {
        state.jobs_wakeup.notify_one();
    }
    Ok(accepted)
}

#[server(prefix = "/rpc", endpoint = "get_job")]
pub async fn get_job(id: JobId) -> Result<Job, AppError> {
    crate::auth::current_user().await?;
    crate::db::jobs::find(&state().db, id).await?.ok_or_else(|| AppError::NotFound("This job".into()))
}
