//! `files`: list, read and grep files in the directories the tool's policy
//! grants (`capabilities.read_dirs`), read-only.
//!
//! Paths are the guest paths of the grant, such as `/data/notes.md`. The
//! host enforces the boundary: `..`, absolute paths outside a grant and
//! symlinks that lead out are refused whatever this tool does. With no
//! grant every call ends in a `denied` error.

mod walk;

use std::path::{Path, PathBuf};

use regex::RegexBuilder;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolhost_sdk::{Ctx, Tool, ToolError};

use self::walk::{Entry, roots, walk};

/// Default and largest number of bytes `read` returns.
const DEFAULT_READ: u64 = 64 << 10;
const MAX_READ: u64 = 1 << 20;
/// Files larger than this are not searched.
const MAX_GREP_FILE: u64 = 4 << 20;

/// What to list.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct List {
    /// A directory; the granted directories themselves if absent.
    #[serde(default)]
    path: Option<String>,
    /// List subdirectories too.
    #[serde(default)]
    recursive: bool,
    /// At most this many entries (default 500).
    #[serde(default)]
    max_entries: Option<usize>,
}

/// Entries found.
#[derive(Serialize, JsonSchema)]
struct Listing {
    entries: Vec<Entry>,
    /// Whether `max_entries` cut the listing.
    truncated: bool,
}

fn list(_: &Ctx, input: List) -> Result<Listing, ToolError> {
    let max = input.max_entries.unwrap_or(500).max(1);
    let starts = match &input.path {
        Some(path) => vec![checked(path)?],
        None => granted()?,
    };
    let mut entries = Vec::new();
    let mut truncated = false;
    for start in starts {
        let depth = if input.recursive { 32 } else { 1 };
        truncated |= walk(&start, depth, max - entries.len().min(max), &mut entries)
            .map_err(|e| io_error(&start, &e))?;
        if entries.len() >= max {
            truncated = true;
            break;
        }
    }
    Ok(Listing { entries, truncated })
}

/// What to read.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Read {
    /// The file.
    path: String,
    /// Byte offset to start at (default 0).
    #[serde(default)]
    offset: u64,
    /// Bytes to read (default 65536, at most 1048576).
    #[serde(default)]
    max_bytes: Option<u64>,
}

/// A file's content.
#[derive(Serialize, JsonSchema)]
struct Content {
    path: String,
    /// The file's size in bytes.
    size: u64,
    offset: u64,
    /// The bytes read, as text (invalid UTF-8 replaced).
    text: String,
    /// Whether the file goes on past what was read.
    truncated: bool,
    /// Whether the bytes were not valid UTF-8.
    binary: bool,
}

fn read(_: &Ctx, input: Read) -> Result<Content, ToolError> {
    use std::io::{Read as _, Seek, SeekFrom};
    let max = input.max_bytes.unwrap_or(DEFAULT_READ);
    if !(1..=MAX_READ).contains(&max) {
        return Err(ToolError::invalid_input(format!(
            "max_bytes must be from 1 to {MAX_READ}, got {max}"
        )));
    }
    let path = checked(&input.path)?;
    let mut file = std::fs::File::open(&path).map_err(|e| io_error(&path, &e))?;
    let size = file.metadata().map_err(|e| io_error(&path, &e))?.len();
    if size > 0 && input.offset >= size {
        return Err(ToolError::invalid_input(format!(
            "offset {} is past the end of {} ({size} bytes)",
            input.offset, input.path
        )));
    }
    file.seek(SeekFrom::Start(input.offset))
        .map_err(|e| io_error(&path, &e))?;
    let mut bytes = Vec::new();
    file.take(max)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(&path, &e))?;
    let binary = std::str::from_utf8(&bytes).is_err() || bytes.contains(&0);
    Ok(Content {
        path: input.path,
        size,
        offset: input.offset,
        truncated: input.offset + (bytes.len() as u64) < size,
        text: String::from_utf8_lossy(&bytes).into_owned(),
        binary,
    })
}

/// What to search for.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Grep {
    /// A regular expression (Rust `regex` syntax).
    pattern: String,
    /// A file or directory to search; every granted directory if absent.
    #[serde(default)]
    path: Option<String>,
    /// Only files whose name ends with this, such as `.md`.
    #[serde(default)]
    suffix: Option<String>,
    /// Match without regard to case.
    #[serde(default)]
    ignore_case: bool,
    /// At most this many matches (default 100).
    #[serde(default)]
    max_matches: Option<usize>,
}

