//! `probe`: tries every ambient capability a WASI program might reach for and
//! reports what it saw, without ever failing.
//!
//! Not a shipped tool. The host's tests call it under a deny-all policy (and
//! under narrow grants) and check the report. Under deny-all the host should
//! give: every `files`, `dirs`, `cwd` and `write` entry starting `error: `,
//! an empty `env`, no `args` (or only a program name the host chose), a wall
//! clock that is the host's choice, and `tcp` starting `error: `. Any
//! `ok: ` entry that the policy did not grant is a sandbox escape.
//!
//! Input: `{"tcp"?: "HOST:PORT", "read"?: [path], "list"?: [path], "write_to"?: path}`, where
//! `read` and `list` add paths to the fixed ones and `write_to` replaces
//! the file written. Output:
//! `{"files": {path: s}, "dirs": {path: s}, "cwd": s, "env": {name: value},
//! "args": [..], "wall_clock_unix": i64, "tcp": s | null, "write": s}`, where
//! every `s` is `ok: <what was read, truncated>` or `error: <the error>`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, Tool, ToolError};

/// Files read with `std::fs::read`.
const FILES: [&str; 4] = ["/etc/passwd", "/", ".", "/proc/self/environ"];
/// Directories listed with `std::fs::read_dir`.
const DIRS: [&str; 2] = ["/", "."];
/// The file `write` tries to create.
const WRITE_PATH: &str = "/tmp/probe.txt";
/// Longest excerpt of anything read, in bytes.
const EXCERPT: usize = 200;
/// How long a TCP connect to an IP address may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What to probe beyond the defaults.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Probe {
    /// `HOST:PORT` to open a TCP connection to (and send one line on). Not tried if absent.
    #[serde(default)]
    tcp: Option<String>,
    /// More files to read, reported under `files`.
    #[serde(default)]
    read: Vec<String>,
    /// More directories to list, reported under `dirs`.
    #[serde(default)]
    list: Vec<String>,
    /// Write here instead of `/tmp/probe.txt`.
    #[serde(default)]
    write_to: Option<String>,
}

/// What each attempt gave; each string is `ok: ...` or `error: ...`.
#[derive(Serialize, JsonSchema)]
struct Report {
    /// `std::fs::read` of each path.
    files: BTreeMap<String, String>,
    /// `std::fs::read_dir` of each path: the entry names.
    dirs: BTreeMap<String, String>,
    /// `std::env::current_dir`.
    cwd: String,
    /// Every environment variable the guest can see.
    env: BTreeMap<String, String>,
    /// The guest's arguments.
    args: Vec<String>,
    /// The wall clock, in seconds since the Unix epoch (negative before it).
    wall_clock_unix: i64,
    /// The TCP connect, or null if no `tcp` was given.
    tcp: Option<String>,
    /// Writing `/tmp/probe.txt`.
    write: String,
}

fn probe(_: &Ctx, input: Probe) -> Result<Report, ToolError> {
    Ok(Report {
        files: FILES
            .iter()
            .copied()
            .chain(input.read.iter().map(String::as_str))
            .map(|path| (path.to_string(), read_file(path)))
            .collect(),
        dirs: DIRS
            .iter()
            .copied()
            .chain(input.list.iter().map(String::as_str))
            .map(|path| (path.to_string(), list_dir(path)))
            .collect(),
        cwd: outcome(std::env::current_dir().map(|dir| dir.display().to_string())),
        env: std::env::vars_os()
            .map(|(name, value)| {
                (
                    name.to_string_lossy().into_owned(),
                    value.to_string_lossy().into_owned(),
                )
            })
            .collect(),
        args: std::env::args_os()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect(),
        wall_clock_unix: wall_clock_unix(),
        tcp: input.tcp.as_deref().map(connect),
        write: {
            let path = input.write_to.as_deref().unwrap_or(WRITE_PATH);
            outcome(
                std::fs::write(path, b"written by the probe test guest\n")
                    .map(|()| format!("wrote {path}")),
            )
        },
    })
}

fn read_file(path: &str) -> String {
    outcome(std::fs::read(path).map(|bytes| {
        format!(
            "{} bytes: {}",
            bytes.len(),
            excerpt(&String::from_utf8_lossy(&bytes))
        )
    }))
}

fn list_dir(path: &str) -> String {
    outcome(std::fs::read_dir(path).and_then(|entries| {
        let names = entries
            .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(excerpt(&names.join(", ")))
    }))
}

fn wall_clock_unix() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Connect (with a timeout if `target` is an IP address), then send one line.
fn connect(target: &str) -> String {
    let stream = match target.parse::<SocketAddr>() {
        Ok(addr) => TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT),
        Err(_) => TcpStream::connect(target),
    };
    outcome(stream.and_then(|mut stream| {
        let peer = stream
            .peer_addr()
            .map_or_else(|_| target.to_string(), |a| a.to_string());
        stream.write_all(b"hello from the probe test guest\n")?;
        Ok(format!("connected to {peer} and sent a line"))
    }))
}

fn outcome(result: std::io::Result<String>) -> String {
    match result {
        Ok(text) => format!("ok: {text}"),
        Err(e) => format!("error: {e}"),
    }
}

/// The first `EXCERPT` bytes of `text` (cut on a character boundary), marked if cut.
fn excerpt(text: &str) -> String {
    if text.len() <= EXCERPT {
        return text.to_string();
    }
    let mut end = EXCERPT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn tools() -> Vec<Tool> {
    vec![Tool::new(
        "probe",
        "Try to read files, list directories, read the environment and clock, open a TCP \
         connection and write a file; report what each attempt gave.",
        probe,
    )]
}

toolhost_sdk::export!(tools);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_short_text_and_cuts_long_text_on_a_boundary() {
        assert_eq!(excerpt("abc"), "abc");
        let long = "é".repeat(150); // 300 bytes, 2 per char
        let cut = excerpt(&long);
        assert_eq!(cut, format!("{}…", "é".repeat(100)));
        let odd = format!("a{long}"); // byte 200 falls inside a char
        assert_eq!(excerpt(&odd), format!("a{}…", "é".repeat(99)));
    }

    #[test]
    fn outcome_prefixes_ok_and_error() {
        assert_eq!(outcome(Ok("x".into())), "ok: x");
        let err = std::io::Error::other("nope");
        assert_eq!(outcome(Err(err)), "error: nope");
    }

    #[test]
    fn a_refused_connection_is_reported_not_raised() {
        // Bind then drop a listener, so the port is very likely closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let result = connect(&format!("127.0.0.1:{port}"));
        assert!(result.starts_with("error: "), "{result}");
    }

    #[test]
    fn a_missing_file_is_reported_not_raised() {
        assert!(read_file("/definitely/not/here").starts_with("error: "));
        assert!(list_dir("/definitely/not/here").starts_with("error: "));
    }

    #[test]
    fn unknown_fields_are_invalid_input() {
        let err = tools()[0].call_json(r#"{"udp": "x"}"#).unwrap_err();
        assert!(matches!(err, ToolError::InvalidInput(_)), "{err:?}");
    }
}
