//! Ordered delivery (opt-in per webhook): the webhook's `ordered_since` (null: not ordered), each
//! delivery's place in its webhook's line (`line_seq`, numbered per webhook in the order its
//! events were committed), the webhook's last number and the failed delivery that blocks its
//! line (`webhook_usage`). The index holds only the scheduled deliveries of ordered webhooks, so
//! webhooks that are not ordered pay nothing for it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    OrderedSince,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    LineSeq,
}

#[derive(DeriveIden)]
enum WebhookUsage {
    Table,
    LineSeq,
    LineBlockedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        let columns = [
            (Webhooks::Table.into_iden(), timestamp_with_time_zone_null(Webhooks::OrderedSince)),
            (Deliveries::Table.into_iden(), big_integer_null(Deliveries::LineSeq)),
            (WebhookUsage::Table.into_iden(), big_integer(WebhookUsage::LineSeq).default(0).to_owned()),
            (WebhookUsage::Table.into_iden(), uuid_null(WebhookUsage::LineBlockedBy)),
        ];
        for (table, mut column) in columns {
            manager.alter_table(Table::alter().table(table).add_column(&mut column).to_owned()).await?;
        }
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX idx_deliveries_line ON deliveries (webhook_id, line_seq) \
                 WHERE line_seq IS NOT NULL AND next_attempt_at IS NOT NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared("DROP INDEX idx_deliveries_line").await?;
        let columns = [
            (WebhookUsage::Table.into_iden(), WebhookUsage::LineBlockedBy.into_iden()),
            (WebhookUsage::Table.into_iden(), WebhookUsage::LineSeq.into_iden()),
            (Deliveries::Table.into_iden(), Deliveries::LineSeq.into_iden()),
            (Webhooks::Table.into_iden(), Webhooks::OrderedSince.into_iden()),
        ];
        for (table, column) in columns {
            manager.alter_table(Table::alter().table(table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
