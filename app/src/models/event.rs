use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::EventId;

/// An event as the API reads it back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Event {
    pub id: EventId,
    #[serde(rename = "type")]
    pub event_type: String,
    pub category: String,
    pub payload: serde_json::Value,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What `POST /api/v1/events` answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EventAccepted {
    pub id: EventId,
    #[serde(rename = "type")]
    pub event_type: String,
    pub created_at: DateTime<Utc>,
    /// One per subscribed webhook, including held ones for webhooks that are not active.
    pub deliveries: u64,
    /// True when the idempotency key was seen before: this is the original event, nothing new was stored.
    pub duplicate: bool,
}

/// The category of an event type: its first segment (`license` for `license.assigned`).
pub fn category_of(event_type: &str) -> &str {
    event_type.split('.').next().unwrap_or(event_type)
}
