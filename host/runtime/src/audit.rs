//! The audit log: one JSON line per security event, appended to a file
//! that is rotated by size (`PATH` → `PATH.1`), or written to stdout.
//!
//! Each line has `time` (UTC, RFC 3339), `event`, and whichever of
//! `tenant`, `call_id`, `tool`, `component` and `hash` the event knows,
//! then the event's own fields. A secret is named, never shown: events
//! carry no header value, no body and no guest output.
//!
//! Writing never fails a call or a load: a write error is logged once per
//! burst and the event is dropped.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Default size at which the file is rotated.
pub const DEFAULT_ROTATE_BYTES: u64 = 16 << 20;

/// Where audit events go.
#[derive(Debug)]
pub struct AuditLog {
    sink: Mutex<Sink>,
}

#[derive(Debug)]
enum Sink {
    Stdout,
    File {
        path: PathBuf,
        file: std::fs::File,
        written: u64,
        rotate_bytes: u64,
    },
}

/// Why the audit log could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("{path}: could not open the audit log: {source}")]
pub struct AuditError {
    path: PathBuf,
    source: std::io::Error,
}

/// One security event. Fields left `None` are left out of the line.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct AuditEvent {
    /// What happened: `capability`, `secret-injected`, `policy-refusal`,
    /// `kill`, `auth-failure`, `component-loaded`, `component-refused`,
    /// `component-swapped`.
    pub event: &'static str,
    /// The tenant the call ran for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// The tool's public name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The component (file stem).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The component's content hash (the version serving, or refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// The event's own fields: what was used or refused, and why.
    #[serde(flatten)]
    pub detail: serde_json::Map<String, serde_json::Value>,
}

impl AuditEvent {
    /// An event of kind `event` with nothing else known yet.
    pub fn new(event: &'static str) -> Self {
        Self {
            event,
            ..Self::default()
        }
    }

    /// Adds a field of the event's own.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.detail.insert(key.into(), value.into());
        self
    }
}

impl AuditLog {
    /// Appends to `path` (created owner-only if missing), rotating it to
    /// `PATH.1` once it holds `rotate_bytes`. `-` means stdout.
    pub fn open(path: &Path, rotate_bytes: u64) -> Result<Self, AuditError> {
        if path == Path::new("-") {
            return Ok(Self::stdout());
        }
        let file = open_append(path).map_err(|source| AuditError {
            path: path.into(),
            source,
        })?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Self {
            sink: Mutex::new(Sink::File {
                path: path.into(),
                file,
                written,
                rotate_bytes: rotate_bytes.max(1),
            }),
        })
    }

    /// Writes to stdout.
    pub fn stdout() -> Self {
        Self {
            sink: Mutex::new(Sink::Stdout),
        }
    }

    /// Writes one event as a line.
    pub fn record(&self, event: &AuditEvent) {
        let mut line = format!("{{\"time\":\"{}\",", rfc3339(SystemTime::now()));
        match serde_json::to_string(event) {
            Ok(json) => line.push_str(&json[1..]),
            Err(_) => return,
        }
        line.push('\n');
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let result = match &mut *sink {
            Sink::Stdout => std::io::stdout().lock().write_all(line.as_bytes()),
            Sink::File {
                path,
                file,
                written,
                rotate_bytes,
            } => {
                if *written > 0 && *written + line.len() as u64 > *rotate_bytes {
                    let mut rotated = path.as_os_str().to_owned();
                    rotated.push(".1");
                    let reopened =
                        std::fs::rename(&*path, &rotated).and_then(|()| open_append(path));
                    match reopened {
                        Ok(fresh) => {
                            *file = fresh;
                            *written = 0;
                        }
                        Err(error) => tracing::warn!(%error, "could not rotate the audit log"),
                    }
                }
                *written += line.len() as u64;
                file.write_all(line.as_bytes())
            }
        };
        if let Err(error) = result {
            tracing::warn!(%error, "could not write to the audit log; event dropped");
        }
    }
}

