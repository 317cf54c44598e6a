//! The catalog: scan a tools folder, compile each component once (cached on
//! disk), ask it `describe()`, check what it says, and keep the tools.
//!
//! A component that fails any step (not a component, the wrong world, an
//! import the host does not provide, a bad policy, a `describe()` that traps,
//! loops or returns bad names or schemas) is refused with a message saying
//! why, and the others still load.
//!
//! What `describe()` returns is capped: at most 1000 tools, 256 KiB of name,
//! description and schemas per tool and 4 MiB in all (`spec`). It is read
//! under a byte budget of those caps, so a component that passes them by
//! far is refused before its specs are copied into the host.
//!
//! A component that does not implement `toolhost:tool` but exports plain
//! functions is loaded too: each function is a tool ([`exports`](crate::exports)).

mod cache;
#[cfg(test)]
mod fuzz;
mod policy_file;
mod reload;
pub(crate) mod schema;
mod spec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use wasmtime::component::Component;

use self::cache::CompileCache;
pub use self::cache::default_cache_dir;
#[cfg(feature = "watch")]
pub(crate) use self::cache::identity as file_identity;
use self::policy_file::{read_policy, resolve_policy_text};
pub use self::reload::{ComponentState, ComponentStatus};
pub(crate) use self::schema::CheckedSchema;
pub use self::spec::{
    Behavior, NAMESPACE_SEPARATOR, ToolInfo, is_valid_component_name, is_valid_name,
};
pub(crate) use self::spec::{Checked, MAX_SPEC_BYTES};
use crate::bindings::ToolPre;
pub use crate::exports::SECTION as WIT_SOURCE_SECTION;
use crate::exports::{self, WitDocs};
use crate::outcome::Outcome;
use crate::policy::Limits;
use crate::sandbox::{self, CallInfo, Exports, Grants, Pre, State};
use crate::trust::{self, TrustError, TrustOptions};
use crate::{Engine, PolicyError};

/// How a folder is loaded.
///
/// Secure defaults: each tool runs under the host's default limits
/// ([`Limits::default`]: 5 s, 2e9 fuel, 64 MiB, 1 MiB of output, 64 calls at
/// once) as its policy adjusts them (never past the engine's memory ceiling),
/// with no capability its policy does not grant; `describe()` gets 5 s;
/// compiled code is cached in [`default_cache_dir`], which is used only when
/// the folder is the user's own and writable by nobody else.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use toolhost_runtime::{Catalog, Engine, EngineConfig, LoadOptions};
///
/// let engine = Engine::new(EngineConfig::default())?;
/// let mut options = LoadOptions::default();
/// options.cache_dir = None; // compile every component, every time
/// options.defaults.timeout = Duration::from_secs(2);
/// let catalog = Catalog::load_dir(&engine, "tools".as_ref(), &options).await?;
/// for failure in catalog.failures() {
///     eprintln!("not loaded: {failure}");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Where compiled components are cached; `None` turns the cache off.
    pub cache_dir: Option<PathBuf>,
    /// The host's default limits, under each tool's policy.
    pub defaults: Limits,
    /// How long `describe()` may take before the component is refused.
    pub describe_timeout: Duration,
    /// Pinning and signatures ([`crate::trust`]); off by default.
    pub trust: TrustOptions,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            cache_dir: Some(default_cache_dir()),
            defaults: Limits::default(),
            describe_timeout: Duration::from_secs(5),
            trust: TrustOptions::default(),
        }
    }
}

/// Something that happened while loading, for progress displays.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LoadEvent {
    /// A component is being compiled (it was not in the cache).
    Compiling {
        /// The component's name.
        component: String,
        /// Its size in bytes.
        bytes: u64,
    },
    /// A component was compiled.
    Compiled {
        /// The component's name.
        component: String,
        /// How long it took.
        elapsed: Duration,
    },
    /// A component came from the compile cache.
    CacheHit {
        /// The component's name.
        component: String,
    },
}

