//! Whether the database can be written right now, as this process last saw it.
//!
//! Every part of Herald that writes (the event writer, the engine, the heartbeat) reports here
//! what its last write did. While an outage lasts, `POST /events` answers 503 at once instead of
//! waiting for the pool's time-out, the engine backs off, `GET /health` says why, and the outage
//! is logged once when it starts and once when it ends, not once per failed statement. The
//! heartbeat (`server::engine::heartbeat`) probes every second, more often during an outage, so
//! the first successful write after the fault clears it ends the outage within a fraction of a
//! second.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use sea_orm::{DbErr, RuntimeErr};

/// What clients are told to wait before trying again while the database is unavailable.
pub const RETRY_AFTER_SECS: u64 = 2;

/// When this process last saw the database fail as unavailable (any database: tests run
/// several). The pool hands out no connection opened before that: one may be broken in a way
/// that outlives the fault (SQLite falls back to read-only when it opens a file it cannot
/// write, and keeps refusing writes after the file is writable again).
static LAST_FAILURE: Mutex<Option<Instant>> = Mutex::new(None);

/// Whether a pooled connection of this age was opened before the last failure.
pub fn predates_last_failure(age: Duration) -> bool {
    let last = *LAST_FAILURE.lock().unwrap_or_else(|p| p.into_inner());
    last.is_some_and(|at| age > at.elapsed())
}

#[derive(Clone, Debug, Default)]
pub struct DbHealth(Arc<Mutex<State>>);

#[derive(Debug, Default)]
struct State {
    outage: Option<Outage>,
    last_write: Option<Instant>,
}

/// The database has been unavailable since `since`; `reason` is the last error seen.
#[derive(Clone, Debug)]
pub struct Outage {
    pub since: DateTime<Utc>,
    pub started: Instant,
    pub reason: String,
}

impl DbHealth {
    /// The outage under way, if any.
    pub fn outage(&self) -> Option<Outage> {
        self.lock().outage.clone()
    }

    /// How long ago a write last succeeded, if one has since this process started.
    pub fn since_last_write(&self) -> Option<Duration> {
        self.lock().last_write.map(|at| at.elapsed())
    }

    /// A write committed: ends the outage, if one was under way.
    pub fn wrote(&self) {
        let mut state = self.lock();
        state.last_write = Some(Instant::now());
        if let Some(outage) = state.outage.take() {
            tracing::warn!(
                after_ms = outage.started.elapsed().as_millis() as u64,
                "database available again; writes resume"
            );
        }
    }

    /// A statement failed. Returns whether the failure means the database is unavailable (then
    /// an outage starts, if none was under way); other errors (a constraint, bad input) say
    /// nothing about the database's health and are left to the caller.
    pub fn failed(&self, err: &DbErr) -> bool {
        if !is_unavailable(err) {
            return false;
        }
        *LAST_FAILURE.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let mut state = self.lock();
        match &mut state.outage {
            Some(outage) => outage.reason = describe(err),
            None => {
                let reason = describe(err);
                tracing::error!(
                    reason = %reason,
                    "database unavailable: events are refused with 503 and deliveries pause until it answers again"
                );
                state.outage = Some(Outage { since: super::now(), started: Instant::now(), reason });
            }
        }
        true
    }

