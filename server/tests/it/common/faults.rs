//! Real storage faults for tests: SQLite files made unwritable (`chattr +i`, as root), a
//! PostgreSQL server of the test's own that it stops (`-m immediate`: a crash) and starts
//! again, and a client that keeps posting events through them and remembers every answer.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

/// Runs a command, panicking with its output when it fails.
fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a SQLite database's files (the database, its WAL and shared-memory index) immutable:
/// every write to them fails with EPERM, as a read-only remount or a failing disk would. The
/// files become writable again when this is dropped. Needs root (CI and these machines are).
pub struct Unwritable(Vec<PathBuf>);

impl Unwritable {
    pub fn sqlite_files(database: &Path) -> Unwritable {
        let files: Vec<PathBuf> = ["", "-wal", "-shm"]
            .iter()
            .map(|suffix| PathBuf::from(format!("{}{suffix}", database.display())))
            .filter(|p| p.exists())
            .collect();
        for f in &files {
            run(Command::new("chattr").arg("+i").arg(f));
        }
        Unwritable(files)
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = Command::new("chattr").arg("-i").arg(f).status();
        }
    }
}

/// A small filesystem of the test's own (tmpfs, mounted as root) that the test can fill to the
/// last byte and free again: a disk that runs full under SQLite.
pub struct SmallDisk {
    pub dir: tempfile::TempDir,
}

impl SmallDisk {
    pub fn mount(megabytes: u32) -> SmallDisk {
        let dir = tempfile::tempdir().expect("temp dir");
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path()));
        SmallDisk { dir }
    }

    fn filler(&self) -> PathBuf {
        self.dir.path().join("filler")
    }

    /// Writes a file that takes every byte left.
    pub fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.filler()).expect("filler");
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let mut byte = [0u8; 1];
        while f.write_all(&byte).is_ok() {
            byte[0] = 1;
        }
    }

    /// Removes the filler: the space is back.
    pub fn free(&self) {
        std::fs::remove_file(self.filler()).expect("remove filler");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// A PostgreSQL server of the test's own (initdb in a temp folder, a free port), so that
/// stopping it hurts no other test. Runs as the `postgres` user, as the server refuses root.
pub struct PrivatePostgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl PrivatePostgres {
    pub fn start() -> PrivatePostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries in /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|b| b.join("initdb").exists())
            .expect("initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().expect("temp dir");
        run(Command::new("chown").arg("postgres").arg(dir.path()));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = PrivatePostgres { port, dir, bin };
        run(pg
            .as_postgres("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "-D"])
            .arg(pg.data()));
        pg.resume();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_postgres(&self, tool: &str) -> Command {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(self.bin.join(tool));
        cmd
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Kills the server as a crash would (`pg_ctl stop -m immediate`: no checkpoint, every
    /// connection cut).
    pub fn crash(&self) {
        run(self.as_postgres("pg_ctl").args(["-m", "immediate", "-w", "stop", "-D"]).arg(self.data()));
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        run(self
            .as_postgres("pg_ctl")
            .args(["-w", "-o", &options, "-l"])
            .arg(self.dir.path().join("log"))
            .arg("-D")
            .arg(self.data())
            .arg("start"));
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.as_postgres("pg_ctl").args(["-m", "immediate", "stop", "-D"]).arg(self.data()).output();
    }
}

/// One `POST /events` and what came of it.
#[derive(Clone, Debug)]
pub struct Posted {
    pub at: Instant,
    pub took: Duration,
    pub status: u16,
    /// The event's id, when the answer was 202.
    pub id: Option<String>,
    pub retry_after: Option<String>,
    pub content_type: Option<String>,
}

/// Posts events one after another until stopped, remembering every answer.
pub struct Poster {
    pub posted: Arc<Mutex<Vec<Posted>>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Poster {
    pub fn start(api: super::Api) -> Poster {
        let posted = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let (log, stopped) = (posted.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut n = 0u64;
            while !stopped.is_cancelled() {
                n += 1;
                let started = Instant::now();
                let res = api
                    .client
                    .post(format!("{}/api/v1/events", api.base))
                    .header("authorization", format!("Bearer {}", api.key))
                    .json(&serde_json::json!({"type": "order.placed", "payload": {"n": n}}))
                    .send()
                    .await;
                let took = started.elapsed();
                let posted = match res {
                    Ok(res) => {
                        let header = |name: &str| {
                            res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
                        };
                        let (retry_after, content_type) = (header("retry-after"), header("content-type"));
                        let status = res.status().as_u16();
                        let body: serde_json::Value = res.json().await.unwrap_or_default();
                        let id = (status == 202).then(|| body["id"].as_str().unwrap_or_default().to_owned());
                        Posted { at: started, took, status, id, retry_after, content_type }
                    }
                    Err(_) => Posted {
                        at: started,
                        took,
                        status: 0,
                        id: None,
                        retry_after: None,
                        content_type: None,
                    },
                };
                let failed = posted.status != 202;
                log.lock().unwrap().push(posted);
                if failed {
                    // A client honouring Retry-After would wait longer; a short pause keeps the
                    // test quick while still posting all through the fault.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        Poster { posted, stop, task }
    }

    pub fn posted(&self) -> Vec<Posted> {
        self.posted.lock().unwrap().clone()
    }

    pub async fn stop(self) -> Vec<Posted> {
        self.stop.cancel();
        let _ = self.task.await;
        self.posted.lock().unwrap().clone()
    }
}
