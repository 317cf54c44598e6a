//! The lean JSON-RPC client end of `toolhost mcp`'s pipes, and process CPU
//! from `/proc`.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{self, Child, Command};
use std::time::Duration;

use serde_json::{Value, json};

use super::McpBenchConfig;
use crate::bench::BenchError;

/// An `initialize` request (the 2025-11-25 handshake).
pub(super) fn initialize(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "toolhost-bench", "version": env!("CARGO_PKG_VERSION")},
    }})
}

/// User plus system CPU of a whole process so far, from `/proc/<pid>/stat`
/// (in clock ticks of 10 ms, the Linux default).
pub(super) fn process_cpu(pid: u32) -> Result<Duration, BenchError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| {
        BenchError::Setup(format!("cannot read /proc/{pid}/stat (Linux only): {e}"))
    })?;
    // The command name may hold spaces; the fields after it are plain.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let tick = |index: usize| fields.get(index).and_then(|f| f.parse::<u64>().ok());
    // utime and stime are fields 14 and 15; `fields` starts at field 3.
    match (tick(11), tick(12)) {
        (Some(user), Some(system)) => Ok(Duration::from_millis((user + system) * 10)),
        _ => Err(BenchError::Setup(format!(
            "unexpected /proc/{pid}/stat: {stat}"
        ))),
    }
}

/// Context switches of every thread of a process so far (voluntary and
/// not, from `/proc/<pid>/task/*/status`): each is a thread that woke up
/// or was woken.
pub(super) fn process_switches(pid: u32) -> Result<u64, BenchError> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).map_err(|e| {
        BenchError::Setup(format!("cannot read /proc/{pid}/task (Linux only): {e}"))
    })?;
    let mut switches = 0;
    for task in tasks.flatten() {
        // A thread that ended since the listing counts no more.
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        switches += status
            .lines()
            .filter(|l| {
                l.starts_with("voluntary_ctxt_switches:")
                    || l.starts_with("nonvoluntary_ctxt_switches:")
            })
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Ok(switches)
}

/// What the child's stdin and stdout are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stdio {
    /// Pipes, as Python clients and shells start a server.
    Pipes,
    /// Unix sockets, as Node (and the editors and apps built on it) does.
    Sockets,
}

/// `toolhost mcp` as a child process, and the client end of its stdio.
pub(super) struct Server {
    child: Child,
    input: BufWriter<Box<dyn Write + Send>>,
    output: BufReader<Box<dyn Read + Send>>,
    line: String,
    next_id: u64,
}

impl Server {
    pub(super) fn spawn(config: &McpBenchConfig, tools: &Path) -> Result<Self, BenchError> {
        Self::spawn_with(config, tools, Stdio::Pipes)
    }

