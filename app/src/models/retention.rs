use serde::{Deserialize, Serialize};

/// How long Herald keeps its logs. Deliveries still pending or retrying are never purged, nor
/// the events they belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Finished deliveries and their attempts, by creation time.
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 3650))]
    pub deliveries_days: u32,
    /// Events no kept delivery refers to.
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 3650))]
    pub events_days: u32,
    /// Finished background jobs.
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 3650))]
    pub jobs_days: u32,
    /// Request and response bodies of attempts, when they should go before the rest.
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 3650))]
    pub bodies_days: Option<u32>,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy { deliveries_days: 30, events_days: 30, jobs_days: 7, bodies_days: None }
    }
}

impl RetentionPolicy {
    pub const MAX_DAYS: u32 = 3650;

    pub fn validate(&self) -> Result<(), super::FieldError> {
        let check = |field: &str, days: u32| {
            if (1..=Self::MAX_DAYS).contains(&days) {
                Ok(())
            } else {
                Err(super::FieldError {
                    field: field.into(),
                    message: format!("must be between 1 and {} days", Self::MAX_DAYS),
                })
            }
        };
        check("deliveries_days", self.deliveries_days)?;
        check("events_days", self.events_days)?;
        check("jobs_days", self.jobs_days)?;
        if let Some(days) = self.bodies_days {
            check("bodies_days", days)?;
        }
        Ok(())
    }
}

/// What a purge removed, or in a dry run would remove.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PurgeReport {
    pub attempts: u64,
    pub deliveries: u64,
    pub events: u64,
    pub jobs: u64,
    /// Attempts whose request and response bodies were emptied.
    pub bodies: u64,
    pub batches: u64,
}

impl PurgeReport {
    pub fn total(&self) -> u64 {
        self.attempts + self.deliveries + self.events + self.jobs
    }
}

/// One line of the system activity log: a job run, a deactivation, a rotation, a user or key
/// change; who did it and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ActivityEntry {
    pub id: uuid::Uuid,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    /// `user:<email>`, `api_key:<name>`, `engine`, `jobs`, or absent.
    pub actor: Option<String>,
    /// For example `job.purge`, `webhook.deactivated`, `webhook.secret_rotated`, `api_key.created`.
    pub kind: String,
    /// The id of what it concerns (a webhook, a job, a user), when there is one.
    pub subject: Option<String>,
    pub summary: String,
    pub rows_affected: Option<i64>,
    /// A JSON document with the run's details (start, end, counts, error), for jobs.
    pub detail: Option<String>,
}
