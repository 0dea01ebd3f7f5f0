use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DeliveryId, DeliveryStatus, EventId, Outcome, WebhookId};

/// One row of the delivery log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
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
    /// Where the last attempt was sent (the webhook's URL may have changed since); absent
    /// before the first attempt.
    #[serde(default)]
    pub attempted_url: Option<String>,
}

/// How many deliveries a view of the log matches, counted up to a cap (`more`: beyond it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryCount {
    pub count: u64,
    pub more: bool,
}

/// Where a webhook's deliveries created since a time stand: what a recovery reports while it
/// runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    pub succeeded: u64,
    pub failed: u64,
    /// Failed attempts, another one scheduled.
    pub retrying: u64,
    /// Queued to be sent, or held (the webhook is not active).
    pub waiting: u64,
}

impl StatusCounts {
    /// Nothing left to send (what is held waits for a reactivation, not for time).
    pub fn done(&self) -> bool {
        self.retrying == 0 && self.waiting == 0
    }
}

/// A page of the admin app's delivery log: its rows, how many deliveries the view matches, and
/// what the log's pickers offer. One answer, so the log loads and refreshes in one round trip
/// (and the browser bundle carries one resource type for it, not three).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryLogPage {
    pub items: Vec<DeliveryRow>,
    pub next_cursor: Option<String>,
    pub total: DeliveryCount,
    pub choices: LogChoices,
}

/// What the log's pickers offer: every webhook, and every event type Herald has stored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogChoices {
    pub webhooks: Vec<(WebhookId, String)>,
    pub event_types: Vec<String>,
}

/// The delivery log's view: filters, sort and position. Lives in the page URL.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct DeliveryQuery {
    pub webhook_id: Option<WebhookId>,
    pub status: Option<DeliveryStatus>,
    pub category: Option<String>,
    pub q: Option<String>,
    /// Exact event type.
    pub event_type: Option<String>,
    /// Deliveries created at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Deliveries created before this time.
    pub until: Option<DateTime<Utc>>,
    /// time (default), status or response_code; ties are broken by time, then id.
    pub sort: Option<DeliverySort>,
    /// desc (default) or asc.
    pub order: Option<SortOrder>,
    pub cursor: Option<String>,
    /// Page size, 1 to 250.
    #[cfg_attr(feature = "ssr", param(minimum = 1, maximum = 250))]
    pub limit: Option<u64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliverySort {
    #[default]
    Time,
    Status,
    ResponseCode,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    #[default]
    Desc,
    Asc,
}

/// One HTTP request of a delivery and what came back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Attempt {
    pub id: super::AttemptId,
    pub attempt_number: i32,
    pub trigger: super::AttemptTrigger,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub request: AttemptRequest,
    /// Absent when no answer came (timeout, connection error, blocked destination).
    pub response: Option<AttemptResponse>,
    pub outcome: Outcome,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AttemptRequest {
    pub url: String,
    pub method: String,
    pub headers: std::collections::BTreeMap<String, String>,
    pub body: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AttemptResponse {
    pub status: i32,
    pub headers: std::collections::BTreeMap<String, String>,
    /// Capped at the configured size; `body_truncated` says when it was cut.
    pub body: Option<String>,
    pub body_truncated: bool,
}

/// A delivery with its event's payload and every attempt, oldest first, as the admin app
/// receives it. The JSON API sends [`DeliveryDetailBody`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryDetail {
    pub delivery: DeliveryRow,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub payload: serde_json::Value,
    pub attempts: Vec<Attempt>,
    /// Its webhook is not active: a re-send needs it reactivated, and this is what recovery
    /// would send besides (this delivery not counted). For the admin app only.
    pub reactivation: Option<super::Reactivation>,
}

/// [`DeliveryDetail`] as `GET /api/v1/deliveries/{id}` returns it: the delivery's own fields at
/// the top level. Only the server writes this shape; reading `flatten` in the browser would
/// cost the bundle serde's buffering deserialiser, so the admin app gets the nested one.
#[cfg(feature = "ssr")]
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DeliveryDetail)]
pub struct DeliveryDetailBody {
    #[serde(flatten)]
    pub delivery: DeliveryRow,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub payload: serde_json::Value,
    pub attempts: Vec<Attempt>,
}

#[cfg(feature = "ssr")]
impl From<DeliveryDetail> for DeliveryDetailBody {
    fn from(d: DeliveryDetail) -> Self {
        Self {
            delivery: d.delivery,
            next_attempt_at: d.next_attempt_at,
            payload: d.payload,
            attempts: d.attempts,
        }
    }
}