/// Why a component was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file name is not a usable component name.
    #[error(
        "{path}: the file name must be 1-64 of A-Z a-z 0-9 _ - followed by .wasm, with no `__` (it separates a component's name from its tools') and no `_` at the end"
    )]
    BadName {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("{path}: could not read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The policy beside it was refused.
    #[error("{0}")]
    Policy(#[from] PolicyError),
    /// It (or its policy) is not the pinned version, or is not signed by a
    /// trusted key ([`crate::trust`]).
    #[error("{0}")]
    Trust(#[from] TrustError),
    /// wasmtime could not compile it: not wasm, corrupt, or a core module.
    #[error("{path}: not a valid WebAssembly component: {message}")]
    Compile {
        /// The file.
        path: PathBuf,
        /// wasmtime's message.
        message: String,
    },
    /// It imports something the host does not provide, or does not export the `toolhost:tool` world.
    #[error("{path}: does not fit the toolhost:tool world: {message}")]
    World {
        /// The file.
        path: PathBuf,
        /// What is missing or extra.
        message: String,
    },
    /// It exports plain functions, but some cannot be published as tools
    /// (they pass resources, streams or futures), or there are none.
    #[error("{path}: cannot publish its exports as tools: {message}")]
    Exports {
        /// The file.
        path: PathBuf,
        /// Which functions and why.
        message: String,
    },
    /// `describe()` failed, ran out of time, or returned bad specs.
    #[error("{path}: describe() {message}")]
    Describe {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// One tool of a component was refused (its schema is bad or too costly
    /// to check); the component's other tools loaded.
    #[error("{path}: tool `{tool}` refused: {message}")]
    Tool {
        /// The file.
        path: PathBuf,
        /// The tool's own name.
        tool: String,
        /// Why.
        message: String,
    },
    /// Another component already published a tool of this name.
    #[error("{path}: tool `{name}` is already published by {other}")]
    Duplicate {
        /// The file.
        path: PathBuf,
        /// The public tool name.
        name: String,
        /// The component that has it.
        other: String,
    },
}

impl LoadError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::BadName { path }
            | Self::Read { path, .. }
            | Self::Compile { path, .. }
            | Self::World { path, .. }
            | Self::Exports { path, .. }
            | Self::Describe { path, .. }
            | Self::Tool { path, .. }
            | Self::Duplicate { path, .. } => path,
            Self::Policy(
                PolicyError::Read { path, .. }
                | PolicyError::Parse { path, .. }
                | PolicyError::Invalid { path, .. },
            ) => path,
            Self::Trust(error) => error.path(),
        }
    }
}

/// Why a folder could not be loaded at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The folder could not be listed.
    #[error("{path}: could not list the tools folder: {source}")]
    ReadDir {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// wasmtime could not set up the linker (a bug, not bad input).
    #[error("could not set up the linker: {0}")]
    Linker(String),
}

/// Counts from one load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct LoadStats {
    /// Components that loaded.
    pub loaded: usize,
    /// Components refused (a component with only some tools refused loaded).
    pub failed: usize,
    /// Components compiled because the cache did not have them.
    pub compiled: usize,
    /// Components taken from the compile cache.
    pub cache_hits: usize,
}

/// One loaded component.
pub(crate) struct LoadedComponent {
    pub(crate) name: String,
    pub(crate) hash: String,
    pub(crate) pre: Pre,
    pub(crate) grants: Grants,
    pub(crate) limits: Limits,
}

/// One published tool.
pub(crate) struct ToolEntry {
    /// What the outside world sees: `open_world` is set when the policy
    /// grants network access, whatever the tool declares.
    pub(crate) info: ToolInfo,
    /// The behaviour flags as the tool declares them.
    pub(crate) declared: Behavior,
    /// The public name, shared with every call's log context.
    pub(crate) name: Arc<str>,
    /// Declared read-only and idempotent, and granted nothing that reaches
    /// outside: safe to cache and to speculate.
    pub(crate) pure: bool,
    pub(crate) component: Arc<LoadedComponent>,
    /// The input schema, compiled and measured.
    pub(crate) input: Arc<CheckedSchema>,
    /// The output schema, checked on every `ok` output of a `toolhost:tool`
    /// component (a plain-export component's output is made by the host
    /// from WIT values, so it fits by construction and is not checked).
    pub(crate) output: Option<Arc<CheckedSchema>>,
}

