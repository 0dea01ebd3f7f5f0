//! Flow control per webhook: a rate limit (requests per second and a burst), and the state that
//! enforces it across every process sharing the database (the rate's theoretical arrival time,
//! GCRA) and the receiver's back-pressure (paused until, and why).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    RateLimit,
    RateLimitBurst,
}

#[derive(DeriveIden)]
enum WebhookUsage {
    Table,
    RateTatUs,
    PausedUntil,
    PauseReason,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        let columns = [
            (Webhooks::Table.into_iden(), integer_null(Webhooks::RateLimit)),
            (Webhooks::Table.into_iden(), integer_null(Webhooks::RateLimitBurst)),
            (WebhookUsage::Table.into_iden(), big_integer(WebhookUsage::RateTatUs).default(0).to_owned()),
            (WebhookUsage::Table.into_iden(), timestamp_with_time_zone_null(WebhookUsage::PausedUntil)),
            (WebhookUsage::Table.into_iden(), text_null(WebhookUsage::PauseReason)),
        ];
        for (table, mut column) in columns {
            manager.alter_table(Table::alter().table(table).add_column(&mut column).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            (WebhookUsage::Table.into_iden(), WebhookUsage::PauseReason.into_iden()),
            (WebhookUsage::Table.into_iden(), WebhookUsage::PausedUntil.into_iden()),
            (WebhookUsage::Table.into_iden(), WebhookUsage::RateTatUs.into_iden()),
            (Webhooks::Table.into_iden(), Webhooks::RateLimitBurst.into_iden()),
            (Webhooks::Table.into_iden(), Webhooks::RateLimit.into_iden()),
        ];
        for (table, column) in columns {
            manager.alter_table(Table::alter().table(table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