impl AuditLog {
    /// Records what a first load did: each component loaded (with its
    /// hash) or refused (with the reason).
    pub fn catalog_loaded(&self, catalog: &crate::Catalog) {
        self.catalog_changed(None, catalog);
    }

    /// Records what a reload changed against `before`: components loaded
    /// or swapped (old and new hash), and refusals that are new or changed.
    pub fn catalog_changed(&self, before: Option<&crate::Catalog>, after: &crate::Catalog) {
        use crate::ComponentState;
        let previous = before.map(crate::Catalog::status).unwrap_or_default();
        for status in after.status() {
            let old = previous.iter().find(|p| p.component == status.component);
            if old == Some(&status) {
                continue;
            }
            let old_hash = old.and_then(|o| o.hash.as_deref());
            let was_loaded = old.is_some_and(|o| o.state == ComponentState::Loaded);
            let mut event = match status.state {
                ComponentState::Loaded => match old_hash {
                    Some(from) if Some(from) != status.hash.as_deref() => {
                        AuditEvent::new("component-swapped").with("from", from)
                    }
                    // The same version, loaded before too.
                    Some(_) if was_loaded => continue,
                    _ => AuditEvent::new("component-loaded"),
                },
                state => AuditEvent::new("component-refused")
                    .with("state", serde_json::to_value(state).unwrap_or_default()),
            };
            if let Some(error) = &status.error {
                event = event.with("reason", error.as_str());
            }
            event.component = Some(status.component.clone());
            event.hash.clone_from(&status.hash);
            self.record(&event);
        }
    }
}

/// What every event of one call carries: the log, and who and what the
/// call is.
#[derive(Debug)]
pub(crate) struct CallAudit {
    pub(crate) log: std::sync::Arc<AuditLog>,
    pub(crate) tenant: Option<String>,
    pub(crate) call_id: String,
    pub(crate) tool: String,
    pub(crate) component: String,
    pub(crate) hash: String,
}

impl CallAudit {
    /// Records `event` with the call's context filled in.
    pub(crate) fn record(&self, mut event: AuditEvent) {
        event.tenant.clone_from(&self.tenant);
        event.call_id = Some(self.call_id.clone());
        event.tool = Some(self.tool.clone());
        event.component = Some(self.component.clone());
        event.hash = Some(self.hash.clone());
        self.log.record(&event);
    }
}

/// Records a `kill` when `outcome` is one: the host stopped the guest
/// (deadline, fuel, memory cap, cancellation).
pub(crate) fn kill(audit: &CallAudit, outcome: &crate::Outcome) {
    let reason = match outcome {
        crate::Outcome::Timeout { .. } => "timeout",
        crate::Outcome::OutOfFuel { .. } => "fuel",
        crate::Outcome::MemoryLimit { .. } => "memory",
        crate::Outcome::Cancelled { .. } => "cancel",
        _ => return,
    };
    audit.record(AuditEvent::new("kill").with("reason", reason));
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// `time` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil-from-days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_rfc3339() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_709_251_199_123);
        assert_eq!(rfc3339(t), "2024-02-29T23:59:59.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn lines_are_json_and_the_file_rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, 300).unwrap();
        for i in 0..6 {
            let mut event = AuditEvent::new("kill").with("reason", "timeout");
            event.call_id = Some(format!("c{i}"));
            log.record(&event);
        }
        let current = std::fs::read_to_string(&path).unwrap();
        let rotated = std::fs::read_to_string(dir.path().join("audit.log.1")).unwrap();
        assert!(current.len() <= 300 && rotated.len() <= 300);
        let lines: Vec<serde_json::Value> = rotated
            .lines()
            .chain(current.lines())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(lines.len() >= 2);
        let last = lines.last().unwrap();
        assert_eq!(last["event"], "kill");
        assert_eq!(last["reason"], "timeout");
        assert_eq!(last["call_id"], "c5");
        assert!(last.get("tenant").is_none());
    }
}
