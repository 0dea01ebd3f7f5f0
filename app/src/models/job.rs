use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DeliveryStatus, JobId, WebhookId};

/// Which deliveries a bulk re-send takes: `status` defaults to failed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BulkRetryFilter {
    pub webhook_id: Option<WebhookId>,
    /// failed, held or retrying (sent now instead of at its scheduled time).
    pub status: Option<Vec<DeliveryStatus>>,
    pub event_type: Option<String>,
    pub category: Option<String>,
    /// Deliveries created at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Deliveries created before this time.
    pub until: Option<DateTime<Utc>>,
}

impl BulkRetryFilter {
    pub const RETRYABLE: [DeliveryStatus; 3] =
        [DeliveryStatus::Failed, DeliveryStatus::Held, DeliveryStatus::Retrying];

    pub fn statuses(&self) -> Vec<DeliveryStatus> {
        self.status.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| vec![DeliveryStatus::Failed])
    }

    pub fn validate(&self) -> Result<(), super::FieldError> {
        if let Some(bad) = self.statuses().into_iter().find(|s| !Self::RETRYABLE.contains(s)) {
            return Err(super::FieldError {
                field: "status".into(),
                message: format!("`{bad}` deliveries cannot be re-sent; use failed, held or retrying"),
            });
        }
        if let (Some(since), Some(until)) = (self.since, self.until) {
            if since >= until {
                return Err(super::FieldError {
                    field: "until".into(),
                    message: "must be after `since`".into(),
                });
            }
        }
        Ok(())
    }
}

/// A background job (bulk re-send, retention purge) and how far it got.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    /// queued, running, succeeded or failed.
    pub status: String,
    pub params: serde_json::Value,
    pub progress_done: i64,
    pub progress_total: Option<i64>,
    pub error: Option<String>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// A bulk re-send: what became of the deliveries it queued, so far.
    #[serde(default)]
    pub outcome: Option<JobOutcome>,
}

/// What became of the deliveries a bulk re-send queued: sent and answered 2xx, failed again, or
/// still waiting for their attempt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct JobOutcome {
    pub delivered: u64,
    pub failed: u64,
    pub pending: u64,
}

/// What `POST /deliveries/retry` answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BulkRetryAccepted {
    /// Absent for a dry run.
    pub job: Option<Job>,
    /// Deliveries matching the filter now.
    pub matching: u64,
}
