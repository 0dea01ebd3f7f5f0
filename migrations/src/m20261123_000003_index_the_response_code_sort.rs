//! The delivery log sorts by response code as `COALESCE(last_response_code, 0)` (never-attempted
//! deliveries count as 0), then time and id. An index on exactly that expression makes the sort
//! a walk of the index instead of a sort of the whole table (measured: 1,973 ms -> see
//! BENCHMARKS.md, 1M deliveries on SQLite). Same statement on SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS idx_deliveries_code_created").await?;
        db.execute_unprepared(
            "CREATE INDEX idx_deliveries_code_sort ON deliveries \
             ((COALESCE(last_response_code, 0)), created_at, id)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX idx_deliveries_code_sort").await?;
        db.execute_unprepared(
            "CREATE INDEX idx_deliveries_code_created ON deliveries (last_response_code, created_at)",
        )
        .await?;
        Ok(())
    }
}