/// One matching line.
#[derive(Serialize, JsonSchema)]
struct Match {
    path: String,
    /// 1-based line number.
    line: usize,
    /// The line, cut to 300 characters.
    text: String,
}

/// What was found.
#[derive(Serialize, JsonSchema)]
struct Found {
    matches: Vec<Match>,
    /// Files searched.
    files: usize,
    /// Whether `max_matches` stopped the search.
    truncated: bool,
}

fn grep(_: &Ctx, input: Grep) -> Result<Found, ToolError> {
    let regex = RegexBuilder::new(&input.pattern)
        .case_insensitive(input.ignore_case)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| ToolError::invalid_input(format!("bad pattern: {e}")))?;
    let max = input.max_matches.unwrap_or(100).max(1);
    let starts = match &input.path {
        Some(path) => vec![checked(path)?],
        None => granted()?,
    };
    let mut files = Vec::new();
    for start in &starts {
        let meta = std::fs::metadata(start).map_err(|e| io_error(start, &e))?;
        if meta.is_file() {
            files.push(Entry::file(start, meta.len()));
        } else {
            walk(start, 32, 100_000, &mut files).map_err(|e| io_error(start, &e))?;
        }
    }
    let mut found = Found {
        matches: Vec::new(),
        files: 0,
        truncated: false,
    };
    for entry in files
        .iter()
        .filter(|e| e.kind == "file" && e.size <= MAX_GREP_FILE)
    {
        if input
            .suffix
            .as_deref()
            .is_some_and(|s| !entry.path.ends_with(s))
        {
            continue;
        }
        let Ok(bytes) = std::fs::read(&entry.path) else {
            continue;
        };
        if bytes.iter().take(8192).any(|&b| b == 0) {
            continue; // binary
        }
        found.files += 1;
        let text = String::from_utf8_lossy(&bytes);
        for (number, line) in text.lines().enumerate() {
            if regex.is_match(line) {
                if found.matches.len() == max {
                    found.truncated = true;
                    return Ok(found);
                }
                found.matches.push(Match {
                    path: entry.path.clone(),
                    line: number + 1,
                    text: line.chars().take(300).collect(),
                });
            }
        }
    }
    Ok(found)
}

/// The granted directories, or `denied` if there are none.
fn granted() -> Result<Vec<PathBuf>, ToolError> {
    let roots = roots();
    if roots.is_empty() {
        return Err(no_grant());
    }
    Ok(roots.into_iter().map(PathBuf::from).collect())
}

fn no_grant() -> ToolError {
    ToolError::denied(
        "this tool has no granted directories; grant one with `capabilities.read_dirs` in its policy",
    )
}

/// A path the model gave: absolute, plain, and under a granted directory.
/// (The host enforces this anyway; checking here gives a clearer message.)
fn checked(path: &str) -> Result<PathBuf, ToolError> {
    let roots = roots();
    if roots.is_empty() {
        return Err(no_grant());
    }
    let inside = roots
        .iter()
        .any(|root| path == root || path.starts_with(&format!("{}/", root.trim_end_matches('/'))));
    let plain = !Path::new(path)
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir));
    if !inside || !plain {
        return Err(ToolError::denied(format!(
            "{path:?} is not inside a granted directory ({}); give a path such as {}/name without `..`",
            roots.join(", "),
            roots[0].trim_end_matches('/')
        )));
    }
    Ok(PathBuf::from(path))
}

fn io_error(path: &Path, error: &std::io::Error) -> ToolError {
    let path = path.display();
    match error.kind() {
        std::io::ErrorKind::NotFound => ToolError::invalid_input(format!("{path} does not exist")),
        std::io::ErrorKind::PermissionDenied => ToolError::denied(format!(
            "{path} is outside the directories this tool may read"
        )),
        _ => ToolError::failed(format!("{path}: {error}")),
    }
}

fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "list",
            "List the files in a granted directory (or the granted directories themselves), \
             optionally recursively.",
            list,
        )
        .read_only(),
        Tool::new(
            "read",
            "Read a file in a granted directory as text, from an offset, up to a size cap.",
            read,
        )
        .read_only(),
        Tool::new(
            "grep",
            "Search the files in the granted directories for lines matching a regular expression.",
            grep,
        )
        .read_only(),
    ]
}

toolhost_sdk::export!(tools);
