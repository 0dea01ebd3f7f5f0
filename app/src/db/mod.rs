//! The query layer: every read and write of Herald's data goes through these functions,
//! whether it comes from the JSON API, a server function or the engine.

pub mod activity;
pub mod api_keys;
pub mod deliveries;
pub mod entities;
pub mod events;
pub mod gather;
pub mod health;
pub mod jobs;
pub mod lines;
pub mod outbox;
pub mod retention;
pub mod sessions;
pub mod stats;
pub mod users;
pub mod webhooks;
pub mod workers;

use std::{path::Path, time::Duration};

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

/// The current time at the database's precision (microseconds), so values read back compare
/// equal to the values written on SQLite and PostgreSQL alike (keyset cursors rely on this).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The most rows one multi-row statement carries (an INSERT, an `UPDATE ... FROM (VALUES ...)`,
/// an `IN` list): at 19 columns, the widest written (deliveries), that stays far under SQLite's
/// bound-parameter limit (32,766) and PostgreSQL's (65,535).
pub const ROWS_PER_STATEMENT: usize = 500;

/// The most rows of one multi-row statement on SQLite: see `statement_chunks`.
const SQLITE_ROWS_PER_STATEMENT: usize = 32;

/// Splits `rows` into the chunks that multi-row statements (an INSERT, an `UPDATE ... FROM
/// (VALUES ...)`, an `IN` list) are written for. On SQLite each chunk holds a power of two of
/// rows, at most `SQLITE_ROWS_PER_STATEMENT` (a batch of 45: 32, 8, 4, 1): a statement's text then
/// has one of six shapes, which each connection prepares once and keeps in its statement cache.
/// Chunks as long as the batch made a new text for nearly every batch size: every connection's
/// cache (100 statements) filled with them, tens of KB each, 64 of the 134 MiB of Herald's heap
/// in a fan-out run (heaptrack), and each was parsed anew. An extra statement costs SQLite a hop
/// to the connection's thread (measured: 7% of the closed loop's rate, taken for half the
/// memory); on PostgreSQL it is a round trip, so there a chunk is as long as it may be
/// (`ROWS_PER_STATEMENT`).
pub fn statement_chunks<T>(backend: DbBackend, rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = match backend {
            DbBackend::Sqlite => {
                let most = rest.len().min(SQLITE_ROWS_PER_STATEMENT);
                1 << most.ilog2()
            }
            _ => rest.len().min(ROWS_PER_STATEMENT),
        };
        let (chunk, after) = rest.split_at(n);
        rest = after;
        Some(chunk)
    })
}

/// Starts a transaction that writes. On SQLite it takes the write lock at once (`BEGIN
/// IMMEDIATE`): a transaction that reads before it writes then waits its turn (the busy
/// timeout) instead of failing with "database is locked" when another connection wrote since
/// its read began. PostgreSQL ignores the mode; inside a transaction this is a savepoint.
pub async fn begin_write<C: TransactionTrait>(db: &C) -> Result<C::Transaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// SQLite lets one connection write at a time, and a connection that finds the database busy
/// polls for it with sleeps of 1, 2, 5, 10 ms and more. The busiest writers (the event writer,
/// the engine's claims and its recorder) take turns here first, so the next one starts the
/// moment the previous one commits. `None` on PostgreSQL, which has no such limit. Never take
/// it inside a transaction that already holds it: it is not reentrant.
pub async fn sqlite_write_turn(
    db: &impl sea_orm::ConnectionTrait,
) -> Option<tokio::sync::MutexGuard<'static, ()>> {
    static SQLITE_WRITER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    match db.get_database_backend() {
        DbBackend::Sqlite => Some(SQLITE_WRITER.lock().await),
        _ => None,
    }
}

