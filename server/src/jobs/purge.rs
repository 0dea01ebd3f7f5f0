//! The retention purge, as a job (scheduled, one at a time) and as `herald purge`.

use std::time::{Duration, Instant};

use app::{
    db::{activity, jobs, retention},
    models::PurgeReport,
};
use sea_orm::DatabaseConnection;

use super::JobSettings;

/// A short pause between batches, so the engine's writes are never queued behind a purge.
const PAUSE: Duration = Duration::from_millis(5);

/// Purges by the policy in effect and writes the run to the activity log: when it started and
/// ended, what it removed, or what went wrong.
pub async fn run_purge(
    db: &DatabaseConnection,
    settings: &JobSettings,
    dry_run: bool,
    actor: &str,
) -> Result<PurgeReport, sea_orm::DbErr> {
    let policy = retention::policy(db, settings.retention).await?;
    let started = app::db::now();
    let clock = Instant::now();
    let result = retention::purge(db, &policy, dry_run, settings.purge_batch, PAUSE).await;
    if !dry_run && result.is_ok() {
        // The purge changed the log's shape; SQLite's planner statistics follow it.
        app::db::optimize(db).await;
    }
    let ended = app::db::now();
    let (summary, rows, detail) = match &result {
        Ok(r) => (
            format!(
                "Retention purge{}: {} attempts, {} deliveries, {} events, {} jobs{} in {:.1} s",
                if dry_run { " (dry run, nothing deleted)" } else { "" },
                r.attempts,
                r.deliveries,
                r.events,
                r.jobs,
                if r.bodies > 0 { format!(", {} bodies emptied", r.bodies) } else { String::new() },
                clock.elapsed().as_secs_f64()
            ),
            Some(r.total() as i64),
            serde_json::json!({"started_at": started, "ended_at": ended, "dry_run": dry_run, "policy": policy, "report": r}),
        ),
        Err(e) => (
            format!("Retention purge failed: {e}"),
            None,
            serde_json::json!({"started_at": started, "ended_at": ended, "error": e.to_string()}),
        ),
    };
    activity::record_with(
        db,
        activity::Activity { actor: Some(actor), kind: "job.purge", subject: None, summary },
        rows,
        Some(detail.to_string()),
    )
    .await?;
    result
}

/// Runs a queued purge, renewing its lease while it works so that no other process takes it
/// over however long it takes.
pub async fn run_job(
    db: &DatabaseConnection,
    job: &app::db::entities::jobs::Model,
    settings: &JobSettings,
    worker: &str,
    lease: chrono::Duration,
    metrics: &crate::metrics::Metrics,
) {
    let actor = job.created_by.as_deref().unwrap_or("jobs");
    let purge = run_purge(db, settings, false, actor);
    tokio::pin!(purge);
    let renew_every = (lease / 3).to_std().unwrap_or(Duration::from_secs(10));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);
    let outcome = loop {
        tokio::select! {
            outcome = &mut purge => break outcome,
            _ = ticker.tick() => {
                if let Err(e) = jobs::renew_lease(db, job.id, worker, lease).await {
                    tracing::warn!(error = %e, "cannot renew the purge's lease");
                }
            }
        }
    };
    let error = match outcome {
        Ok(report) => {
            metrics.purged(&report);
            let _ = jobs::set_progress(db, job.id, report.total() as i64).await;
            tracing::info!(?report, "retention purge finished");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "retention purge failed");
            Some(e.to_string())
        }
    };
    if let Err(e) = jobs::finish(db, job.id, error).await {
        tracing::warn!(error = %e, "cannot mark the purge finished");
    }
}
