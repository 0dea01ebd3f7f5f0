use sea_orm::entity::prelude::*;

use crate::models::{AttemptTrigger, Outcome};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub delivery_id: Uuid,
    pub webhook_id: Uuid,
    pub attempt_number: i32,
    pub trigger: AttemptTrigger,
    pub started_at: DateTimeUtc,
    pub duration_ms: i32,
    pub request_url: String,
    pub request_method: String,
    /// JSON object of header names to values, as sent (signature included).
    pub request_headers: String,
    pub request_body: Option<String>,
    pub response_status: Option<i32>,
    pub response_headers: Option<String>,
    pub response_body: Option<String>,
    pub response_body_truncated: bool,
    pub outcome: Outcome,
    pub error: Option<String>,
    /// The Herald process that sent it.
    pub sent_by: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
