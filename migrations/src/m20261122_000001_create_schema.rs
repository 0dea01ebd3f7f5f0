//! The whole domain of DESIGN.md: webhooks and their usage, events, deliveries, attempts,
//! users, API keys, sessions, settings, jobs, the email outbox and the activity log.
//!
//! Payloads and header maps are stored as JSON text: Herald sends the exact bytes it was given
//! and never needs to query inside them.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    Role,
    CreatedAt,
    DisabledAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    CreatedAt,
    ExpiresAt,
    LastSeenAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    Name,
    Prefix,
    KeyHash,
    CreatedBy,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    Name,
    Url,
    Description,
    Secret,
    PreviousSecret,
    PreviousSecretExpiresAt,
    Auth,
    Headers,
    EventTypes,
    TimeoutMs,
    RetrySchedule,
    Enabled,
    State,
    StoppedBy,
    StoppedAt,
    DeactivatedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookUsage {
    Table,
    WebhookId,
    TotalCalls,
    TotalErrors,
    ConsecutiveErrors,
    LastError,
    LastErrorAt,
    LastSuccessAt,
    FirstFailureAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    EventType,
    Category,
    Payload,
    IdempotencyKey,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    EventId,
    WebhookId,
    EventType,
    Category,
    Status,
    AttemptCount,
    QuickRetryCount,
    NextAttemptAt,
    LastAttemptAt,
    LastResponseCode,
    LastOutcome,
    LastDurationMs,
    LeaseOwner,
    LeaseExpiresAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Attempts {
    Table,
    Id,
    DeliveryId,
    WebhookId,
    AttemptNumber,
    Trigger,
    StartedAt,
    DurationMs,
    RequestUrl,
    RequestMethod,
    RequestHeaders,
    RequestBody,
    ResponseStatus,
    ResponseHeaders,
    ResponseBody,
    ResponseBodyTruncated,
    Outcome,
    Error,
}

#[derive(DeriveIden)]
enum Settings {
    Table,
    Key,
    Value,
    UpdatedAt,
    UpdatedBy,
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Kind,
    Status,
    Params,
    ProgressDone,
    ProgressTotal,
    Cursor,
    Error,
    LeaseOwner,
    LeaseExpiresAt,
    CreatedBy,
    CreatedAt,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum EmailOutbox {
    Table,
    Id,
    Recipient,
    Subject,
    Body,
    CreatedAt,
    SentAt,
    Error,
}

#[derive(DeriveIden)]
enum ActivityLog {
    Table,
    Id,
    OccurredAt,
    Actor,
    Kind,
    Subject,
    Summary,
    Detail,
    RowsAffected,
}

fn fk(
    from_table: impl IntoIden,
    from_col: impl IntoIden,
    to_table: impl IntoIden,
    to_col: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from_table, from_col)
        .to(to_table, to_col)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn tstz(col: impl IntoIden) -> ColumnDef {
    timestamp_with_time_zone(col)
}

fn tstz_null(col: impl IntoIden) -> ColumnDef {
    timestamp_with_time_zone_null(col)
}

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    cols: Vec<DynIden>,
    unique: bool,
) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(col);
    }
    if unique {
        stmt.unique();
    }
    manager.create_index(stmt.to_owned()).await
}

