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

impl From<activity_log::Model> for crate::models::ActivityEntry {
    fn from(m: activity_log::Model) -> Self {
        crate::models::ActivityEntry {
            id: m.id,
            occurred_at: m.occurred_at,
            actor: m.actor,
            kind: m.kind,
            subject: m.subject,
            summary: m.summary,
            rows_affected: m.rows_affected,
            detail: m.detail,
        }
    }
}

/// The activity log, newest first, keyset-paginated by id (UUIDv7 ids sort by time); `kind`
/// matches exactly or, ending in `.`, as a prefix (`webhook.`).
pub async fn list(
    db: &DatabaseConnection,
    kind: Option<&str>,
    before: Option<Uuid>,
    limit: u64,
) -> Result<crate::models::Page<crate::models::ActivityEntry>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let mut select = activity_log::Entity::find().order_by_desc(activity_log::Column::Id).limit(limit + 1);
    match kind {
        Some(prefix) if prefix.ends_with('.') => {
            select = select.filter(activity_log::Column::Kind.starts_with(prefix))
        }
        Some(kind) => select = select.filter(activity_log::Column::Kind.eq(kind)),
        None => {}
    }
    if let Some(before) = before {
        select = select.filter(activity_log::Column::Id.lt(before));
    }
    let (rows, next_cursor) = super::split_page(select.all(db).await?, limit, |a| a.id.to_string());
    Ok(crate::models::Page { items: rows.into_iter().map(Into::into).collect(), next_cursor })
}
