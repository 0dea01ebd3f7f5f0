//! Background jobs as rows: created by a request, run by whichever process leases them, resumed
//! from their cursor after a restart.

use chrono::{DateTime, Utc};
use sea_orm::{
    entity::prelude::*,
    sea_query::{Expr, ExprTrait},
    ActiveValue::Set,
    Condition, PaginatorTrait, QueryOrder, QuerySelect,
};

use super::{
    activity,
    entities::{deliveries, jobs, webhooks},
    now,
};
use crate::models::{AttemptTrigger, BulkRetryFilter, DeliveryStatus, Job, JobId, WebhookState};

pub const BULK_RETRY: &str = "bulk_retry";
pub const PURGE: &str = "purge";

/// Queues a retention purge unless one is queued or running already (in any process).
/// Returns the job, or None when another one is open.
pub async fn queue_purge(db: &DatabaseConnection, actor: &str) -> Result<Option<Job>, DbErr> {
    let job = jobs::ActiveModel {
        id: Set(JobId::new().0),
        kind: Set(PURGE.into()),
        status: Set("queued".into()),
        params: Set("{}".into()),
        progress_done: Set(0),
        progress_total: Set(None),
        cursor: Set(None),
        error: Set(None),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        created_by: Set(Some(actor.to_owned())),
        created_at: Set(now()),
        started_at: Set(None),
        finished_at: Set(None),
    };
    match job.insert(db).await {
        Ok(job) => Ok(Some(job.into())),
        Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Records how much a job did (for jobs that report at the end, like a purge).
pub async fn set_progress(db: &DatabaseConnection, id: Uuid, done: i64) -> Result<(), DbErr> {
    jobs::Entity::update_many()
        .col_expr(jobs::Column::ProgressDone, Expr::value(done))
        .col_expr(jobs::Column::ProgressTotal, Expr::value(done))
        .filter(jobs::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

impl From<jobs::Model> for Job {
    fn from(j: jobs::Model) -> Self {
        Job {
            id: JobId(j.id),
            kind: j.kind,
            status: j.status,
            params: serde_json::from_str(&j.params).unwrap_or(serde_json::Value::Null),
            progress_done: j.progress_done,
            progress_total: j.progress_total,
            error: j.error,
            created_by: j.created_by,
            created_at: j.created_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
            outcome: None,
        }
    }
}

/// For a bulk re-send: among the deliveries its filter selects (whatever their status now), those
/// it queued, by what became of them: delivered or failed after an attempt the job triggered,
/// or still waiting for one. One statement, so one snapshot: counted in separate reads, a
/// delivery recorded between them was counted in none (neither waiting nor yet delivered), and
/// the admin app, seeing nothing wait, stopped following with some of them missing.
async fn outcome(db: &DatabaseConnection, job: &jobs::Model) -> Result<crate::models::JobOutcome, DbErr> {
    use sea_orm::sea_query::{Condition, Expr, Func, Query};

    use super::entities::attempts;

    let filter: BulkRetryFilter = serde_json::from_str(&job.params).unwrap_or_default();
    // Attempts the job's re-queue triggered, since it was created.
    let sent_by_job = Query::select()
        .column(attempts::Column::DeliveryId)
        .from(attempts::Entity)
        .and_where(attempts::Column::Trigger.eq(AttemptTrigger::Bulk.as_str()))
        .and_where(attempts::Column::StartedAt.gte(job.created_at))
        .to_owned();
    let after_attempt = |status: DeliveryStatus| {
        Condition::all()
            .add(deliveries::Column::Status.eq(status))
            .add(deliveries::Column::Id.in_subquery(sent_by_job.clone()))
    };
    let tally = |of: Condition| Func::sum(Expr::case(of, 1).finally(0));
    // Queued and not attempted yet, or attempted and retrying on their schedule.
    let waiting = Condition::any()
        .add(deliveries::Column::PendingTrigger.eq(AttemptTrigger::Bulk.as_str()))
        .add(after_attempt(DeliveryStatus::Retrying));
    let (delivered, failed, pending) = selected(&filter)
        .select_only()
        .expr_as(tally(after_attempt(DeliveryStatus::Succeeded)), "delivered")
        .expr_as(tally(after_attempt(DeliveryStatus::Failed)), "failed")
        .expr_as(tally(waiting), "pending")
        .into_tuple::<(Option<i64>, Option<i64>, Option<i64>)>()
        .one(db)
        .await?
        .unwrap_or_default();
    let count = |n: Option<i64>| u64::try_from(n.unwrap_or(0)).unwrap_or(0);
    Ok(crate::models::JobOutcome {
        delivered: count(delivered),
        failed: count(failed),
        pending: count(pending),
    })
}

/// What a bulk re-send takes now: its filter's deliveries of active webhooks in its statuses.
fn matching(filter: &BulkRetryFilter) -> Select<deliveries::Entity> {
    selected(filter)
        .inner_join(webhooks::Entity)
        .filter(webhooks::Column::State.eq(WebhookState::Active))
        .filter(deliveries::Column::Status.is_in(filter.statuses()))
}

/// The deliveries a bulk re-send's filter selects by webhook, type, category and window, whatever
/// their status.
fn selected(filter: &BulkRetryFilter) -> Select<deliveries::Entity> {
    let mut select = deliveries::Entity::find();
    if let Some(id) = filter.webhook_id {
        select = select.filter(deliveries::Column::WebhookId.eq(id.0));
    }
    if let Some(t) = filter.event_type.as_deref().filter(|t| !t.is_empty()) {
        select = select.filter(deliveries::Column::EventType.eq(t));
    }
    if let Some(c) = filter.category.as_deref().filter(|c| !c.is_empty()) {
        select = select.filter(deliveries::Column::Category.eq(c));
    }
    if let Some(since) = filter.since {
        select = select.filter(deliveries::Column::CreatedAt.gte(since));
    }
    if let Some(until) = filter.until {
        select = select.filter(deliveries::Column::CreatedAt.lt(until));
    }
    select
}

/// How many deliveries a bulk re-send with this filter would take now (webhooks that are not
/// active are left out: they receive nothing until reactivated).
pub async fn count_matching(db: &DatabaseConnection, filter: &BulkRetryFilter) -> Result<u64, DbErr> {
    matching(filter).count(db).await
}

#[derive(Debug, thiserror::Error)]
pub enum BulkRetryError {
    #[error("{}: {}", .0.field, .0.message)]
    Invalid(crate::models::FieldError),
    /// The filter names a webhook that is not active.
    #[error("{0}")]
    Inactive(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Checks a bulk re-send's filter, then counts (`dry_run`) or creates the job; the API and the
/// admin app both come through here.
pub async fn start_bulk_retry(
    db: &DatabaseConnection,
    filter: &BulkRetryFilter,
    dry_run: bool,
    actor: &str,
) -> Result<crate::models::BulkRetryAccepted, BulkRetryError> {
    filter.validate().map_err(BulkRetryError::Invalid)?;
    if let Some(id) = filter.webhook_id {
        match super::webhooks::find(db, id).await? {
            None => {
                return Err(BulkRetryError::Invalid(crate::models::FieldError {
                    field: "webhook_id".into(),
                    message: format!("no webhook has the id `{id}`"),
                }))
            }
            Some(w) if w.state != crate::models::WebhookState::Active => {
                return Err(BulkRetryError::Inactive(format!(
                    "The webhook {} is {}: reactivate it first (its reactivation can recover held and failed deliveries).",
                    w.name, w.state
                )))
            }
            Some(_) => {}
        }
    }
    if dry_run {
        return Ok(crate::models::BulkRetryAccepted {
            job: None,
            matching: count_matching(db, filter).await?,
        });
    }
    let (job, matching) = create_bulk_retry(db, filter, actor).await?;
    Ok(crate::models::BulkRetryAccepted { job: Some(job), matching })
}

pub async fn create_bulk_retry(
    db: &DatabaseConnection,
    filter: &BulkRetryFilter,
    actor: &str,
) -> Result<(Job, u64), DbErr> {
    let total = count_matching(db, filter).await?;
    let at = now();
    let txn = super::begin_write(db).await?;
    let job = jobs::ActiveModel {
        id: Set(JobId::new().0),
        kind: Set(BULK_RETRY.into()),
        status: Set("queued".into()),
        params: Set(serde_json::to_string(filter).unwrap_or_default()),
        progress_done: Set(0),
        progress_total: Set(Some(total as i64)),
        cursor: Set(None),
        error: Set(None),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        created_by: Set(Some(actor.to_owned())),
        created_at: Set(at),
        started_at: Set(None),
        finished_at: Set(None),
    }
    .insert(&txn)
    .await?;
    activity::record(
        &txn,
        activity::Activity {
            actor: Some(actor),
            kind: "job.bulk_retry.created",
            subject: Some(job.id.to_string()),
            summary: format!("Bulk re-send of {total} deliveries requested"),
        },
    )
    .await?;
    txn.commit().await?;
    Ok((job.into(), total))
}

pub async fn find(db: &DatabaseConnection, id: JobId) -> Result<Option<Job>, DbErr> {
    let Some(found) = jobs::Entity::find_by_id(id.0).one(db).await? else { return Ok(None) };
    let outcome = match found.kind.as_str() {
        BULK_RETRY => Some(outcome(db, &found).await?),
        _ => None,
    };
    Ok(Some(Job { outcome, ..Job::from(found) }))
}

/// Extends a running job's lease while its worker still holds it; false when another worker
/// has taken it over (the lease had expired).
pub async fn renew_lease(
    db: &DatabaseConnection,
    id: Uuid,
    worker: &str,
    lease: chrono::Duration,
) -> Result<bool, DbErr> {
    let changed = jobs::Entity::update_many()
        .col_expr(jobs::Column::LeaseExpiresAt, Expr::value(now() + lease))
        .filter(jobs::Column::Id.eq(id))
        .filter(jobs::Column::LeaseOwner.eq(worker))
        .filter(jobs::Column::Status.eq("running"))
        .exec(db)
        .await?
        .rows_affected;
    Ok(changed > 0)
}

/// Leases the oldest job that is queued, or running under an expired lease (its process died).
pub async fn claim(
    db: &DatabaseConnection,
    worker: &str,
    lease: chrono::Duration,
) -> Result<Option<jobs::Model>, DbErr> {
    let at = now();
    let open = Condition::any().add(jobs::Column::Status.eq("queued")).add(
        Condition::all().add(jobs::Column::Status.eq("running")).add(
            Condition::any()
                .add(jobs::Column::LeaseExpiresAt.is_null())
                .add(jobs::Column::LeaseExpiresAt.lt(at)),
        ),
    );
    let Some(candidate) =
        jobs::Entity::find().filter(open.clone()).order_by_asc(jobs::Column::CreatedAt).one(db).await?
    else {
        return Ok(None);
    };
    let claimed = jobs::Entity::update_many()
        .col_expr(jobs::Column::Status, Expr::value("running"))
        .col_expr(jobs::Column::LeaseOwner, Expr::value(worker))
        .col_expr(jobs::Column::LeaseExpiresAt, Expr::value(at + lease))
        .col_expr(jobs::Column::StartedAt, Expr::value(candidate.started_at.unwrap_or(at)))
        .filter(jobs::Column::Id.eq(candidate.id))
        .filter(open)
        .exec(db)
        .await?
        .rows_affected;
    if claimed == 0 {
        return Ok(None); // another process took it
    }
    jobs::Entity::find_by_id(candidate.id).one(db).await
}

/// Re-queues the next `batch` deliveries of a bulk re-send after its cursor, and moves the
/// cursor in the same transaction. Returns how many were re-queued, or None when the job is done.
pub async fn bulk_retry_step(
    db: &DatabaseConnection,
    job: &jobs::Model,
    worker: &str,
    batch: u64,
    lease: chrono::Duration,
) -> Result<Option<u64>, DbErr> {
    let filter: BulkRetryFilter = serde_json::from_str(&job.params).unwrap_or_default();
    let after: Option<Uuid> = job.cursor.as_deref().and_then(|c| Uuid::parse_str(c).ok());
    let current = jobs::Entity::find_by_id(job.id).one(db).await?;
    let Some(current) = current.filter(|j| j.lease_owner.as_deref() == Some(worker)) else {
        return Err(DbErr::Custom("job lease lost".into()));
    };
    let after = current.cursor.as_deref().and_then(|c| Uuid::parse_str(c).ok()).or(after);
    let mut select = matching(&filter).select_only().column(deliveries::Column::Id);
    if let Some(after) = after {
        select = select.filter(deliveries::Column::Id.gt(after));
    }
    let ids: Vec<Uuid> =
        select.order_by_asc(deliveries::Column::Id).limit(batch).into_tuple().all(db).await?;
    let at = now();
    let Some(last) = ids.last().copied() else { return Ok(None) };
    let txn = super::begin_write(db).await?;
    let mut requeued = 0;
    for (status, new_status) in [
        (DeliveryStatus::Failed, DeliveryStatus::Pending),
        (DeliveryStatus::Held, DeliveryStatus::Pending),
        (DeliveryStatus::Retrying, DeliveryStatus::Retrying),
    ] {
        requeued += deliveries::Entity::update_many()
            .col_expr(deliveries::Column::Status, Expr::value(new_status.as_str()))
            .col_expr(deliveries::Column::NextAttemptAt, Expr::value(at))
            .col_expr(deliveries::Column::PendingTrigger, Expr::value(AttemptTrigger::Bulk.as_str()))
            .col_expr(deliveries::Column::UpdatedAt, Expr::value(at))
            .filter(deliveries::Column::Id.is_in(ids.clone()))
            .filter(deliveries::Column::Status.eq(status))
            .filter(
                Condition::any()
                    .add(deliveries::Column::LeaseExpiresAt.is_null())
                    .add(deliveries::Column::LeaseExpiresAt.lt(at)),
            )
            .exec(&txn)
            .await?
            .rows_affected;
    }
    if requeued > 0 {
        super::lines::place_requeued(&txn).await?;
    }
    jobs::Entity::update_many()
        .col_expr(jobs::Column::Cursor, Expr::value(last.to_string()))
        .col_expr(jobs::Column::ProgressDone, Expr::col(jobs::Column::ProgressDone).add(requeued as i64))
        .col_expr(jobs::Column::LeaseExpiresAt, Expr::value(at + lease))
        .filter(jobs::Column::Id.eq(job.id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(Some(requeued))
}

pub async fn finish(db: &DatabaseConnection, id: Uuid, error: Option<String>) -> Result<Option<Job>, DbErr> {
    let at: DateTime<Utc> = now();
    jobs::Entity::update_many()
        .col_expr(jobs::Column::Status, Expr::value(if error.is_some() { "failed" } else { "succeeded" }))
        .col_expr(jobs::Column::Error, Expr::value(error))
        .col_expr(jobs::Column::FinishedAt, Expr::value(at))
        .col_expr(jobs::Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(jobs::Column::LeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(jobs::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(jobs::Entity::find_by_id(id).one(db).await?.map(Job::from))
}