    pub(super) fn spawn_with(
        config: &McpBenchConfig,
        tools: &Path,
        stdio: Stdio,
    ) -> Result<Self, BenchError> {
        let setup =
            |e: std::io::Error| BenchError::Setup(format!("{}: {e}", config.program.display()));
        let mut command = Command::new(&config.program);
        command.arg("mcp").arg("--tools").arg(tools);
        if let Some(cache) = &config.cache_dir {
            command.arg("--cache-dir").arg(cache);
        }
        command.stderr(process::Stdio::inherit());
        let (child, input, output): (Child, Box<dyn Write + Send>, Box<dyn Read + Send>) =
            match stdio {
                Stdio::Pipes => {
                    let mut child = command
                        .stdin(process::Stdio::piped())
                        .stdout(process::Stdio::piped())
                        .spawn()
                        .map_err(setup)?;
                    let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take())
                    else {
                        return Err(BenchError::Setup("the child's pipes are missing".into()));
                    };
                    (child, Box::new(input), Box::new(output))
                }
                Stdio::Sockets => {
                    let (input, theirs_in) = UnixStream::pair().map_err(setup)?;
                    let (output, theirs_out) = UnixStream::pair().map_err(setup)?;
                    let child = command
                        .stdin(OwnedFd::from(theirs_in))
                        .stdout(OwnedFd::from(theirs_out))
                        .spawn()
                        .map_err(setup)?;
                    (child, Box::new(input), Box::new(output))
                }
            };
        Ok(Self {
            child,
            input: BufWriter::new(input),
            output: BufReader::new(output),
            line: String::new(),
            next_id: 10,
        })
    }

    pub(super) fn handshake(&mut self) -> Result<(), BenchError> {
        self.send(&initialize(1))?;
        self.flush()?;
        self.response(1)?;
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        self.flush()
    }

    /// The public name of `tool` in the served listing.
    pub(super) fn public_name(&mut self, tool: &str) -> Result<String, BenchError> {
        self.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))?;
        self.flush()?;
        let list = self.response(2)?;
        let suffix = format!("__{tool}");
        list["result"]["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str())
            .find(|name| *name == tool || name.ends_with(&suffix))
            .map(str::to_string)
            .ok_or_else(|| BenchError::Setup(format!("`{tool}` is not listed: {list}")))
    }

    pub(super) fn send(&mut self, message: &Value) -> Result<(), BenchError> {
        serde_json::to_writer(&mut self.input, message)
            .map_err(|e| BenchError::Call(e.to_string()))?;
        self.input
            .write_all(b"\n")
            .map_err(|e| BenchError::Call(format!("the server went away: {e}")))
    }

    pub(super) fn flush(&mut self) -> Result<(), BenchError> {
        self.input
            .flush()
            .map_err(|e| BenchError::Call(format!("the server went away: {e}")))
    }

    fn send_call(&mut self, tool: &str, i: usize) -> Result<u64, BenchError> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": {"value": i}}}))?;
        Ok(id)
    }

    /// The next response (notifications are skipped); a failed call is an error.
    fn next_response(&mut self) -> Result<Value, BenchError> {
        loop {
            self.line.clear();
            let read = self
                .output
                .read_line(&mut self.line)
                .map_err(|e| BenchError::Call(e.to_string()))?;
            if read == 0 {
                return Err(BenchError::Call("the server closed its output".into()));
            }
            let message: Value = serde_json::from_str(&self.line)
                .map_err(|e| BenchError::Call(format!("not JSON-RPC: {e}: {}", self.line)))?;
            if message.get("id").is_none() {
                continue;
            }
            if message.get("error").is_some() || message["result"]["isError"] == true {
                return Err(BenchError::Call(message.to_string()));
            }
            return Ok(message);
        }
    }

    pub(super) fn response(&mut self, id: u64) -> Result<Value, BenchError> {
        loop {
            let message = self.next_response()?;
            if message["id"] == id {
                return Ok(message);
            }
        }
    }

    pub(super) fn call(&mut self, tool: &str, i: usize) -> Result<(), BenchError> {
        let id = self.send_call(tool, i)?;
        self.flush()?;
        self.response(id).map(drop)
    }

    /// `calls` calls with `concurrency` in flight: a new one for each answer.
    pub(super) fn pipeline(
        &mut self,
        tool: &str,
        calls: usize,
        concurrency: usize,
    ) -> Result<(), BenchError> {
        let mut sent = 0;
        while sent < concurrency.min(calls) {
            self.send_call(tool, 3_000_000 + sent)?;
            sent += 1;
        }
        self.flush()?;
        for _ in 0..calls {
            self.next_response()?;
            if sent < calls {
                self.send_call(tool, 3_000_000 + sent)?;
                self.flush()?;
                sent += 1;
            }
        }
        Ok(())
    }

    pub(super) fn cpu(&self) -> Result<Duration, BenchError> {
        process_cpu(self.child.id())
    }

    pub(super) fn switches(&self) -> Result<u64, BenchError> {
        process_switches(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Closing stdin ends the session; the server exits on its own.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_that_sleeps_counts_a_switch() {
        let pid = process::id();
        let before = process_switches(pid).expect("this process's threads");
        std::thread::sleep(Duration::from_millis(2));
        let after = process_switches(pid).expect("this process's threads");
        assert!(after > before, "{before} then {after}");
        assert!(process_switches(u32::MAX).is_err());
    }
}