    /// The error to answer with while an outage is under way, without touching the database.
    pub fn refuse(&self) -> Option<DbErr> {
        self.outage().map(|o| DbErr::Custom(format!("{UNAVAILABLE}: {}", o.reason)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A write older than this (the heartbeat writes every second) means the database hangs.
pub const WRITE_STALE: Duration = Duration::from_secs(3);

/// Whether Herald can accept and deliver events right now: no outage under way, a write
/// completed within `WRITE_STALE`, and the database answers a read within the pool's time-out.
/// `Err` says why not, for people.
pub async fn check(db: &sea_orm::DatabaseConnection, health: &DbHealth) -> Result<(), String> {
    use sea_orm::ConnectionTrait;
    if let Some(outage) = health.outage() {
        return Err(format!(
            "The database cannot be written since {}: {}",
            outage.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            outage.reason
        ));
    }
    if let Some(ago) = health.since_last_write().filter(|ago| *ago > WRITE_STALE) {
        return Err(format!("The database has not completed a write for {} s.", ago.as_secs()));
    }
    match tokio::time::timeout(super::ACQUIRE_TIMEOUT, db.execute_unprepared("SELECT 1")).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("The database does not answer: {e}")),
        Err(_) => Err("The database does not answer within a second.".into()),
    }
}

/// Marks the `DbErr::Custom` that `refuse` makes, so that `is_unavailable` knows it.
const UNAVAILABLE: &str = "database unavailable";

/// Whether an error says the database cannot be reached or written (a fault that clears by
/// itself or by an operator: a closed or refused connection, a pool time-out, a read-only,
/// full, locked or failing disk, a server shutting down), as opposed to one statement's fault.
pub fn is_unavailable(err: &DbErr) -> bool {
    let runtime = match err {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Custom(m) => return m.starts_with(UNAVAILABLE),
        DbErr::Conn(r) | DbErr::Exec(r) | DbErr::Query(r) => r,
        _ => return false,
    };
    let RuntimeErr::SqlxError(e) = runtime else { return false };
    use sea_orm::sqlx::Error as E;
    match e.as_ref() {
        E::Io(_) | E::Tls(_) | E::Protocol(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => true,
        E::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            if let Ok(extended) = code.parse::<i32>() {
                // SQLite: the primary result code is the low byte of the extended one.
                // BUSY, LOCKED, NOMEM, READONLY, IOERR, CORRUPT, FULL, CANTOPEN, PROTOCOL, NOTADB.
                matches!(extended & 0xff, 5 | 6 | 7 | 8 | 10 | 11 | 13 | 14 | 15 | 26)
            } else {
                // PostgreSQL SQLSTATE: connection exceptions, insufficient resources (disk
                // full), operator intervention (shutting down, starting up), system errors.
                ["08", "53", "57P", "58"].iter().any(|class| code.starts_with(class))
            }
        }
        _ => false,
    }
}

/// The error without sea-orm's wrapping, for logs and the health answer.
fn describe(err: &DbErr) -> String {
    match err {
        DbErr::Conn(r) | DbErr::Exec(r) | DbErr::Query(r) => r.to_string(),
        DbErr::Custom(m) => m.trim_start_matches(UNAVAILABLE).trim_start_matches(": ").to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_time_outs_and_refusals_are_outages_constraint_errors_are_not() {
        assert!(is_unavailable(&DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout)));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(is_unavailable(&DbErr::Conn(RuntimeErr::SqlxError(Arc::new(sea_orm::sqlx::Error::Io(io))))));
        assert!(!is_unavailable(&DbErr::RecordNotFound("x".into())));
        assert!(!is_unavailable(&DbErr::Custom("idempotency key conflicted".into())));
    }

    #[test]
    fn an_outage_starts_once_keeps_the_last_reason_and_ends_at_the_next_write() {
        let health = DbHealth::default();
        let timeout = DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout);
        assert!(health.outage().is_none() && health.refuse().is_none());
        assert!(health.failed(&timeout));
        let first = health.outage().expect("outage").since;
        assert!(health.failed(&DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::ConnectionClosed)));
        let outage = health.outage().expect("still out");
        assert_eq!(outage.since, first, "the outage keeps its start");
        assert_eq!(outage.reason, "Failed to acquire connection from pool: Connection closed");
        assert!(is_unavailable(&health.refuse().expect("refused")), "the refusal is itself an outage error");
        assert!(!health.failed(&DbErr::RecordNotFound("x".into())), "not a health matter");
        health.wrote();
        assert!(health.outage().is_none());
        assert!(health.since_last_write().is_some());
    }
}
