//! Flow control per webhook: a rate limit enforced across every process sharing the database,
//! and the receiver's back-pressure (429 and 503 answers) pausing the whole webhook.
//!
//! The rate limit is a GCRA (the token bucket, kept as one number): each webhook's usage row
//! holds the theoretical arrival time `tat` of its next request. A claim reserves `k` requests
//! with one atomic `UPDATE ... SET tat = max(tat, now) + k·T RETURNING tat`, so processes never
//! get the same send times, and each reserved delivery carries the time it may be sent
//! (`send_at`): the first `burst` at once after a quiet spell, then one every `T = 1 s / rate`.
//! Deliveries over the limit stay due in the database; they are not failures.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement};
use uuid::Uuid;

/// How far ahead a claim reserves a rate-limited webhook's send times: about one second's
/// worth beyond the burst, so a claim (every poll, 250 ms by default) keeps it busy.
pub const HORIZON: Duration = Duration::from_secs(1);

/// A webhook's rate limit: one request every `interval_us`, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub interval_us: i64,
    pub burst: i64,
}

impl Rate {
    /// The webhook's own limit, or the global default (`None`: unlimited).
    pub fn of(rate_limit: Option<i32>, burst: Option<i32>, default: Option<u32>) -> Option<Rate> {
        let per_second = rate_limit.map(|n| i64::from(n.max(1))).or(default.map(i64::from))?;
        Some(Rate {
            interval_us: (1_000_000 / per_second).max(1),
            burst: burst.map_or(per_second, |b| i64::from(b.max(1))),
        })
    }

    fn tolerance_us(&self) -> i64 {
        (self.burst - 1) * self.interval_us
    }

    /// How many requests may be reserved now to go out within `HORIZON`, given the webhook's
    /// `tat` (as last read): the burst, then one per interval.
    pub fn room(&self, tat_us: i64, now_us: i64) -> usize {
        let start = tat_us.max(now_us);
        let latest = now_us + HORIZON.as_micros() as i64 + self.tolerance_us();
        if latest < start {
            0
        } else {
            ((latest - start) / self.interval_us + 1) as usize
        }
    }

    /// The send times of `k` requests reserved by an update that moved `tat` to `new_tat_us`.
    pub fn send_times(&self, new_tat_us: i64, k: usize, now_us: i64) -> Vec<i64> {
        let start = new_tat_us - k as i64 * self.interval_us;
        (0..k as i64).map(|i| (start + i * self.interval_us - self.tolerance_us()).max(now_us)).collect()
    }
}

pub fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_else(app::db::now)
}

/// Reserves `k` requests of `webhook` at its `rate`, atomically across processes; answers their
/// send times, in order.
pub async fn reserve(
    db: &DatabaseConnection,
    webhook: Uuid,
    rate: Rate,
    k: usize,
    now_us: i64,
) -> Result<Vec<i64>, DbErr> {
    let backend = db.get_database_backend();
    let mut sql = super::store::SqlValues::new(backend);
    let (now, add, id) =
        (sql.push(now_us.into()), sql.push((k as i64 * rate.interval_us).into()), sql.push(webhook.into()));
    let statement = format!(
        r#"UPDATE "webhook_usage" SET "rate_tat_us" =
             (CASE WHEN "rate_tat_us" > {now} THEN "rate_tat_us" ELSE {now} END) + {add}
           WHERE "webhook_id" = {id} RETURNING "rate_tat_us""#
    );
    let _turn = app::db::sqlite_write_turn(db).await;
    let row = db.query_one_raw(Statement::from_sql_and_values(backend, statement, sql.values)).await?;
    let new_tat: i64 = match row {
        Some(row) => row.try_get("", "rate_tat_us")?,
        // No usage row (a webhook created outside Herald's API): unlimited rather than stuck.
        None => return Ok(vec![now_us; k]),
    };
    Ok(rate.send_times(new_tat, k, now_us))
}

/// The receiver's back-pressure after one answer: how long the whole webhook waits, and why.
/// A 429 or 503 with `Retry-After` pauses it that long (at most `max`); 429s without it pause
/// it 1 s, then 2, 4, ... up to 60 s while they keep coming (`in_a_row` counts them, this one
/// included).
pub fn pause_after(
    status: Option<u16>,
    retry_after: Option<Duration>,
    in_a_row: u32,
    max: Duration,
) -> Option<(Duration, String)> {
    match (status, retry_after) {
        (Some(code @ (429 | 503)), Some(after)) if !after.is_zero() => {
            let after = after.min(max);
            Some((
                after,
                format!("the receiver answered {code} with Retry-After: {} s", after.as_secs_f64().ceil()),
            ))
        }
        (Some(429), None) => {
            let pause =
                Duration::from_secs(1 << in_a_row.saturating_sub(1).min(6)).min(Duration::from_secs(60));
            let times = if in_a_row == 1 { "once".to_owned() } else { format!("{in_a_row} times in a row") };
            Some((pause, format!("the receiver answered 429 without Retry-After {times}: slowing down")))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_webhook_gets_its_burst_then_one_per_interval() {
        let rate = Rate::of(Some(20), None, None).unwrap();
        assert_eq!(rate, Rate { interval_us: 50_000, burst: 20 });
        let now = 1_000_000_000;
        // The burst now, and 20 more over the next second.
        assert_eq!(rate.room(0, now), 40);
        let times = rate.send_times(now + 40 * 50_000, 40, now);
        assert!(times[..20].iter().all(|&t| t == now), "{times:?}");
        assert_eq!(times[20], now + 50_000);
        assert_eq!(times[39], now + 20 * 50_000);
        // Reserved that far ahead, nothing more fits until time passes.
        assert_eq!(rate.room(now + 40 * 50_000, now), 0);
        assert_eq!(rate.room(now + 40 * 50_000, now + 100_000), 2);
    }

    #[test]
    fn the_webhook_s_own_limit_wins_over_the_default() {
        assert_eq!(Rate::of(None, None, None), None);
        assert_eq!(Rate::of(None, Some(5), Some(2)), Some(Rate { interval_us: 500_000, burst: 5 }));
        assert_eq!(Rate::of(Some(4), Some(1), Some(100)), Some(Rate { interval_us: 250_000, burst: 1 }));
    }

    #[test]
    fn back_pressure_pauses_as_the_receiver_asks_or_backs_off() {
        let max = Duration::from_secs(3600);
        let (pause, why) = pause_after(Some(429), Some(Duration::from_secs(2)), 1, max).unwrap();
        assert_eq!(pause, Duration::from_secs(2));
        assert!(why.contains("429 with Retry-After: 2 s"), "{why}");
        assert_eq!(pause_after(Some(503), Some(Duration::from_secs(7200)), 1, max).unwrap().0, max);
        assert_eq!(pause_after(Some(503), None, 1, max), None, "a 503 alone is an ordinary failure");
        assert_eq!(pause_after(Some(500), Some(Duration::from_secs(2)), 1, max), None);
        let backoff: Vec<u64> =
            (1..=9).map(|n| pause_after(Some(429), None, n, max).unwrap().0.as_secs()).collect();
        assert_eq!(backoff, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
