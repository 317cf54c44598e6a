//! Hot reload: watch the tools folder and swap a freshly loaded catalog into
//! the executor when components (or their policies) are added, changed or
//! removed.
//!
//! The swap is atomic: calls already running finish on the catalog they
//! started with. A new version that fails to load keeps the previous one
//! serving ([`Catalog::reload`]); the failure is logged, counted and shown in
//! [`Catalog::status`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::catalog::file_identity;
use crate::{Catalog, Executor, LoadOptions};

/// Quiet time after the last change before reloading, so a file being
/// copied in is read once, whole.
const SETTLE: Duration = Duration::from_millis(150);

/// The longest a burst of changes may hold back a reload.
const MAX_SETTLE: Duration = Duration::from_secs(2);

/// Why the folder could not be watched.
#[derive(Debug, thiserror::Error)]
#[error("{path}: could not watch the tools folder: {source}")]
pub struct WatchError {
    path: PathBuf,
    source: notify::Error,
}

/// Counts of reloads, for metrics.
#[derive(Debug, Default)]
pub struct ReloadCounters {
    reloads: AtomicU64,
    rejected: AtomicU64,
    compiled: AtomicU64,
    cache_hits: AtomicU64,
}

/// A snapshot of [`ReloadCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ReloadStats {
    /// Catalogs swapped in.
    pub reloads: u64,
    /// Component versions refused during reloads (the previous one kept serving, if any).
    pub rejected: u64,
    /// Components compiled during reloads.
    pub compiled: u64,
    /// Components taken from the compile cache during reloads.
    pub cache_hits: u64,
}

impl ReloadCounters {
    /// The counts so far.
    pub fn snapshot(&self) -> ReloadStats {
        ReloadStats {
            reloads: self.reloads.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            compiled: self.compiled.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
        }
    }
}

/// Watches a tools folder while it lives; dropping it stops watching.
pub struct FolderWatch {
    _watcher: RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
    counters: Arc<ReloadCounters>,
}

impl std::fmt::Debug for FolderWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FolderWatch")
            .field("stats", &self.counters.snapshot())
            .finish_non_exhaustive()
    }
}

impl Drop for FolderWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FolderWatch {
    /// The reload counters, shared with whoever reports them.
    pub fn counters(&self) -> Arc<ReloadCounters> {
        self.counters.clone()
    }
}

/// Starts watching `dir`: each settled burst of changes to `*.wasm`,
/// `*.toml` or `*.sig` files or to `toolhost.lock` reloads the folder and swaps the result into `executor`,
/// if a file was created, removed, renamed or written to since the last
/// load (reading a file does not reload).
/// Must be called inside a tokio runtime.
pub fn watch(
    executor: Arc<Executor>,
    dir: &Path,
    options: LoadOptions,
) -> Result<FolderWatch, WatchError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let watch_error = |source| WatchError {
        path: dir.into(),
        source,
    };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && changes_content(&event.kind)
            && event.paths.iter().any(|path| is_tool_file(path))
        {
            let _ = tx.send(());
        }
    })
    .map_err(watch_error)?;
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .map_err(watch_error)?;
    let counters = Arc::new(ReloadCounters::default());
    let loaded = Fingerprint::of(dir);
    let task = tokio::spawn(reload_loop(
        executor,
        dir.to_path_buf(),
        options,
        rx,
        loaded,
        counters.clone(),
    ));
    Ok(FolderWatch {
        _watcher: watcher,
        task,
        counters,
    })
}

/// Components, policies, signatures, WIT sidecars and the lock file: what
/// a load reads.
fn is_tool_file(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext == "wasm" || ext == "toml" || ext == "sig" || ext == "wit")
        || path
            .file_name()
            .is_some_and(|name| name == crate::trust::LOCK_FILE)
}

/// True for events that may change what a file holds or which file a name
/// is: created, written, removed, renamed. Opening, reading and closing a
/// file unwritten (which every reload does to every policy) are not.
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Any => true,
        EventKind::Modify(modify) => !matches!(modify, ModifyKind::Metadata(_)),
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Other => false,
    }
}

/// What identifies the version of every tool file in a folder: name,
/// device, inode, size, modification and change times (or, where those are
/// not known, the content's hash). Equal fingerprints mean nothing a load
/// reads has changed.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint(BTreeMap<PathBuf, String>);

impl Fingerprint {
    fn of(dir: &Path) -> Self {
        let files = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| is_tool_file(path))
            .map(|path| {
                let version = file_identity(&path)
                    .or_else(|| {
                        std::fs::read(&path)
                            .ok()
                            .map(|bytes| blake3::hash(&bytes).to_hex().to_string())
                    })
                    .unwrap_or_default();
                (path, version)
            })
            .collect();
        Self(files)
    }
}

async fn reload_loop(
    executor: Arc<Executor>,
    dir: PathBuf,
    options: LoadOptions,
    mut changes: mpsc::UnboundedReceiver<()>,
    mut loaded: Fingerprint,
    counters: Arc<ReloadCounters>,
) {
    while changes.recv().await.is_some() {
        // Wait for the burst to settle, but no longer than MAX_SETTLE: a
        // file written again and again must not hold back every reload.
        let settled_by = tokio::time::Instant::now() + MAX_SETTLE;
        loop {
            let quiet_by = (tokio::time::Instant::now() + SETTLE).min(settled_by);
            match tokio::time::timeout_at(quiet_by, changes.recv()).await {
                Ok(Some(())) if quiet_by < settled_by => {}
                _ => break,
            }
        }
        // Taken before loading: a change made while the load runs sends an
        // event and differs from it, so it is loaded next.
        let now = Fingerprint::of(&dir);
        if now == loaded {
            tracing::debug!("tools folder events, but no file changed; not reloading");
            continue;
        }
        let current = executor.catalog();
        match current.reload(&dir, &options).await {
            Ok(fresh) => {
                loaded = now;
                swap(&executor, &current, fresh, &counters);
            }
            Err(error) => {
                tracing::error!(%error, "reload failed; the current tools keep serving");
                counters.rejected.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn swap(executor: &Executor, current: &Catalog, fresh: Catalog, counters: &ReloadCounters) {
    let stats = fresh.stats();
    counters.reloads.fetch_add(1, Ordering::Relaxed);
    counters
        .rejected
        .fetch_add(stats.failed as u64, Ordering::Relaxed);
    counters
        .compiled
        .fetch_add(stats.compiled as u64, Ordering::Relaxed);
    counters
        .cache_hits
        .fetch_add(stats.cache_hits as u64, Ordering::Relaxed);
    let before: Vec<&str> = current.tools().map(|t| t.name.as_str()).collect();
    let after: Vec<&str> = fresh.tools().map(|t| t.name.as_str()).collect();
    tracing::info!(
        tools = after.len(),
        added = after.iter().filter(|n| !before.contains(n)).count(),
        removed = before.iter().filter(|n| !after.contains(n)).count(),
        refused = stats.failed,
        compiled = stats.compiled,
        "tools folder reloaded"
    );
    for error in fresh.failures() {
        tracing::warn!(%error, "component refused on reload");
    }
    if let Some(audit) = executor.audit() {
        audit.catalog_changed(Some(current), &fresh);
    }
    executor.set_catalog(Arc::new(fresh));
}
