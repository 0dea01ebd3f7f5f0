use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_usage")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub webhook_id: Uuid,
    pub total_calls: i64,
    pub total_errors: i64,
    pub consecutive_errors: i32,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTimeUtc>,
    pub last_success_at: Option<DateTimeUtc>,
    pub first_failure_at: Option<DateTimeUtc>,
    /// When the notification addresses were last emailed that this webhook is failing.
    pub failing_notified_at: Option<DateTimeUtc>,
    /// The rate limit's theoretical arrival time (GCRA), microseconds since the Unix epoch: the
    /// next request may go `burst - 1` intervals before it.
    pub rate_tat_us: i64,
    /// The receiver asked Herald to wait (429 or 503 with `Retry-After`, or repeated 429s):
    /// nothing is sent to this webhook before then.
    pub paused_until: Option<DateTimeUtc>,
    pub pause_reason: Option<String>,
    /// The last place given in this webhook's line (ordered delivery).
    pub line_seq: i64,
    /// The delivery of an ordered webhook that failed last: while it is still failed, nothing
    /// behind it in the line is sent, until it is re-sent or a person skips it.
    pub line_blocked_by: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