/// The tools of a folder, ready to call. Immutable: reloading builds a new one.
pub struct Catalog {
    engine: Engine,
    tools: BTreeMap<String, Arc<ToolEntry>>,
    failures: Vec<LoadError>,
    /// Components whose new version failed, still serving the previous one.
    kept: Vec<String>,
    /// Components that served before a reload and no longer do, because
    /// their policy, secrets or grants could not be resolved.
    withdrawn: Vec<String>,
    stats: LoadStats,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Catalog {
    /// Loads every `*.wasm` in `dir` (not recursive), with `NAME.toml` as its policy.
    pub async fn load_dir(
        engine: &Engine,
        dir: &Path,
        options: &LoadOptions,
    ) -> Result<Self, CatalogError> {
        Self::load_dir_with(engine, dir, options, &|_| {}).await
    }

    /// Like [`Catalog::load_dir`], reporting progress to `observe`.
    pub async fn load_dir_with(
        engine: &Engine,
        dir: &Path,
        options: &LoadOptions,
        observe: &(dyn Fn(&LoadEvent) + Sync),
    ) -> Result<Self, CatalogError> {
        let entries = std::fs::read_dir(dir).map_err(|source| CatalogError::ReadDir {
            path: dir.into(),
            source,
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm") && path.is_file())
            .collect();
        paths.sort();
        Self::load_files(engine, &paths, options, observe).await
    }

    /// Loads the given component files.
    pub async fn load_files(
        engine: &Engine,
        paths: &[PathBuf],
        options: &LoadOptions,
        observe: &(dyn Fn(&LoadEvent) + Sync),
    ) -> Result<Self, CatalogError> {
        let linker = sandbox::linker(engine).map_err(|e| CatalogError::Linker(format!("{e:#}")))?;
        let cache = options.cache_dir.as_deref().and_then(|dir| {
            CompileCache::open(dir, engine.fingerprint())
                .inspect_err(|problem| {
                    tracing::warn!(
                        dir = %dir.display(),
                        %problem,
                        "not using the compile cache: it must be private to this user \
                         (owned by them, writable by nobody else); compiling every component"
                    );
                })
                .ok()
        });
        let mut catalog = Self {
            engine: engine.clone(),
            tools: BTreeMap::new(),
            failures: Vec::new(),
            kept: Vec::new(),
            withdrawn: Vec::new(),
            stats: LoadStats::default(),
        };
        let loader = Loader {
            engine,
            linker: &linker,
            cache: cache.as_ref(),
            options,
            observe,
        };
        // A few components at once: reading compiled code from the cache (and
        // compiling) runs on blocking threads while another component
        // describes itself. Results are published in path order, so which
        // of two components with the same tool name wins does not change.
        let mut waiting = paths.iter();
        let mut loads = futures::stream::FuturesOrdered::new();
        loop {
            while loads.len() < LOAD_CONCURRENCY
                && let Some(path) = waiting.next()
            {
                loads.push_back(loader.load_counted(path));
            }
            let Some((path, stats, result)) = loads.next().await else {
                break;
            };
            catalog.stats.compiled += stats.compiled;
            catalog.stats.cache_hits += stats.cache_hits;
            match result {
                Ok((component, specs)) => catalog.publish(path, component, specs),
                Err(error) => {
                    tracing::warn!(%error, "component refused");
                    catalog.failures.push(error);
                }
            }
        }
        catalog.stats.failed = catalog
            .failures
            .iter()
            .filter(|f| !matches!(f, LoadError::Tool { .. }))
            .count();
        Ok(catalog)
    }

    fn publish(&mut self, path: &Path, component: LoadedComponent, checked: Checked) {
        let Checked { specs, refused } = checked;
        if let Some(taken) = specs.iter().find_map(|s| self.tools.get(&s.info.name)) {
            self.failures.push(LoadError::Duplicate {
                path: path.into(),
                name: taken.info.name.clone(),
                other: taken.component.name.clone(),
            });
            return;
        }
        self.stats.loaded += 1;
        for (tool, message) in refused {
            let error = LoadError::Tool {
                path: path.into(),
                tool,
                message,
            };
            tracing::warn!(%error, "tool refused");
            self.failures.push(error);
        }
        let check_output = matches!(component.pre, Pre::Tool(_));
        let component = Arc::new(component);
        for spec in specs {
            let declared = spec.info.behavior;
            let mut info = spec.info;
            info.behavior = effective(declared, &component.grants);
            let entry = ToolEntry {
                name: Arc::from(info.name.as_str()),
                pure: is_pure(declared, &component.grants),
                declared,
                info,
                component: component.clone(),
                input: spec.input,
                output: spec.output.filter(|_| check_output),
            };
            self.tools.insert(entry.info.name.clone(), Arc::new(entry));
        }
    }

    /// Every published tool, by name.
    pub fn tools(&self) -> impl Iterator<Item = &ToolInfo> {
        self.tools.values().map(|entry| &entry.info)
    }

    /// One tool by its public name.
    pub fn tool(&self, name: &str) -> Option<&ToolInfo> {
        self.tools.get(name).map(|entry| &entry.info)
    }

    /// The components that were refused, and why.
    pub fn failures(&self) -> &[LoadError] {
        &self.failures
    }

    /// Counts from the load: compiled, cache hits, failures.
    pub fn stats(&self) -> LoadStats {
        self.stats
    }

    /// The engine the tools were compiled for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The content hash (blake3, hex) of the component a tool comes from.
    pub fn component_hash(&self, tool: &str) -> Option<&str> {
        self.tools
            .get(tool)
            .map(|entry| entry.component.hash.as_str())
    }

    /// True when `tool` may be cached and speculated: it declares itself
    /// read-only and idempotent, and its policy grants nothing that reaches
    /// outside the sandbox. The host checks the grants itself; the flags alone
    /// are not trusted.
    pub fn is_pure(&self, tool: &str) -> bool {
        self.tools.get(tool).is_some_and(|entry| entry.pure)
    }

    pub(crate) fn entry(&self, name: &str) -> Option<&ToolEntry> {
        self.tools.get(name).map(|entry| &**entry)
    }

    /// True when `tool`'s policy grants anything that reaches outside the
    /// sandbox: the network, a directory or the wall clock.
    pub fn reaches_outside(&self, tool: &str) -> bool {
        self.tools
            .get(tool)
            .is_some_and(|entry| entry.component.grants.reaches_outside())
    }

    /// The public names closest to `name`, for "did you mean" messages.
    pub fn suggest(&self, name: &str) -> Vec<&str> {
        self.suggest_among(name, |_| true)
    }

    /// Like [`Catalog::suggest`], drawing only on the names `visible`
    /// accepts (a tenant must not learn of tools outside its list).
    pub(crate) fn suggest_among(&self, name: &str, visible: impl Fn(&str) -> bool) -> Vec<&str> {
        closest(
            name,
            self.tools
                .keys()
                .map(String::as_str)
                .filter(|known| visible(known)),
        )
    }
}

/// Names longer than this get no suggestions. A client chooses the name it
/// calls, up to its whole request: comparing one of a MiB with every tool
/// would take seconds of a worker the call's budget does not cover.
const MAX_SUGGESTED_FOR: usize = 256;

/// Up to three of `known` within a few edits of `name`, closest first.
/// Names whose lengths alone differ by more edits than allowed are not
/// compared.
fn closest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    if name.len() > MAX_SUGGESTED_FOR {
        return Vec::new();
    }
    let name = name.to_lowercase();
    let length = name.chars().count();
    let mut scored: Vec<(usize, &str)> = known
        .filter_map(|known| {
            let allowed = 3.max(known.len() / 3);
            let lowered = known.to_lowercase();
            if length.abs_diff(lowered.chars().count()) > allowed {
                return None;
            }
            let distance = edit_distance(&name, &lowered);
            (distance <= allowed).then_some((distance, known))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, known)| known).collect()
}

/// The flags as every face shows them: a tool its policy lets reach the
/// network is open-world, whatever it declares.
fn effective(declared: Behavior, grants: &Grants) -> Behavior {
    Behavior {
        open_world: declared.open_world || grants.http.is_some(),
        ..declared
    }
}

/// Declared read-only and idempotent, and granted nothing that reaches
/// outside: the flags alone are not trusted.
fn is_pure(behavior: Behavior, grants: &Grants) -> bool {
    behavior.read_only
        && behavior.idempotent
        && !behavior.open_world
        && !behavior.destructive
        && !grants.reaches_outside()
}

impl ToolEntry {
    /// The same tool, served by `component` (the same code under another
    /// policy).
    fn under(&self, component: Arc<LoadedComponent>) -> Self {
        let mut info = self.info.clone();
        info.behavior = effective(self.declared, &component.grants);
        Self {
            info,
            declared: self.declared,
            name: self.name.clone(),
            pure: is_pure(self.declared, &component.grants),
            component,
            input: self.input.clone(),
            output: self.output.clone(),
        }
    }
}

/// Components loaded at once.
const LOAD_CONCURRENCY: usize = 4;

struct Loader<'a> {
    engine: &'a Engine,
    linker: &'a wasmtime::component::Linker<State>,
    cache: Option<&'a CompileCache>,
    options: &'a LoadOptions,
    observe: &'a (dyn Fn(&LoadEvent) + Sync),
}

impl Loader<'_> {
    /// [`Loader::load`] with counts of its own, so loads can run together.
    async fn load_counted<'p>(
        &self,
        path: &'p PathBuf,
    ) -> (
        &'p PathBuf,
        LoadStats,
        Result<(LoadedComponent, Checked), LoadError>,
    ) {
        let mut stats = LoadStats::default();
        let result = self.load(path, &mut stats).await;
        (path, stats, result)
    }

    async fn load(
        &self,
        path: &Path,
        stats: &mut LoadStats,
    ) -> Result<(LoadedComponent, Checked), LoadError> {
        let name = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .filter(|stem| is_valid_component_name(stem))
            .ok_or_else(|| LoadError::BadName { path: path.into() })?
            .to_string();
        let policy = read_policy(path)?;
        let trust = &self.options.trust;
        // The bytes are only read when the cache does not know this version,
        // or when trust is checked: then the bytes checked are the bytes
        // compiled.
        let identity = self.cache.and_then(|_| cache::identity(path));
        let known = match (self.cache, &identity) {
            (Some(cache), Some(identity)) if !trust.is_on() => cache.known_hash(path, identity),
            _ => None,
        };
        let (hash, bytes) = match known {
            Some(hash) => (hash, None),
            None => {
                let bytes = read(path)?;
                if trust.is_on() {
                    let policy = policy.as_ref().map(|(_, text)| text.as_bytes());
                    trust::check(trust, path, &bytes, policy)?;
                }
                let hash = blake3::hash(&bytes).to_hex().to_string();
                if let (Some(cache), Some(identity)) = (self.cache, &identity) {
                    cache.remember_hash(path, identity, &hash);
                }
                (hash, Some(bytes))
            }
        };
        let (grants, limits) = resolve_policy_text(self.engine, policy, &self.options.defaults)?;
        // Read before compiling consumes the bytes; only plain-export components use it.
        let embedded_wit = bytes
            .as_deref()
            .map(|bytes| exports::custom_section(bytes, exports::SECTION).map(<[u8]>::to_vec));
        let component = self.compile(&name, path, bytes, &hash, stats).await?;
        let world = |message: String| LoadError::World {
            path: path.into(),
            message,
        };
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| world(format!("{e:#}")))?;
        let (pre, specs) = if exports::is_tool_world(self.engine, &component) {
            let pre = ToolPre::new(instance_pre).map_err(|e| world(format!("{e:#}")))?;
            let specs = self.describe(&name, path, &pre, &grants, &limits).await?;
            (Pre::Tool(pre), specs)
        } else {
            let exports_error = |message: String| LoadError::Exports {
                path: path.into(),
                message,
            };
            let embedded_wit = match embedded_wit {
                Some(section) => section,
                None => exports::custom_section(&read(path)?, exports::SECTION).map(<[u8]>::to_vec),
            };
            let docs = wit_docs_for(path, embedded_wit.as_deref()).map_err(exports_error)?;
            let (funcs, specs) =
                exports::inspect(self.engine, &component, docs.as_ref()).map_err(|error| {
                    match error {
                        exports::InspectError::Refused(message) => exports_error(message),
                        exports::InspectError::NoFunctions(message) => world(message),
                    }
                })?;
            let specs = spec::check(&name, specs).map_err(|problems| {
                exports_error(format!("bad tool names or schemas: {problems}"))
            })?;
            let exports = Exports {
                pre: instance_pre,
                funcs,
            };
            (Pre::Exports(Arc::new(exports)), specs)
        };
        Ok((
            LoadedComponent {
                name,
                hash,
                pre,
                grants,
                limits,
            },
            specs,
        ))
    }

    /// Asks a `toolhost:tool` component for its tools and checks them.
    async fn describe(
        &self,
        name: &str,
        path: &Path,
        pre: &ToolPre<State>,
        grants: &Grants,
        limits: &Limits,
    ) -> Result<Checked, LoadError> {
        let describe_limits = Limits {
            timeout: self.options.describe_timeout,
            ..limits.clone()
        };
        let call = CallInfo {
            call_id: Arc::from(format!("describe-{name}")),
            tool: Arc::from(name),
            cancel: None,
            events: None,
            audit: None,
        };
        let run = sandbox::describe(
            self.engine,
            pre,
            grants,
            &describe_limits,
            call,
            spec::describe_budget(),
        )
        .await;
        let describe_error = |message: String| LoadError::Describe {
            path: path.into(),
            message,
        };
        let specs = run.result.map_err(|outcome| match outcome {
            Outcome::OutputTooLarge { .. } => describe_error(spec::over_budget()),
            outcome => describe_error(format!("did not complete: {outcome}")),
        })?;
        spec::check_size(&specs).map_err(describe_error)?;
        spec::check(name, specs)
            .map_err(|problems| describe_error(format!("returned bad specs: {problems}")))
    }

    async fn compile(
        &self,
        name: &str,
        path: &Path,
        bytes: Option<Vec<u8>>,
        hash: &str,
        stats: &mut LoadStats,
    ) -> Result<Component, LoadError> {
        let cached = match self.cache {
            Some(cache) => {
                let (cache, engine, key) = (cache.clone(), self.engine.clone(), hash.to_string());
                tokio::task::spawn_blocking(move || cache.get(&engine, &key))
                    .await
                    .ok()
                    .flatten()
            }
            None => None,
        };
        if let Some(component) = cached {
            stats.cache_hits += 1;
            tracing::debug!(component = name, "compile cache hit");
            (self.observe)(&LoadEvent::CacheHit {
                component: name.into(),
            });
            return Ok(component);
        }
        let bytes = match bytes {
            Some(bytes) => bytes,
            None => read(path)?,
        };
        (self.observe)(&LoadEvent::Compiling {
            component: name.into(),
            bytes: bytes.len() as u64,
        });
        let start = Instant::now();
        let engine = self.engine.wasmtime().clone();
        let compiled = tokio::task::spawn_blocking(move || {
            Component::new(&engine, &bytes).map_err(|e| format!("{e:#}"))
        })
        .await
        .unwrap_or_else(|e| Err(format!("the compiler task failed: {e}")));
        let component = compiled.map_err(|message| LoadError::Compile {
            path: path.into(),
            message,
        })?;
        stats.compiled += 1;
        let elapsed = start.elapsed();
        tracing::info!(component = name, ?elapsed, "compiled");
        (self.observe)(&LoadEvent::Compiled {
            component: name.into(),
            elapsed,
        });
        if let Some(cache) = self.cache {
            cache.put(hash, &component);
        }
        Ok(component)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    crate::disk::read_regular(path, crate::disk::MAX_COMPONENT_BYTES).map_err(|source| {
        LoadError::Read {
            path: path.into(),
            source,
        }
    })
}

