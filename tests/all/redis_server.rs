//! A real `redis-server` (Debian package `redis-server`) on a free loopback
//! port in a temp dir, stopped when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running Redis. [`RedisServer::restart`] keeps its port.
pub struct RedisServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

impl RedisServer {
    /// Starts one, or fails naming the package to install.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = Self {
            child: None,
            dir,
            port: free_port(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "could not start redis-server ({e}): these tests need a real Redis; \
                     install the Debian package `redis-server` (apt-get install redis-server)"
                )
            });
        self.child = Some(child);
        for _ in 0..200 {
            if self.command("PING").is_ok_and(|reply| reply == "+PONG") {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not answer PING on port {}", self.port);
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL: no chance to save or say goodbye).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills it and starts a fresh one (empty) on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// One inline command; the reply's first line, or the bulk it announces.
    pub fn command(&self, command: &str) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(format!("{command}\r\n").as_bytes())?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end().to_string();
        if let Some(length) = line.strip_prefix('$') {
            let length: usize = length.parse().unwrap_or(0);
            let mut bulk = vec![0; length + 2];
            reader.read_exact(&mut bulk)?;
            bulk.truncate(length);
            return Ok(String::from_utf8_lossy(&bulk).into_owned());
        }
        Ok(line)
    }

    /// Requests nodes have sent so far: scripts run, `GET`s and script
    /// loads from `INFO commandstats` (which also counts the commands a
    /// script runs inside Redis, not round trips).
    pub fn round_trips(&self) -> u64 {
        let info = self.command("INFO commandstats").expect("INFO answers");
        toolhost::serve::requests_in_commandstats(&info)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
