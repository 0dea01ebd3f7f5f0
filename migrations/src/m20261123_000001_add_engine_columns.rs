//! What the delivery engine keeps beside a delivery: which slot of the retry schedule it has
//! used, what triggered the next attempt (a person's re-send or a bulk job), and which process
//! sent each attempt.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    RetrySlot,
    PendingTrigger,
    LeaseExpiresAt,
    WebhookId,
    Status,
    NextAttemptAt,
}

#[derive(DeriveIden)]
enum Attempts {
    Table,
    SentBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        manager
            .alter_table(
                Table::alter()
                    .table(Deliveries::Table)
                    .add_column(integer(Deliveries::RetrySlot).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Deliveries::Table)
                    .add_column(string_null(Deliveries::PendingTrigger))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter().table(Attempts::Table).add_column(string_null(Attempts::SentBy)).to_owned(),
            )
            .await?;
        // Counting requests in flight per webhook, and a webhook's queue when it is stopped.
        manager
            .create_index(
                Index::create()
                    .name("idx_deliveries_lease")
                    .table(Deliveries::Table)
                    .col(Deliveries::LeaseExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deliveries_webhook_status_due")
                    .table(Deliveries::Table)
                    .col(Deliveries::WebhookId)
                    .col(Deliveries::Status)
                    .col(Deliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop().name("idx_deliveries_webhook_status_due").table(Deliveries::Table).to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name("idx_deliveries_lease").table(Deliveries::Table).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(Attempts::Table).drop_column(Attempts::SentBy).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter().table(Deliveries::Table).drop_column(Deliveries::PendingTrigger).to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter().table(Deliveries::Table).drop_column(Deliveries::RetrySlot).to_owned(),
            )
            .await
    }
}