/// The WIT docs of a plain-export component: its embedded WIT source, else
/// `NAME.wit` beside it, else none.
fn wit_docs_for(path: &Path, embedded: Option<&[u8]>) -> Result<Option<WitDocs>, String> {
    if let Some(bytes) = embedded {
        return WitDocs::from_embedded(bytes)
            .map(Some)
            .map_err(|e| format!("its `{}` section is not valid WIT: {e}", exports::SECTION));
    }
    let sidecar = path.with_extension("wit");
    if sidecar.exists() {
        let text =
            crate::disk::read_text(&sidecar).map_err(|e| format!("{}: {e}", sidecar.display()))?;
        return WitDocs::from_text(&sidecar.display().to_string(), &text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", sidecar.display()));
    }
    Ok(None)
}

/// Levenshtein distance, for suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::{closest, edit_distance};

    /// Suggestions are made on the worker that answers the call, before
    /// any budget applies: a name of any length sent by a client must cost
    /// no more than one of a tool's length. (A hang guard, not a timing: on
    /// a quadratic distance this name takes minutes.)
    #[test]
    fn a_huge_unknown_name_is_not_compared_letter_by_letter() {
        let known: Vec<String> = (0..50)
            .map(|i| format!("{i:02}{}", "t".repeat(62)))
            .collect();
        let (done, finished) = std::sync::mpsc::channel();
        let worker = std::thread::spawn(move || {
            let huge = "x".repeat(64 << 20);
            let found = closest(&huge, known.iter().map(String::as_str)).len();
            let near = closest(&format!("{}x", known[7]), known.iter().map(String::as_str))
                .first()
                .map(|s| s.to_string());
            let _ = done.send((found, near));
        });
        let (found, near) = finished
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("suggesting for a 64 MiB name took over a minute");
        worker.join().unwrap();
        assert_eq!(found, 0);
        assert_eq!(
            near.as_deref(),
            Some(format!("07{}", "t".repeat(62)).as_str())
        );
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("calc", "calc"), 0);
        assert_eq!(edit_distance("clac", "calc"), 2);
        assert_eq!(edit_distance("text__slugfy", "text__slugify"), 1);
    }
}