macro_rules! cols {
    ($($c:expr),+ $(,)?) => { vec![$($c.into_iden()),+] };
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(pk_uuid(Users::Id))
                    .col(string_uniq(Users::Email))
                    .col(string(Users::PasswordHash))
                    .col(string(Users::Role))
                    .col(tstz(Users::CreatedAt))
                    .col(tstz_null(Users::DisabledAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(string(Sessions::Id).primary_key())
                    .col(uuid(Sessions::UserId))
                    .col(tstz(Sessions::CreatedAt))
                    .col(tstz(Sessions::ExpiresAt))
                    .col(tstz(Sessions::LastSeenAt))
                    .foreign_key(&mut fk(Sessions::Table, Sessions::UserId, Users::Table, Users::Id))
                    .to_owned(),
            )
            .await?;
        index(manager, "idx_sessions_user", Sessions::Table, cols![Sessions::UserId], false).await?;
        index(manager, "idx_sessions_expires", Sessions::Table, cols![Sessions::ExpiresAt], false).await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(pk_uuid(ApiKeys::Id))
                    .col(string(ApiKeys::Name))
                    .col(string(ApiKeys::Prefix))
                    .col(string_uniq(ApiKeys::KeyHash))
                    .col(uuid_null(ApiKeys::CreatedBy))
                    .col(tstz(ApiKeys::CreatedAt))
                    .col(tstz_null(ApiKeys::LastUsedAt))
                    .col(tstz_null(ApiKeys::RevokedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Webhooks::Table)
                    .col(pk_uuid(Webhooks::Id))
                    .col(string(Webhooks::Name))
                    .col(text(Webhooks::Url))
                    .col(text(Webhooks::Description).default(""))
                    .col(string(Webhooks::Secret))
                    .col(string_null(Webhooks::PreviousSecret))
                    .col(tstz_null(Webhooks::PreviousSecretExpiresAt))
                    .col(text(Webhooks::Auth))
                    .col(text(Webhooks::Headers))
                    .col(text(Webhooks::EventTypes))
                    .col(integer(Webhooks::TimeoutMs))
                    .col(text_null(Webhooks::RetrySchedule))
                    .col(boolean(Webhooks::Enabled))
                    .col(string(Webhooks::State))
                    .col(string_null(Webhooks::StoppedBy))
                    .col(tstz_null(Webhooks::StoppedAt))
                    .col(tstz_null(Webhooks::DeactivatedAt))
                    .col(tstz(Webhooks::CreatedAt))
                    .col(tstz(Webhooks::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(manager, "idx_webhooks_name", Webhooks::Table, cols![Webhooks::Name], false).await?;

        manager
            .create_table(
                Table::create()
                    .table(WebhookUsage::Table)
                    .col(uuid(WebhookUsage::WebhookId).primary_key())
                    .col(big_integer(WebhookUsage::TotalCalls).default(0))
                    .col(big_integer(WebhookUsage::TotalErrors).default(0))
                    .col(integer(WebhookUsage::ConsecutiveErrors).default(0))
                    .col(text_null(WebhookUsage::LastError))
                    .col(tstz_null(WebhookUsage::LastErrorAt))
                    .col(tstz_null(WebhookUsage::LastSuccessAt))
                    .col(tstz_null(WebhookUsage::FirstFailureAt))
                    .foreign_key(&mut fk(
                        WebhookUsage::Table,
                        WebhookUsage::WebhookId,
                        Webhooks::Table,
                        Webhooks::Id,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(pk_uuid(Events::Id))
                    .col(string(Events::EventType))
                    .col(string(Events::Category))
                    .col(text(Events::Payload))
                    .col(string_null(Events::IdempotencyKey).unique_key())
                    .col(tstz(Events::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(manager, "idx_events_created", Events::Table, cols![Events::CreatedAt, Events::Id], false)
            .await?;
        index(
            manager,
            "idx_events_type_created",
            Events::Table,
            cols![Events::EventType, Events::CreatedAt],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Deliveries::Table)
                    .col(pk_uuid(Deliveries::Id))
                    .col(uuid(Deliveries::EventId))
                    .col(uuid(Deliveries::WebhookId))
                    .col(string(Deliveries::EventType))
                    .col(string(Deliveries::Category))
                    .col(string(Deliveries::Status))
                    .col(integer(Deliveries::AttemptCount).default(0))
                    .col(integer(Deliveries::QuickRetryCount).default(0))
                    .col(tstz_null(Deliveries::NextAttemptAt))
                    .col(tstz_null(Deliveries::LastAttemptAt))
                    .col(integer_null(Deliveries::LastResponseCode))
                    .col(string_null(Deliveries::LastOutcome))
                    .col(integer_null(Deliveries::LastDurationMs))
                    .col(string_null(Deliveries::LeaseOwner))
                    .col(tstz_null(Deliveries::LeaseExpiresAt))
                    .col(tstz(Deliveries::CreatedAt))
                    .col(tstz(Deliveries::UpdatedAt))
                    .foreign_key(&mut fk(Deliveries::Table, Deliveries::EventId, Events::Table, Events::Id))
                    .foreign_key(&mut fk(
                        Deliveries::Table,
                        Deliveries::WebhookId,
                        Webhooks::Table,
                        Webhooks::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        // Claiming due work, the log's default view, per-webhook views and the log's filters.
        index(
            manager,
            "idx_deliveries_due",
            Deliveries::Table,
            cols![Deliveries::Status, Deliveries::NextAttemptAt],
            false,
        )
        .await?;
        index(
            manager,
            "idx_deliveries_created",
            Deliveries::Table,
            cols![Deliveries::CreatedAt, Deliveries::Id],
            false,
        )
        .await?;
        index(
            manager,
            "idx_deliveries_webhook_created",
            Deliveries::Table,
            cols![Deliveries::WebhookId, Deliveries::CreatedAt],
            false,
        )
        .await?;
        index(
            manager,
            "idx_deliveries_status_created",
            Deliveries::Table,
            cols![Deliveries::Status, Deliveries::CreatedAt],
            false,
        )
        .await?;
        index(
            manager,
            "idx_deliveries_category_created",
            Deliveries::Table,
            cols![Deliveries::Category, Deliveries::CreatedAt],
            false,
        )
        .await?;
        index(
            manager,
            "idx_deliveries_code_created",
            Deliveries::Table,
            cols![Deliveries::LastResponseCode, Deliveries::CreatedAt],
            false,
        )
        .await?;
        index(manager, "idx_deliveries_event", Deliveries::Table, cols![Deliveries::EventId], false).await?;

        manager
            .create_table(
                Table::create()
                    .table(Attempts::Table)
                    .col(pk_uuid(Attempts::Id))
                    .col(uuid(Attempts::DeliveryId))
                    .col(uuid(Attempts::WebhookId))
                    .col(integer(Attempts::AttemptNumber))
                    .col(string(Attempts::Trigger))
                    .col(tstz(Attempts::StartedAt))
                    .col(integer(Attempts::DurationMs))
                    .col(text(Attempts::RequestUrl))
                    .col(string(Attempts::RequestMethod))
                    .col(text(Attempts::RequestHeaders))
                    .col(text_null(Attempts::RequestBody))
                    .col(integer_null(Attempts::ResponseStatus))
                    .col(text_null(Attempts::ResponseHeaders))
                    .col(text_null(Attempts::ResponseBody))
                    .col(boolean(Attempts::ResponseBodyTruncated).default(false))
                    .col(string(Attempts::Outcome))
                    .col(text_null(Attempts::Error))
                    .foreign_key(&mut fk(
                        Attempts::Table,
                        Attempts::DeliveryId,
                        Deliveries::Table,
                        Deliveries::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_attempts_delivery",
            Attempts::Table,
            cols![Attempts::DeliveryId, Attempts::AttemptNumber],
            false,
        )
        .await?;
        index(manager, "idx_attempts_started", Attempts::Table, cols![Attempts::StartedAt], false).await?;
        index(
            manager,
            "idx_attempts_webhook_started",
            Attempts::Table,
            cols![Attempts::WebhookId, Attempts::StartedAt],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Settings::Table)
                    .col(string(Settings::Key).primary_key())
                    .col(text(Settings::Value))
                    .col(tstz(Settings::UpdatedAt))
                    .col(string_null(Settings::UpdatedBy))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .col(pk_uuid(Jobs::Id))
                    .col(string(Jobs::Kind))
                    .col(string(Jobs::Status))
                    .col(text(Jobs::Params))
                    .col(big_integer(Jobs::ProgressDone).default(0))
                    .col(big_integer_null(Jobs::ProgressTotal))
                    .col(text_null(Jobs::Cursor))
                    .col(text_null(Jobs::Error))
                    .col(string_null(Jobs::LeaseOwner))
                    .col(tstz_null(Jobs::LeaseExpiresAt))
                    .col(string_null(Jobs::CreatedBy))
                    .col(tstz(Jobs::CreatedAt))
                    .col(tstz_null(Jobs::StartedAt))
                    .col(tstz_null(Jobs::FinishedAt))
                    .to_owned(),
            )
            .await?;
        index(manager, "idx_jobs_status", Jobs::Table, cols![Jobs::Status, Jobs::CreatedAt], false).await?;

        manager
            .create_table(
                Table::create()
                    .table(EmailOutbox::Table)
                    .col(pk_uuid(EmailOutbox::Id))
                    .col(string(EmailOutbox::Recipient))
                    .col(string(EmailOutbox::Subject))
                    .col(text(EmailOutbox::Body))
                    .col(tstz(EmailOutbox::CreatedAt))
                    .col(tstz_null(EmailOutbox::SentAt))
                    .col(text_null(EmailOutbox::Error))
                    .to_owned(),
            )
            .await?;
        index(manager, "idx_email_outbox_created", EmailOutbox::Table, cols![EmailOutbox::CreatedAt], false)
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ActivityLog::Table)
                    .col(pk_uuid(ActivityLog::Id))
                    .col(tstz(ActivityLog::OccurredAt))
                    .col(string_null(ActivityLog::Actor))
                    .col(string(ActivityLog::Kind))
                    .col(string_null(ActivityLog::Subject))
                    .col(text(ActivityLog::Summary))
                    .col(text_null(ActivityLog::Detail))
                    .col(big_integer_null(ActivityLog::RowsAffected))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_activity_log_occurred",
            ActivityLog::Table,
            cols![ActivityLog::OccurredAt],
            false,
        )
        .await?;
        index(
            manager,
            "idx_activity_log_kind",
            ActivityLog::Table,
            cols![ActivityLog::Kind, ActivityLog::OccurredAt],
            false,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children before parents so foreign keys never block a drop.
        manager.drop_table(Table::drop().table(ActivityLog::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(EmailOutbox::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Jobs::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Settings::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Attempts::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Deliveries::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Events::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(WebhookUsage::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Webhooks::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(ApiKeys::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Sessions::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Users::Table).to_owned()).await?;
        Ok(())
    }
}
