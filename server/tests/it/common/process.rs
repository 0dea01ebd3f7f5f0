//! `herald serve` as a separate process, for what only a real process shows: kill -9 and
//! several processes sharing one database.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::Duration,
};

pub struct HeraldProcess {
    pub addr: SocketAddr,
    child: Child,
}

impl HeraldProcess {
    pub fn start(database_url: &str, envs: &[(&str, &str)]) -> HeraldProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
        cmd.arg("serve")
            .env("HERALD_DATABASE_URL", database_url)
            .env("HERALD_LISTEN", "127.0.0.1:0")
            .env("HERALD_LOG", "info")
            .env("NO_COLOR", "1")
            .env("HERALD_ADMIN_EMAIL", super::ADMIN_EMAIL)
            .env("HERALD_ADMIN_PASSWORD", super::ADMIN_PASSWORD)
            .env("HERALD_DESTINATION_ALLOWLIST", "127.0.0.0/8")
            .env("HERALD_LEASE_MARGIN_SECS", "1")
            .env("HERALD_POLL_INTERVAL_MS", "100")
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start herald serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        // Keeps reading after the address so the process never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Warnings and errors show with the test's output when it fails.
                if line.contains(" WARN ") || line.contains(" ERROR ") {
                    eprintln!("[herald] {line}");
                }
                if let Some(rest) = line.split("Herald is listening: http://").nth(1) {
                    let addr = rest.split('/').next().unwrap_or_default().to_owned();
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(30)).expect("herald serve started listening");
        HeraldProcess { addr: addr.parse().expect("listening address"), child }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGKILL: no shutdown, no cleanup, claims left as they were.
    pub fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HeraldProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
