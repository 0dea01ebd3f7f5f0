use sea_orm::entity::prelude::*;

use crate::models::{AttemptTrigger, DeliveryStatus, Outcome};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub event_id: Uuid,
    pub webhook_id: Uuid,
    pub event_type: String,
    pub category: String,
    pub status: DeliveryStatus,
    pub attempt_count: i32,
    pub quick_retry_count: i32,
    pub next_attempt_at: Option<DateTimeUtc>,
    pub last_attempt_at: Option<DateTimeUtc>,
    pub last_response_code: Option<i32>,
    pub last_outcome: Option<Outcome>,
    pub last_duration_ms: Option<i32>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Slots of the retry schedule used so far (quick retries and re-sends use none).
    pub retry_slot: i32,
    /// What asked for the next attempt when it was not the schedule: a re-send or a bulk job.
    pub pending_trigger: Option<AttemptTrigger>,
    /// Its place in its webhook's line, when the webhook delivers in order (`None` otherwise).
    pub line_seq: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::webhooks::Entity",
        from = "Column::WebhookId",
        to = "super::webhooks::Column::Id"
    )]
    Webhook,
}

impl Related<super::webhooks::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Webhook.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
