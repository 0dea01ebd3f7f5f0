//! Retention: the policy (kept in `settings`, defaults from configuration) and the purge that
//! applies it in bounded batches, each its own short transaction, so deliveries go on at full
//! speed while it runs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    entity::prelude::*,
    sea_query::{Expr, ExprTrait, Query},
    ActiveValue::Set,
    Condition, PaginatorTrait, QuerySelect,
};

use super::{
    entities::{attempts, deliveries, events, jobs, settings},
    now,
};
use crate::models::{DeliveryStatus, PurgeReport, RetentionPolicy};

const KEY: &str = "retention";
const KEPT: [DeliveryStatus; 2] = [DeliveryStatus::Pending, DeliveryStatus::Retrying];

/// The policy set in the admin app, or `defaults` (from configuration) when none was.
pub async fn policy(db: &DatabaseConnection, defaults: RetentionPolicy) -> Result<RetentionPolicy, DbErr> {
    Ok(settings::Entity::find_by_id(KEY)
        .one(db)
        .await?
        .and_then(|row| serde_json::from_str(&row.value).ok())
        .unwrap_or(defaults))
}

pub async fn save_policy(
    db: &DatabaseConnection,
    policy: &RetentionPolicy,
    actor: &str,
) -> Result<(), DbErr> {
    let value = serde_json::to_string(policy).unwrap_or_default();
    let row = settings::ActiveModel {
        key: Set(KEY.into()),
        value: Set(value),
        updated_at: Set(now()),
        updated_by: Set(Some(actor.to_owned())),
    };
    settings::Entity::insert(row)
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(settings::Column::Key)
                .update_columns([
                    settings::Column::Value,
                    settings::Column::UpdatedAt,
                    settings::Column::UpdatedBy,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    super::activity::record(
        db,
        super::activity::Activity {
            actor: Some(actor),
            kind: "settings.retention",
            subject: None,
            summary: format!(
                "Retention set to {} days for deliveries, {} for events, {} for jobs{}",
                policy.deliveries_days,
                policy.events_days,
                policy.jobs_days,
                policy.bodies_days.map(|d| format!(", {d} for bodies")).unwrap_or_default()
            ),
        },
    )
    .await
}

fn days_ago(at: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    at - chrono::Duration::days(i64::from(days))
}

/// Finished deliveries created and last attempted before the cutoff (a delivery re-sent
/// yesterday stays, with its recent attempts, even if its event is old).
fn purgeable_deliveries(cutoff: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(Expr::col((deliveries::Entity, deliveries::Column::CreatedAt)).lt(cutoff))
        .add(
            Condition::any()
                .add(Expr::col((deliveries::Entity, deliveries::Column::LastAttemptAt)).is_null())
                .add(Expr::col((deliveries::Entity, deliveries::Column::LastAttemptAt)).lt(cutoff)),
        )
        .add(Expr::col((deliveries::Entity, deliveries::Column::Status)).is_not_in(KEPT.map(|s| s.as_str())))
}

/// Attempts of purgeable deliveries, by the attempt's own time.
fn attempt_ids(cutoff: DateTime<Utc>, limit: u64) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column((attempts::Entity, attempts::Column::Id))
        .from(attempts::Entity)
        .inner_join(
            deliveries::Entity,
            Expr::col((deliveries::Entity, deliveries::Column::Id))
                .equals((attempts::Entity, attempts::Column::DeliveryId)),
        )
        .and_where(Expr::col((attempts::Entity, attempts::Column::StartedAt)).lt(cutoff))
        .and_where(
            Expr::col((deliveries::Entity, deliveries::Column::Status)).is_not_in(KEPT.map(|s| s.as_str())),
        )
        .limit(limit)
        .to_owned()
}

fn delivery_ids(cutoff: DateTime<Utc>, limit: u64) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column((deliveries::Entity, deliveries::Column::Id))
        .from(deliveries::Entity)
        .cond_where(purgeable_deliveries(cutoff))
        .limit(limit)
        .to_owned()
}

/// Events before the cutoff that no kept delivery refers to (their remaining deliveries, all
/// purgeable, go with them).
fn event_ids(
    cutoff: DateTime<Utc>,
    deliveries_cutoff: DateTime<Utc>,
    limit: u64,
) -> sea_orm::sea_query::SelectStatement {
    let kept = Query::select()
        .expr(Expr::val(1))
        .from(deliveries::Entity)
        .and_where(
            Expr::col((deliveries::Entity, deliveries::Column::EventId))
                .equals((events::Entity, events::Column::Id)),
        )
        .cond_where(
            Condition::any()
                .add(
                    Expr::col((deliveries::Entity, deliveries::Column::Status))
                        .is_in(KEPT.map(|s| s.as_str())),
                )
                .add(Expr::col((deliveries::Entity, deliveries::Column::CreatedAt)).gte(deliveries_cutoff)),
        )
        .to_owned();
    Query::select()
        .column((events::Entity, events::Column::Id))
        .from(events::Entity)
        .and_where(Expr::col((events::Entity, events::Column::CreatedAt)).lt(cutoff))
        .and_where(Expr::exists(kept).not())
        .limit(limit)
        .to_owned()
}

