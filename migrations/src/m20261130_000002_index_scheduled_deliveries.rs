//! The engine's claim reads only deliveries that are scheduled (pending or retrying, the only
//! statuses with a `next_attempt_at`), per webhook in due order, through a partial index that
//! holds nothing else: its cost no longer grows with the log (finished deliveries are not in
//! it) nor with one webhook's backlog (another webhook's due deliveries are found by a seek,
//! not by walking past the backlog). Both SQLite and PostgreSQL use a partial index whose
//! condition is `x IS NOT NULL` for a query comparing `x`. Rows that kept a `next_attempt_at`
//! in a finished status (none should) are cleared first, so the index holds exactly what is due.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE deliveries SET next_attempt_at = NULL \
             WHERE next_attempt_at IS NOT NULL AND status NOT IN ('pending', 'retrying')",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX idx_deliveries_scheduled ON deliveries (webhook_id, next_attempt_at) \
             WHERE next_attempt_at IS NOT NULL",
        )
        .await?;
        // Superseded: the claim was its only reader, with a status IN (...) that made it sort
        // every due delivery.
        db.execute_unprepared("DROP INDEX idx_deliveries_due").await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("CREATE INDEX idx_deliveries_due ON deliveries (status, next_attempt_at)")
            .await?;
        db.execute_unprepared("DROP INDEX idx_deliveries_scheduled").await?;
        Ok(())
    }
}
