//! Keeps the delivery queue's indexes clean on PostgreSQL.
//!
//! Every delivery is written three times (accepted, leased, recorded); each write leaves the
//! row's old version and its index entries behind until a vacuum removes them. The claim's range
//! scans (live leases; a webhook's due deliveries, oldest first) start where those dead entries
//! are, so their cost grew with every delivery since the last vacuum: measured, 1,302 then 1,058
//! then 767 deliveries/s over three runs of 20,000 events, PostgreSQL's CPU per delivery 717 ->
//! 1,256 µs, and autovacuum had not run once after a minute (its naptime and its threshold, a
//! fifth of the table, both grow apart from the queue's churn). With `VACUUM deliveries` whenever
//! dead rows pile up: 1,726, 1,884, 1,766/s at ~520 µs, each vacuum 0.1 s (BENCHMARKS.md).
//!
//! So Herald vacuums the table itself when PostgreSQL's statistics count more dead rows than
//! `HERALD_VACUUM_DEAD_ROWS` (0 leaves it to autovacuum). `SKIP_LOCKED`: when another process
//! (or autovacuum) is already at it, this one does not wait. SQLite updates rows in place and
//! needs none of this.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tokio_util::sync::CancellationToken;

/// How often the dead-row count is read (one small statistics query).
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// The least time between two vacuums of the table by this process.
const AT_MOST_EVERY: Duration = Duration::from_secs(5);

pub async fn run(db: DatabaseConnection, dead_rows: u64, shutdown: CancellationToken) {
    if dead_rows == 0 || !app::db::is_postgres(&db) {
        return;
    }
    let mut last = Instant::now() - AT_MOST_EVERY;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
        if last.elapsed() < AT_MOST_EVERY {
            continue;
        }
        match dead(&db).await {
            Ok(Some((dead, live))) if dead >= dead_rows.max(live / 50) => {
                let started = Instant::now();
                match vacuum(&db).await {
                    Ok(_) => tracing::debug!(
                        dead,
                        took_ms = started.elapsed().as_millis() as u64,
                        "vacuumed deliveries"
                    ),
                    Err(e) => tracing::warn!(error = %e, "cannot vacuum deliveries"),
                }
                last = Instant::now();
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cannot read the deliveries table's statistics"),
        }
    }
}

/// `VACUUM` on a connection of its own, paced (`vacuum_cost_delay`, as autovacuum paces itself),
/// so that on a large log it takes a little longer instead of taking a core from delivery at once.
async fn vacuum(db: &DatabaseConnection) -> Result<(), sea_orm::sqlx::Error> {
    use sea_orm::sqlx::Executor;
    let mut conn = db.get_postgres_connection_pool().acquire().await?;
    conn.execute("SET vacuum_cost_delay = '2ms'").await?;
    let vacuumed = conn.execute("VACUUM (SKIP_LOCKED) deliveries").await.map(|_| ());
    conn.execute("RESET vacuum_cost_delay").await?;
    vacuumed
}

/// Dead and live row versions of `deliveries`, as PostgreSQL's statistics count them.
async fn dead(db: &DatabaseConnection) -> Result<Option<(u64, u64)>, sea_orm::DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT n_dead_tup, n_live_tup FROM pg_stat_user_tables WHERE relname = 'deliveries'",
        ))
        .await?;
    Ok(match row {
        Some(row) => {
            let dead: i64 = row.try_get("", "n_dead_tup")?;
            let live: i64 = row.try_get("", "n_live_tup")?;
            Some((dead.max(0) as u64, live.max(0) as u64))
        }
        None => None,
    })
}
