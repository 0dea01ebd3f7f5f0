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
