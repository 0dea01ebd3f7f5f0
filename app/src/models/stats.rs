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

/// What every page of the admin app says at its top.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Banners {
    /// Why Herald cannot store or deliver events right now.
    pub database: Option<String>,
    /// Webhooks deactivated after too many errors (id and name): they receive nothing until
    /// reactivated.
    pub deactivated: Vec<(super::WebhookId, String)>,
}
