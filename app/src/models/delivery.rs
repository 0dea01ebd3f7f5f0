use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DeliveryId, DeliveryStatus, EventId, Outcome, WebhookId};

/// One row of the delivery log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub webhook_id: WebhookId,
    pub webhook_name: String,
    pub webhook_url: String,
    pub event_type: String,
    pub category: String,
    pub status: DeliveryStatus,
    pub attempt_count: i32,
    pub last_response_code: Option<i32>,
    pub last_outcome: Option<Outcome>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_duration_ms: Option<i32>,
    pub created_at: DateTime<Utc>,
}

/// The delivery log's view: filters, sort and position. Lives in the page URL.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryQuery {
    pub webhook_id: Option<WebhookId>,
    pub status: Option<DeliveryStatus>,
    pub category: Option<String>,
    pub q: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u64>,
}
