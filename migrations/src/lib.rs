//! Herald's database schema, applied at `herald serve` start and by `herald migrate`.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_schema;
mod m20261123_000001_add_engine_columns;
mod m20261123_000002_add_one_purge_at_a_time;
mod m20261123_000003_index_the_response_code_sort;
mod m20261125_000001_index_the_event_type_filter;
mod m20261130_000001_create_workers;
mod m20261130_000002_index_scheduled_deliveries;
mod m20261130_000003_webhook_failure_notices;
mod m20261130_000004_webhook_flow_control;
mod m20261130_000005_ordered_delivery;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_schema::Migration),
            Box::new(m20261123_000001_add_engine_columns::Migration),
            Box::new(m20261123_000002_add_one_purge_at_a_time::Migration),
            Box::new(m20261123_000003_index_the_response_code_sort::Migration),
            Box::new(m20261125_000001_index_the_event_type_filter::Migration),
            Box::new(m20261130_000001_create_workers::Migration),
            Box::new(m20261130_000002_index_scheduled_deliveries::Migration),
            Box::new(m20261130_000003_webhook_failure_notices::Migration),
            Box::new(m20261130_000004_webhook_flow_control::Migration),
            Box::new(m20261130_000005_ordered_delivery::Migration),
        ]
    }
}