/// Connects to SQLite (`sqlite://path?mode=rwc`) or PostgreSQL (`postgres://...`).
/// For SQLite the file's folder is created and the database runs in WAL mode.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_owned());
    // Short time-outs: a database that does not hand out a connection within them is
    // unavailable, and callers are better told so (503 and Retry-After) than kept waiting.
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(2))
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .max_connections(max_connections);
    if let Some(path) = sqlite_path(url) {
        if let Some(dir) = Path::new(&path).parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                DbErr::Custom(format!("cannot create the folder {} for the SQLite file: {e}", dir.display()))
            })?;
        }
        opts.map_sqlx_sqlite_opts(|o| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .create_if_missing(true)
                // Pages are read through a memory map rather than copied in by read(): every
                // commit empties the other connections' page caches, so under load almost
                // every page a statement touches was otherwise a pread (BENCHMARKS.md).
                .pragma("mmap_size", MMAP_BYTES.to_string())
        });
    }
    // sqlx 0.9.0 leaves Nagle's algorithm on for its TCP connections (sqlx issue #4335, fixed by
    // #4336 but not released): a statement larger than one segment, such as a batch of attempts
    // with their bodies, then waits ~40 ms for the server's delayed ACK. Measured on PostgreSQL:
    // a 39-row attempt insert took 44 ms; see BENCHMARKS.md. Until sqlx sets it again, every new
    // connection turns it off.
    opts.map_sqlx_postgres_pool_opts(|pool| {
        pool.after_connect(|_, _| {
            Box::pin(async {
                disable_nagle_on_tcp_sockets();
                Ok(())
            })
        })
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                Ok(!health::predates_last_failure(meta.age)
                    && !sea_orm::sqlx::Connection::is_in_transaction(conn))
            })
        })
    });
    opts.map_sqlx_sqlite_pool_opts(|pool| {
        pool.before_acquire(|conn, meta| {
            Box::pin(async move {
                if health::predates_last_failure(meta.age) {
                    return Ok(false);
                }
                sqlite_connection_is_clean(conn).await
            })
        })
    });
    // Switching a new SQLite file to WAL needs a moment of exclusive access: another process
    // starting at the same time (or migrating) can hold it. Wait for it rather than fail.
    let mut tries = 0;
    loop {
        match Database::connect(opts.clone()).await {
            Err(e) if tries < 20 && e.to_string().contains("database is locked") => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// How much of a SQLite file is read through a memory map (address space, not memory: the
/// pages are the kernel's page cache, shared by every connection).
const MMAP_BYTES: u64 = 4 << 30;

/// How long a caller waits for a pooled connection before the database counts as unavailable.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(800);

/// Whether a pooled SQLite connection may be handed out: it must not be inside a transaction,
/// neither by sqlx's count nor by SQLite's own autocommit flag. A COMMIT that fails (a disk
/// that stopped writing) can leave its transaction open with sqlx still counting it; the next
/// "transaction" on that connection would then be a savepoint inside it, whose "commit" writes
/// nothing durable, while the open transaction holds the write lock ("database is locked" for
/// every other connection). Such a connection is closed instead (closing rolls back and frees
/// the lock) and the pool opens a fresh one.
async fn sqlite_connection_is_clean(
    conn: &mut sea_orm::sqlx::SqliteConnection,
) -> Result<bool, sea_orm::sqlx::Error> {
    if sea_orm::sqlx::Connection::is_in_transaction(conn) {
        tracing::warn!("closing a database connection left inside a transaction");
        return Ok(false);
    }
    let mut handle = conn.lock_handle().await?;
    let raw = handle.as_raw_handle().as_ptr();
    // SAFETY: the handle is locked, so sqlx's worker makes no call on it meanwhile; both
    // functions only read the connection's flags.
    let (autocommit, read_only) = unsafe {
        (
            libsqlite3_sys::sqlite3_get_autocommit(raw),
            libsqlite3_sys::sqlite3_db_readonly(raw, c"main".as_ptr()),
        )
    };
    if autocommit == 0 {
        tracing::warn!("closing a database connection left inside a transaction");
        return Ok(false);
    }
    // Opened while the file could not be written (SQLite then falls back to read-only): it
    // would refuse every write even after the file is writable again.
    if read_only == 1 {
        tracing::warn!("closing a database connection that SQLite opened read-only");
        return Ok(false);
    }
    Ok(true)
}

/// Writes a consistent copy of a SQLite database to `file` while other connections go on
/// reading and writing (`VACUUM INTO`: one read transaction, so the copy is one moment's state).
pub async fn backup_sqlite(db: &DatabaseConnection, file: &str) -> Result<(), DbErr> {
    use sea_orm::{ConnectionTrait, Statement};
    db.execute_raw(Statement::from_sql_and_values(DbBackend::Sqlite, "VACUUM INTO ?", [file.into()])).await?;
    Ok(())
}

/// Keeps SQLite's query-planner statistics current (`PRAGMA optimize`): without them it may walk
/// the wrong index of the delivery log. Mask 0x10002 looks at every table, not only those this
/// pooled connection happened to query; `analysis_limit` samples each index (SQLite's advice).
/// The analysis still visits every leaf page to count rows, so it runs with the memory map off:
/// through the map, the first purge after a database filled from empty read 400 MB and Herald's
/// resident set jumped to ~480 MiB (BENCHMARKS.md). PostgreSQL's
/// autovacuum does this by itself. A failure only costs query speed, so it is logged, not returned.
pub async fn optimize(db: &DatabaseConnection) {
    use sea_orm::ConnectionTrait;
    if db.get_database_backend() == DbBackend::Sqlite {
        // One call, so all run on the same pooled connection (the settings are per connection).
        // The analysis reads without the memory map: counting a table's rows still visits every
        // leaf page, and through the map each page it reads would count in Herald's RSS.
        let sql = format!(
            "PRAGMA mmap_size=0; PRAGMA analysis_limit=1000; PRAGMA optimize=0x10002; \
             PRAGMA mmap_size={MMAP_BYTES}"
        );
        if let Err(e) = db.execute_unprepared(&sql).await {
            tracing::warn!(error = %e, "cannot refresh the query planner's statistics");
        }
    }
}

/// Sets `TCP_NODELAY` on every TCP socket of this process. sqlx does not hand out its sockets,
/// so the connection just opened is found among the process's descriptors (Linux `/proc`;
/// elsewhere nothing happens). Harmless for the other sockets: hyper and reqwest set it on
/// theirs anyway, and descriptors that are not TCP sockets refuse the option.
fn disable_nagle_on_tcp_sockets() {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else { return };
    for fd in fds.flatten().filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()) {
        let on: libc::c_int = 1;
        // SAFETY: setsockopt only reads `on`; on a descriptor that is not a TCP socket (or was
        // closed meanwhile) it fails with an error code, which is ignored.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                std::ptr::addr_of!(on).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// The file path of a SQLite URL, or None for other databases and in-memory SQLite.
pub fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| path.to_owned())
}

/// Rows were fetched with `limit + 1`: keeps `limit` of them and, when there were more, the
/// cursor of the last one kept.
pub(crate) fn split_page<T>(
    mut rows: Vec<T>,
    limit: u64,
    cursor_of: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    if rows.len() as u64 > limit {
        rows.truncate(limit as usize);
        let cursor = rows.last().map(cursor_of);
        (rows, cursor)
    } else {
        (rows, None)
    }
}

pub fn is_postgres(db: &DatabaseConnection) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

#[cfg(test)]
mod tests {
    use sea_orm::DbBackend;

    use super::{statement_chunks, ROWS_PER_STATEMENT};

    fn sizes(backend: DbBackend, n: usize) -> Vec<usize> {
        let rows: Vec<usize> = (0..n).collect();
        let chunks: Vec<&[usize]> = statement_chunks(backend, &rows).collect();
        assert_eq!(chunks.concat(), rows, "every row once, in order");
        chunks.iter().map(|c| c.len()).collect()
    }

    #[test]
    fn sqlite_statements_take_one_of_six_shapes_postgres_statements_are_as_long_as_they_may_be() {
        assert_eq!(sizes(DbBackend::Sqlite, 0), Vec::<usize>::new());
        assert_eq!(sizes(DbBackend::Sqlite, 1), [1]);
        assert_eq!(sizes(DbBackend::Sqlite, 45), [32, 8, 4, 1]);
        assert_eq!(sizes(DbBackend::Sqlite, 70), [32, 32, 4, 2]);
        let shapes: std::collections::BTreeSet<usize> =
            (1..600).flat_map(|n| sizes(DbBackend::Sqlite, n)).collect();
        assert_eq!(shapes.into_iter().collect::<Vec<_>>(), [1, 2, 4, 8, 16, 32]);
        assert_eq!(sizes(DbBackend::Postgres, 45), [45]);
        assert_eq!(sizes(DbBackend::Postgres, 1_100), [ROWS_PER_STATEMENT, ROWS_PER_STATEMENT, 100]);
    }
}
