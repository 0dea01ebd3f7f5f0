//! Per-webhook failure notices: the addresses told when a webhook is deactivated (and, if asked,
//! when it starts failing), and when the last "failing" email went, so a flapping receiver does
//! not flood anyone.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    NotifyEmails,
    NotifyOnFailing,
}

#[derive(DeriveIden)]
enum WebhookUsage {
    Table,
    FailingNotifiedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        manager
            .alter_table(
                Table::alter()
                    .table(Webhooks::Table)
                    .add_column(text(Webhooks::NotifyEmails).default("[]"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Webhooks::Table)
                    .add_column(boolean(Webhooks::NotifyOnFailing).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookUsage::Table)
                    .add_column(timestamp_with_time_zone_null(WebhookUsage::FailingNotifiedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookUsage::Table)
                    .drop_column(WebhookUsage::FailingNotifiedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter().table(Webhooks::Table).drop_column(Webhooks::NotifyOnFailing).to_owned(),
            )
            .await?;
        manager
            .alter_table(Table::alter().table(Webhooks::Table).drop_column(Webhooks::NotifyEmails).to_owned())
            .await
    }
}
