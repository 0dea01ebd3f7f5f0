//! The delivery log, one delivery with its attempts, re-sends (one and bulk), jobs.

use leptos::prelude::*;

#[cfg(feature = "ssr")]
use super::state;

use crate::{
    error::AppError,
    models::{
        BulkRetryAccepted, BulkRetryFilter, DeliveryDetail, DeliveryId, DeliveryQuery, DeliveryRow, Job,
        JobId, Page,
    },
};

#[server(prefix = "/rpc", endpoint = "list_deliveries")]
pub async fn list_deliveries(query: DeliveryQuery) -> Result<Page<DeliveryRow>, AppError> {
    use crate::db::deliveries::{list, ListError};

    crate::auth::current_user().await?;
    list(&state().db, &query).await.map_err(|e| match e {
        ListError::BadCursor => AppError::Invalid { field: "cursor".into(), message: e.to_string() },
        ListError::Db(e) => e.into(),
    })
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
