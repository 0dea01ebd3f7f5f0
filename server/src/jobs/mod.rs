//! Background jobs: bulk re-sends (and, as they arrive, retention purges). Jobs are rows; any
//! process leases one, works through it in bounded batches and records its cursor with each
//! batch, so a job interrupted by a restart resumes where it stopped.

use std::{sync::Arc, time::Duration};

use app::db::{activity, jobs};
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const LEASE_SECS: i64 = 30;
const BATCH: u64 = 500;
const POLL: Duration = Duration::from_secs(2);

pub async fn run(
    db: DatabaseConnection,
    worker: String,
    engine_wakeup: Arc<Notify>,
    wakeup: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let lease = chrono::Duration::seconds(LEASE_SECS);
    loop {
        match jobs::claim(&db, &worker, lease).await {
            Ok(Some(job)) => {
                run_one(&db, &worker, &job, &engine_wakeup, &shutdown).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot look for jobs"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wakeup.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

async fn run_one(
    db: &DatabaseConnection,
    worker: &str,
    job: &app::db::entities::jobs::Model,
    engine_wakeup: &Notify,
    shutdown: &CancellationToken,
) {
    if job.kind != jobs::BULK_RETRY {
        let _ = jobs::finish(db, job.id, Some(format!("unknown job kind `{}`", job.kind))).await;
        return;
    }
    let lease = chrono::Duration::seconds(LEASE_SECS);
    let mut requeued = 0;
    loop {
        if shutdown.is_cancelled() {
            return; // the lease expires and a process picks the job up at its cursor
        }
        match jobs::bulk_retry_step(db, job, worker, BATCH, lease).await {
            Ok(Some(n)) => {
                requeued += n;
                engine_wakeup.notify_one();
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(job = %job.id, error = %e, "bulk re-send stopped; it resumes later");
                return;
            }
        }
    }
    match jobs::finish(db, job.id, None).await {
        Ok(Some(done)) => {
            let _ = activity::record(
                db,
                activity::Activity {
                    actor: Some("jobs"),
                    kind: "job.bulk_retry.finished",
                    subject: Some(job.id.to_string()),
                    summary: format!(
                        "Bulk re-send finished: {} deliveries queued again ({requeued} in this run)",
                        done.progress_done
                    ),
                },
            )
            .await;
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(job = %job.id, error = %e, "cannot mark job finished"),
    }
}
