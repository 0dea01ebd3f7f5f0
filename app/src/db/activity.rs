use sea_orm::{entity::prelude::*, ActiveValue::Set};

use super::{entities::activity_log, now};

/// One line of the system activity log: who did what to which thing.
pub struct Activity<'a> {
    pub actor: Option<&'a str>,
    pub kind: &'a str,
    pub subject: Option<String>,
    pub summary: String,
}

pub async fn record(db: &impl ConnectionTrait, activity: Activity<'_>) -> Result<(), DbErr> {
    record_with(db, activity, None, None).await
}

/// A line with a count of rows affected and a detail document (job runs).
pub async fn record_with(
    db: &impl ConnectionTrait,
    activity: Activity<'_>,
    rows_affected: Option<i64>,
    detail: Option<String>,
) -> Result<(), DbErr> {
    activity_log::ActiveModel {
        id: Set(Uuid::now_v7()),
        occurred_at: Set(now()),
        actor: Set(activity.actor.map(str::to_owned)),
        kind: Set(activity.kind.to_owned()),
        subject: Set(activity.subject),
        summary: Set(activity.summary),
        detail: Set(detail),
        rows_affected: Set(rows_affected),
    }
    .insert(db)
    .await?;
    Ok(())
}
