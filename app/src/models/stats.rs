use serde::{Deserialize, Serialize};

/// Attempts in a recent window: how many, how many succeeded, how long they took.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    pub label: String,
    pub attempts: u64,
    pub successes: u64,
    /// Response-time percentiles in ms over the attempts in the window (at most the newest
    /// `SAMPLE` of them); absent without attempts.
    pub p50_ms: Option<i32>,
    pub p95_ms: Option<i32>,
    pub p99_ms: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    pub windows: Vec<WindowStats>,
    /// Webhooks that are not active or are failing now, worst first, then the rest.
    pub webhooks: Vec<super::WebhookWithUsage>,
    /// Deliveries waiting: pending or retrying.
    pub queued: u64,
    /// Deliveries held for webhooks that are stopped or deactivated: sent only on recovery.
    pub held: u64,
}

/// One stretch of a timeline: the attempts that started in `[start, start + step)`. Counted
/// and measured over at most the stretch's newest `BUCKET_SAMPLE` attempts (`sampled`: it had
/// more), so a busy day costs the same to draw as a quiet one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineBucket {
    pub start: chrono::DateTime<chrono::Utc>,
    pub attempts: u64,
    pub successes: u64,
    pub sampled: bool,
    pub p50_ms: Option<i32>,
    pub p95_ms: Option<i32>,
    pub p99_ms: Option<i32>,
}

/// Success rate and response times over the last hour (5-minute steps) or day (hourly), for all
/// webhooks or one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub step_minutes: u32,
    pub buckets: Vec<TimelineBucket>,
}

/// What every page of the admin app says at its top.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Banners {
    /// Why Herald cannot store or deliver events right now.
    pub database: Option<String>,
    /// Webhooks deactivated after too many errors (id and name): they receive nothing until
    /// reactivated.
    pub deactivated: Vec<(super::WebhookId, String)>,
}
