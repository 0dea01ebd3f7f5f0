//! The dashboard's figures: success rate and response-time percentiles over recent windows,
//! webhooks in trouble first.

use sea_orm::{entity::prelude::*, PaginatorTrait, QueryOrder, QuerySelect};

use super::{entities::attempts, entities::deliveries, now};
use crate::models::{Dashboard, DeliveryStatus, Outcome, WebhookState, WindowStats};

/// Percentiles are computed over at most this many of a window's newest attempts.
pub const SAMPLE: u64 = 50_000;

fn percentile(sorted: &[i32], p: f64) -> Option<i32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

async fn window(db: &DatabaseConnection, label: &str, hours: i64) -> Result<WindowStats, DbErr> {
    let since = now() - chrono::Duration::hours(hours);
    let in_window = || attempts::Entity::find().filter(attempts::Column::StartedAt.gte(since));
    let total = in_window().count(db).await?;
    let successes = in_window().filter(attempts::Column::Outcome.eq(Outcome::Success)).count(db).await?;
    let mut durations: Vec<i32> = in_window()
        .select_only()
        .column(attempts::Column::DurationMs)
        .order_by_desc(attempts::Column::StartedAt)
        .limit(SAMPLE)
        .into_tuple()
        .all(db)
        .await?;
    durations.sort_unstable();
    Ok(WindowStats {
        label: label.to_owned(),
        attempts: total,
        successes,
        p50_ms: percentile(&durations, 50.0),
        p95_ms: percentile(&durations, 95.0),
        p99_ms: percentile(&durations, 99.0),
    })
}

/// A timeline's stretches are measured over at most this many attempts each.
pub const BUCKET_SAMPLE: u64 = 2_000;

/// The last `hours` in `steps` stretches, oldest first, for all webhooks or one. One query per
/// stretch, each through an index on the start time and bounded by `BUCKET_SAMPLE`.
pub async fn timeline(
    db: &DatabaseConnection,
    webhook: Option<crate::models::WebhookId>,
    hours: i64,
    steps: i64,
) -> Result<crate::models::Timeline, DbErr> {
    let step = chrono::Duration::minutes(hours * 60 / steps);
    let end = now();
    let mut buckets = Vec::new();
    for i in 0..steps {
        let start = end - step * (steps - i) as i32;
        let mut select = attempts::Entity::find()
            .select_only()
            .columns([attempts::Column::DurationMs, attempts::Column::Outcome])
            .filter(attempts::Column::StartedAt.gte(start))
            .filter(attempts::Column::StartedAt.lt(start + step));
        if let Some(w) = webhook {
            select = select.filter(attempts::Column::WebhookId.eq(w.0));
        }
        let sample: Vec<(i32, Outcome)> = select
            .order_by_desc(attempts::Column::StartedAt)
            .limit(BUCKET_SAMPLE + 1)
            .into_tuple()
            .all(db)
            .await?;
        let sampled = sample.len() as u64 > BUCKET_SAMPLE;
        let sample = &sample[..sample.len().min(BUCKET_SAMPLE as usize)];
        let mut durations: Vec<i32> = sample.iter().map(|(d, _)| *d).collect();
        durations.sort_unstable();
        buckets.push(crate::models::TimelineBucket {
            start,
            attempts: sample.len() as u64,
            successes: sample.iter().filter(|(_, o)| *o == Outcome::Success).count() as u64,
            sampled,
            p50_ms: percentile(&durations, 50.0),
            p95_ms: percentile(&durations, 95.0),
            p99_ms: percentile(&durations, 99.0),
        });
    }
    Ok(crate::models::Timeline { step_minutes: step.num_minutes() as u32, buckets })
}

pub async fn dashboard(db: &DatabaseConnection) -> Result<Dashboard, DbErr> {
    let windows = vec![window(db, "Last hour", 1).await?, window(db, "Last 24 hours", 24).await?];
    let mut webhooks = super::webhooks::list_with_usage(db).await?;
    webhooks.sort_by_key(|w| {
        (
            w.webhook.state == WebhookState::Active,
            std::cmp::Reverse(w.usage.consecutive_errors),
            w.webhook.name.to_lowercase(),
        )
    });
    let queued = deliveries::Entity::find()
        .filter(deliveries::Column::Status.is_in([DeliveryStatus::Pending, DeliveryStatus::Retrying]))
        .count(db)
        .await?;
    let held = deliveries::Entity::find()
        .filter(deliveries::Column::Status.eq(DeliveryStatus::Held))
        .count(db)
        .await?;
    Ok(Dashboard { windows, webhooks, queued, held })
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<i32> = (1..=100).collect();
        assert_eq!(
            (percentile(&v, 50.0), percentile(&v, 95.0), percentile(&v, 99.0)),
            (Some(50), Some(95), Some(99))
        );
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
