use sea_orm::entity::prelude::*;

use crate::models::WebhookState;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub url: String,
    pub description: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTimeUtc>,
    /// JSON: `{"type":"none"}`, `{"type":"basic",...}` or `{"type":"api_key",...}`.
    pub auth: String,
    /// JSON object of custom header names to values.
    pub headers: String,
    /// JSON array of subscribed event types, exact or wildcard.
    pub event_types: String,
    pub timeout_ms: i32,
    /// JSON array of seconds; the global schedule when absent.
    pub retry_schedule: Option<String>,
    pub enabled: bool,
    pub state: WebhookState,
    pub stopped_by: Option<String>,
    pub stopped_at: Option<DateTimeUtc>,
    pub deactivated_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// JSON array of email addresses told when this webhook is deactivated (or starts failing).
    pub notify_emails: String,
    /// Also email `notify_emails` when the webhook starts failing (at most once per interval).
    pub notify_on_failing: bool,
    /// Requests per second to this webhook, across all processes; the global default when absent.
    pub rate_limit: Option<i32>,
    /// Requests that may go at once after a quiet spell; `rate_limit` when absent.
    pub rate_limit_burst: Option<i32>,
    /// Ordered delivery since then: one request at a time, in the order events were accepted,
    /// and a failed delivery blocks the ones behind it. `None`: not ordered.
    pub ordered_since: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::deliveries::Entity")]
    Deliveries,
}

impl Related<super::deliveries::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Deliveries.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
