//! This process's heartbeat: every second it writes the `workers` row that tells the other
//! processes it is alive, which is also the probe that says whether the database can be written
//! (`DbHealth`): during an outage it probes four times a second, so writes resume within a
//! fraction of a second of the fault clearing. Once beating steadily, it takes over the leases
//! of processes whose heartbeat stopped (kill -9, a lost machine), so their deliveries resume
//! within seconds instead of when each lease expires.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use app::db::health::DbHealth;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often a healthy process writes its heartbeat.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// How often the database is probed while it is unavailable.
const OUTAGE_INTERVAL: Duration = Duration::from_millis(250);
/// A process whose heartbeat is older than this is taken for dead.
pub const STALE: Duration = app::db::health::WRITE_STALE;

pub struct Heartbeat {
    pub db: DatabaseConnection,
    pub worker: String,
    pub health: DbHealth,
    /// Woken when leases were taken over: their deliveries are due again.
    pub engine_wakeup: Arc<Notify>,
}

impl Heartbeat {
    /// Writes the first heartbeat: before this process leases anything, so no other process
    /// takes its leases for a dead process's.
    pub async fn start(&self) -> anyhow::Result<DateTime<Utc>> {
        let started_at = app::db::now();
        app::db::workers::beat(&self.db, &self.worker, started_at).await?;
        self.health.wrote();
        Ok(started_at)
    }

    pub async fn run(self, started_at: DateTime<Utc>, shutdown: CancellationToken) {
        // Leases are taken over only after this process has itself beaten without a gap for
        // STALE: had the database stalled (a long write holding SQLite's lock, a failover),
        // every process's heartbeat would look old at once, and live leases would be taken.
        let mut steady_since = Instant::now();
        let mut last_beat = Instant::now();
        loop {
            let wait = if self.health.outage().is_some() { OUTAGE_INTERVAL } else { INTERVAL };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            let beat = {
                let _turn = app::db::sqlite_write_turn(&self.db).await;
                app::db::workers::beat(&self.db, &self.worker, started_at).await
            };
            match beat {
                Ok(()) => {
                    self.health.wrote();
                    if last_beat.elapsed() > INTERVAL + INTERVAL / 2 {
                        steady_since = Instant::now();
                    }
                    last_beat = Instant::now();
                }
                Err(e) => {
                    if !self.health.failed(&e) {
                        tracing::warn!(error = %e, "cannot write this process's heartbeat");
                    }
                    continue;
                }
            }
            if steady_since.elapsed() < STALE {
                continue;
            }
            let stale = chrono::Duration::from_std(STALE).unwrap_or_default();
            let taken = {
                let _turn = app::db::sqlite_write_turn(&self.db).await;
                app::db::workers::take_over_stale_leases(&self.db, stale).await
            };
            match taken {
                Ok(0) => {}
                Ok(n) => {
                    tracing::warn!(
                        released = n,
                        "took over the leases of a Herald process that stopped beating; its deliveries are sent again"
                    );
                    self.engine_wakeup.notify_one();
                }
                Err(e) => {
                    if !self.health.failed(&e) {
                        tracing::warn!(error = %e, "cannot take over the leases of stopped processes");
                    }
                }
            }
        }
        if let Err(e) = app::db::workers::forget(&self.db, &self.worker).await {
            tracing::debug!(error = %e, "cannot remove this process's heartbeat row");
        }
    }
}
