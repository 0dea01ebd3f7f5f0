//! Background jobs: bulk re-sends and retention purges. Jobs are rows; any process leases one,
//! works through it in bounded batches and, for bulk re-sends, records its cursor with each
//! batch, so a job interrupted by a restart resumes where it stopped. A partial unique index
//! keeps to one open purge however many processes share the database.

pub mod purge;
pub mod vacuum;

use std::{sync::Arc, time::Duration};

use app::{
    db::{activity, jobs},
    models::RetentionPolicy,
};
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use purge::run_purge;

const LEASE_SECS: i64 = 30;
const BATCH: u64 = 500;
const POLL: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct JobSettings {
    pub retention: RetentionPolicy,
    pub purge_interval: Option<Duration>,
    pub purge_batch: u64,
}

impl JobSettings {
    pub fn from_config(config: &crate::config::Config) -> Self {
        JobSettings {
            retention: config.retention(),
            purge_interval: (config.purge_interval_secs > 0)
                .then(|| Duration::from_secs(config.purge_interval_secs)),
            purge_batch: config.purge_batch,
        }
    }
}

pub struct JobRunner {
    pub db: DatabaseConnection,
    pub worker: String,
    pub settings: JobSettings,
    pub engine_wakeup: Arc<Notify>,
    pub wakeup: Arc<Notify>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl JobRunner {
    pub async fn run(self, shutdown: CancellationToken) {
        let lease = chrono::Duration::seconds(LEASE_SECS);
        let mut next_purge = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(interval) = self.settings.purge_interval {
                if tokio::time::Instant::now() >= next_purge {
                    next_purge += interval;
                    if let Err(e) = jobs::queue_purge(&self.db, "scheduler").await {
                        tracing::warn!(error = %e, "cannot queue the retention purge");
                    }
                }
            }
            match jobs::claim(&self.db, &self.worker, lease).await {
                Ok(Some(job)) => {
                    self.run_one(&job, &shutdown).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot look for jobs"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wakeup.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    async fn run_one(&self, job: &app::db::entities::jobs::Model, shutdown: &CancellationToken) {
        match job.kind.as_str() {
            jobs::BULK_RETRY => self.bulk_retry(job, shutdown).await,
            jobs::PURGE => {
                let lease = chrono::Duration::seconds(LEASE_SECS);
                purge::run_job(&self.db, job, &self.settings, &self.worker, lease, &self.metrics).await
            }
            other => {
                let _ = jobs::finish(&self.db, job.id, Some(format!("unknown job kind `{other}`"))).await;
            }
        }
    }

    async fn bulk_retry(&self, job: &app::db::entities::jobs::Model, shutdown: &CancellationToken) {
        let lease = chrono::Duration::seconds(LEASE_SECS);
        let mut requeued = 0;
        loop {
            if shutdown.is_cancelled() {
                return; // the lease expires and a process picks the job up at its cursor
            }
            match jobs::bulk_retry_step(&self.db, job, &self.worker, BATCH, lease).await {
                Ok(Some(n)) => {
                    requeued += n;
                    self.engine_wakeup.notify_one();
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(job = %job.id, error = %e, "bulk re-send stopped; it resumes later");
                    return;
                }
            }
        }
        match jobs::finish(&self.db, job.id, None).await {
            Ok(Some(done)) => {
                let _ = activity::record_with(
                    &self.db,
                    activity::Activity {
                        actor: Some("jobs"),
                        kind: "job.bulk_retry.finished",
                        subject: Some(job.id.to_string()),
                        summary: format!(
                            "Bulk re-send finished: {} deliveries queued again ({requeued} in this run)",
                            done.progress_done
                        ),
                    },
                    Some(done.progress_done),
                    None,
                )
                .await;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(job = %job.id, error = %e, "cannot mark job finished"),
        }
    }
}