fn job_ids(cutoff: DateTime<Utc>, limit: u64) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(jobs::Column::Id)
        .from(jobs::Entity)
        .and_where(jobs::Column::Status.is_in(["succeeded", "failed"]))
        .and_where(jobs::Column::FinishedAt.lt(cutoff))
        .limit(limit)
        .to_owned()
}

fn body_ids(cutoff: DateTime<Utc>, limit: u64) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(attempts::Column::Id)
        .from(attempts::Entity)
        .and_where(attempts::Column::StartedAt.lt(cutoff))
        .cond_where(
            Condition::any()
                .add(attempts::Column::RequestBody.is_not_null())
                .add(attempts::Column::ResponseBody.is_not_null()),
        )
        .limit(limit)
        .to_owned()
}

async fn count(
    db: &DatabaseConnection,
    mut select: sea_orm::sea_query::SelectStatement,
) -> Result<u64, DbErr> {
    select.reset_limit();
    let wrapped =
        Query::select().expr_as(Expr::cust("COUNT(*)"), "n").from_subquery(select, "purgeable").to_owned();
    let row = db.query_one(&wrapped).await?;
    Ok(row.map(|r| r.try_get::<i64>("", "n").unwrap_or(0)).unwrap_or(0) as u64)
}

/// Applies the policy. A dry run only counts. Each batch deletes at most `batch` rows in its own
/// transaction and is followed by `pause`, so the delivery engine's writes interleave.
pub async fn purge(
    db: &DatabaseConnection,
    policy: &RetentionPolicy,
    dry_run: bool,
    batch: u64,
    pause: Duration,
) -> Result<PurgeReport, DbErr> {
    let at = now();
    let deliveries_cutoff = days_ago(at, policy.deliveries_days);
    let events_cutoff = days_ago(at, policy.events_days);
    let jobs_cutoff = days_ago(at, policy.jobs_days);
    let bodies_cutoff = policy.bodies_days.map(|d| days_ago(at, d)).filter(|c| *c > deliveries_cutoff);
    let mut report = PurgeReport::default();
    if dry_run {
        report.attempts = count(db, attempt_ids(deliveries_cutoff, batch)).await?;
        report.deliveries = count(db, delivery_ids(deliveries_cutoff, batch)).await?;
        report.events = count(db, event_ids(events_cutoff, deliveries_cutoff, batch)).await?;
        report.jobs = count(db, job_ids(jobs_cutoff, batch)).await?;
        if let Some(cutoff) = bodies_cutoff {
            report.bodies = count(db, body_ids(cutoff, batch)).await?;
        }
        return Ok(report);
    }
    loop {
        let n = attempts::Entity::delete_many()
            .filter(attempts::Column::Id.in_subquery(attempt_ids(deliveries_cutoff, batch)))
            .exec(db)
            .await?
            .rows_affected;
        report.attempts += n;
        if !step(&mut report, n, batch, pause).await {
            break;
        }
    }
    loop {
        let n = deliveries::Entity::delete_many()
            .filter(deliveries::Column::Id.in_subquery(delivery_ids(deliveries_cutoff, batch)))
            .exec(db)
            .await?
            .rows_affected;
        report.deliveries += n;
        if !step(&mut report, n, batch, pause).await {
            break;
        }
    }
    loop {
        let n = events::Entity::delete_many()
            .filter(events::Column::Id.in_subquery(event_ids(events_cutoff, deliveries_cutoff, batch)))
            .exec(db)
            .await?
            .rows_affected;
        report.events += n;
        if !step(&mut report, n, batch, pause).await {
            break;
        }
    }
    loop {
        let n = jobs::Entity::delete_many()
            .filter(jobs::Column::Id.in_subquery(job_ids(jobs_cutoff, batch)))
            .exec(db)
            .await?
            .rows_affected;
        report.jobs += n;
        if !step(&mut report, n, batch, pause).await {
            break;
        }
    }
    if let Some(cutoff) = bodies_cutoff {
        loop {
            let n = attempts::Entity::update_many()
                .col_expr(attempts::Column::RequestBody, Expr::value(Option::<String>::None))
                .col_expr(attempts::Column::ResponseBody, Expr::value(Option::<String>::None))
                .filter(attempts::Column::Id.in_subquery(body_ids(cutoff, batch)))
                .exec(db)
                .await?
                .rows_affected;
            report.bodies += n;
            if !step(&mut report, n, batch, pause).await {
                break;
            }
        }
    }
    Ok(report)
}

async fn step(report: &mut PurgeReport, deleted: u64, batch: u64, pause: Duration) -> bool {
    if deleted > 0 {
        report.batches += 1;
    }
    if deleted < batch {
        return false;
    }
    tokio::time::sleep(pause).await;
    true
}

/// Rows in the log tables, for the activity log and the CLI.
pub async fn attempt_count(db: &DatabaseConnection) -> Result<u64, DbErr> {
    attempts::Entity::find().select_only().column(attempts::Column::Id).count(db).await
}
