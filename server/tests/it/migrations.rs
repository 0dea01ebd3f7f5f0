use migration::{Migrator, MigratorTrait};
use sea_orm::ConnectionTrait;

use crate::{both_databases, common::*};

both_databases!(migrations_run_up_down_and_up_again);

const TABLES: &[&str] = &[
    "users",
    "sessions",
    "api_keys",
    "webhooks",
    "webhook_usage",
    "events",
    "deliveries",
    "attempts",
    "settings",
    "jobs",
    "email_outbox",
    "activity_log",
];

async fn count_readable_tables(db: &sea_orm::DatabaseConnection) -> usize {
    let mut n = 0;
    for table in TABLES {
        if db.execute_unprepared(&format!("SELECT COUNT(*) FROM {table}")).await.is_ok() {
            n += 1;
        }
    }
    n
}

async fn migrations_run_up_down_and_up_again(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let db = test_db.connect().await;

    assert_eq!(count_readable_tables(&db).await, 0);
    Migrator::up(&db, None).await.expect("up");
    assert_eq!(count_readable_tables(&db).await, TABLES.len());
    assert!(Migrator::get_pending_migrations(&db).await.unwrap().is_empty());

    Migrator::down(&db, None).await.expect("down");
    assert_eq!(count_readable_tables(&db).await, 0, "down removes every table");

    Migrator::up(&db, None).await.expect("up again");
    assert_eq!(count_readable_tables(&db).await, TABLES.len());
    db.close().await.ok();
}
