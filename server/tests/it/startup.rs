use app::db::entities::{activity_log, users};
use app::models::Role;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::Value;

use crate::{both_databases, common::*};

both_databases!(starts_on_a_fresh_database_with_a_first_admin);

async fn starts_on_a_fresh_database_with_a_first_admin(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let res = app.client.get(app.url("/api/v1/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");

    let all = users::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(all.len(), 1, "exactly the first admin");
    assert_eq!(all[0].email, ADMIN_EMAIL);
    assert_eq!(all[0].role, Role::Admin);
    assert_ne!(all[0].password_hash, ADMIN_PASSWORD, "only a hash is stored");
    assert!(all[0].password_hash.starts_with("$argon2id$"));
    assert_eq!(
        activity_log::Entity::find().count(&app.db).await.unwrap(),
        1,
        "the creation is in the activity log"
    );
    app.stop().await;
}

/// PostgreSQL only: SQLite has no socket. sqlx 0.9.0 leaves Nagle's algorithm on, which made
/// every statement larger than one TCP segment (a batch of attempts with their bodies) wait
/// ~40 ms for a delayed ACK; Herald turns it off on each new connection (`app::db::connect`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_send_without_nagle_delay() {
    use sea_orm::ConnectionTrait;

    let test_db = TestDb::new(Backend::Postgres).await;
    let db = app::db::connect(&test_db.url, 3).await.expect("connect");
    // Open more than one pooled connection: each one must be covered, not only the first.
    let (a, b) =
        tokio::join!(db.execute_unprepared("SELECT pg_sleep(0.05)"), db.execute_unprepared("SELECT 1"));
    a.unwrap();
    b.unwrap();

    let port: u16 = url::Url::parse(&test_db.url).unwrap().port().unwrap_or(5432);
    let mut to_postgres = 0;
    for fd in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = fd.file_name().to_str().unwrap_or_default().parse::<i32>() else { continue };
        let mut peer: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: getpeername writes at most `len` bytes into `peer`.
        let ok = unsafe { libc::getpeername(fd, std::ptr::addr_of_mut!(peer).cast(), &mut len) } == 0;
        if !ok || i32::from(peer.sin_family) != libc::AF_INET || u16::from_be(peer.sin_port) != port {
            continue;
        }
        let mut nodelay: libc::c_int = 0;
        let mut size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `size` bytes into `nodelay`.
        unsafe {
            libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                std::ptr::addr_of_mut!(nodelay).cast(),
                &mut size,
            )
        };
        assert_eq!(nodelay, 1, "the connection on descriptor {fd} still waits for ACKs (Nagle)");
        to_postgres += 1;
    }
    assert!(to_postgres >= 2, "found {to_postgres} connections to PostgreSQL, expected the pool's two");
    db.close().await.ok();
}
