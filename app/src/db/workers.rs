//! Heartbeats of the Herald processes sharing the database, and taking over the leases of a
//! process whose heartbeat has stopped.

use chrono::{DateTime, Utc};
use sea_orm::{
    prelude::Expr,
    sea_query::{OnConflict, Query},
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
};

use super::entities::{deliveries, workers};

/// Writes this process's heartbeat (the row is created on the first).
pub async fn beat(db: &impl ConnectionTrait, worker: &str, started_at: DateTime<Utc>) -> Result<(), DbErr> {
    let at = super::now();
    workers::Entity::insert(workers::ActiveModel {
        id: Set(worker.to_owned()),
        started_at: Set(started_at),
        heartbeat_at: Set(at),
    })
    .on_conflict(
        OnConflict::column(workers::Column::Id).update_column(workers::Column::HeartbeatAt).to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Releases the live leases held by processes whose last heartbeat is older than `stale`
/// (or that never wrote one), so their deliveries are sent again now rather than when the
/// leases expire. Returns how many were released. Rows of processes silent for a day are
/// forgotten.
pub async fn take_over_stale_leases(
    db: &impl ConnectionTrait,
    stale: chrono::Duration,
) -> Result<u64, DbErr> {
    let at = super::now();
    let alive = Query::select()
        .column(workers::Column::Id)
        .from(workers::Entity)
        .and_where(workers::Column::HeartbeatAt.gt(at - stale))
        .to_owned();
    let released = deliveries::Entity::update_many()
        .col_expr(deliveries::Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(deliveries::Column::LeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(deliveries::Column::LeaseExpiresAt.gt(at))
        .filter(deliveries::Column::LeaseOwner.not_in_subquery(alive))
        .exec(db)
        .await?
        .rows_affected;
    workers::Entity::delete_many()
        .filter(workers::Column::HeartbeatAt.lt(at - chrono::Duration::days(1)))
        .exec(db)
        .await?;
    Ok(released)
}

/// Whether `worker` is the only live process (no other heartbeat newer than `stale`) and no
/// webhook delivers in order: then every live lease is this process's own, and the claim knows
/// its requests in flight without reading the leases (the scan of the lease index, through the
/// entries that finished deliveries leave behind until a vacuum, was a third of the database's
/// time in a claim; BENCHMARKS.md). Another process writes its heartbeat before it leases
/// anything, so a claim that starts after that sees it. Ordered webhooks keep the count: their
/// line waits until nothing of it is leased, released leases included.
pub async fn alone(db: &impl ConnectionTrait, worker: &str, stale: chrono::Duration) -> Result<bool, DbErr> {
    use sea_orm::{PaginatorTrait, QuerySelect};
    let at = super::now();
    let others = workers::Entity::find()
        .filter(workers::Column::Id.ne(worker))
        .filter(workers::Column::HeartbeatAt.gt(at - stale))
        .limit(1)
        .count(db)
        .await?;
    if others > 0 {
        return Ok(false);
    }
    let ordered = super::entities::webhooks::Entity::find()
        .filter(super::entities::webhooks::Column::OrderedSince.is_not_null())
        .limit(1)
        .count(db)
        .await?;
    Ok(ordered == 0)
}

/// Removes this process's row on a clean shutdown.
pub async fn forget(db: &impl ConnectionTrait, worker: &str) -> Result<(), DbErr> {
    workers::Entity::delete_by_id(worker.to_owned()).exec(db).await?;
    Ok(())
}
