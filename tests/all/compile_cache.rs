//! The compile cache holds native code that the host maps and runs, so an
//! entry someone else could have written must never be loaded. Each test plants
//! the compiled code of another component (`sleep`) where the cache keeps
//! `a.wasm`'s (a copy of `trivial`), then opens the cache in a way that must not
//! be trusted: the load has to compile `a.wasm` afresh and publish its own tools.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use toolhost::{Catalog, LoadOptions};
use toolhost_artifacts as artifacts;

use crate::common::{block_on, engine, load_options};

fn load(tools: &Path, cache: Option<&Path>) -> Catalog {
    let tools = tools.to_path_buf();
    let mut options: LoadOptions = load_options();
    options.cache_dir = cache.map(Path::to_path_buf);
    block_on(async move {
        Catalog::load_dir(&engine(), &tools, &options)
            .await
            .expect("the folder loads")
    })
}

fn names(catalog: &Catalog) -> Vec<String> {
    catalog.tools().map(|tool| tool.name.to_string()).collect()
}

/// A tools folder holding `a.wasm`, a cache that compiled it, and the compiled
/// code of another component, ready to be planted.
struct Planted {
    tools: tempfile::TempDir,
    cache: tempfile::TempDir,
    /// The folder named after the engine's fingerprint.
    engine_dir: PathBuf,
    /// Where the cache keeps `a.wasm`'s compiled code.
    entry: PathBuf,
    /// `sleep`'s compiled code, outside `cache`.
    foreign: PathBuf,
    foreign_cache: tempfile::TempDir,
    /// What `a.wasm` publishes when nothing is cached.
    honest: Vec<String>,
}

fn planted() -> Planted {
    let tools = tempfile::tempdir().unwrap();
    std::fs::copy(artifacts::TRIVIAL, tools.path().join("a.wasm")).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let first = load(tools.path(), Some(cache.path()));
    assert_eq!(first.stats().compiled, 1);
    let engine_dir = cache.path().join(engine().fingerprint());
    let hash = first.component_hash(&names(&first)[0]).unwrap();
    let entry = engine_dir.join(format!("{hash}.cwasm"));
    assert!(entry.is_file(), "{} was not written", entry.display());

    let other_tools = tempfile::tempdir().unwrap();
    std::fs::copy(artifacts::SLEEP, other_tools.path().join("sleep.wasm")).unwrap();
    let foreign_cache = tempfile::tempdir().unwrap();
    let other = load(other_tools.path(), Some(foreign_cache.path()));
    let hash = other.component_hash("sleep").unwrap();
    let foreign = foreign_cache
        .path()
        .join(engine().fingerprint())
        .join(format!("{hash}.cwasm"));
    assert!(foreign.is_file());

    let honest = names(&load(tools.path(), None));
    assert_ne!(honest, names(&other));
    Planted {
        tools,
        cache,
        engine_dir,
        entry,
        foreign,
        foreign_cache,
        honest,
    }
}

impl Planted {
    /// Copies `sleep`'s compiled code over `a.wasm`'s entry.
    fn swap(&self) {
        std::fs::copy(&self.foreign, &self.entry).unwrap();
    }

    /// Loads the tools folder again and checks that the planted code was not run.
    fn assert_not_trusted(&self) {
        let catalog = load(self.tools.path(), Some(self.cache.path()));
        assert_eq!(
            names(&catalog),
            self.honest,
            "the planted compiled code was loaded as a.wasm"
        );
        let stats = catalog.stats();
        assert_eq!((stats.compiled, stats.cache_hits), (1, 0));
    }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Hands `path` to user `nobody`; false when this process may not (not root).
fn give_away(path: &Path) -> bool {
    match std::os::unix::fs::chown(path, Some(65534), Some(65534)) {
        Ok(()) => true,
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("skipped: only root can hand a file to another user ({error})");
            false
        }
        Err(error) => panic!("chown {}: {error}", path.display()),
    }
}

#[test]
fn the_cache_is_trusted_when_it_is_private() {
    let planted = planted();
    let again = load(planted.tools.path(), Some(planted.cache.path()));
    assert_eq!(again.stats().cache_hits, 1);
    assert_eq!(names(&again), planted.honest);
}

#[test]
fn a_world_writable_cache_folder_is_not_trusted() {
    let planted = planted();
    planted.swap();
    chmod(planted.cache.path(), 0o777);
    planted.assert_not_trusted();
}

#[test]
fn a_group_writable_engine_folder_is_not_trusted() {
    let planted = planted();
    planted.swap();
    chmod(&planted.engine_dir, 0o770);
    planted.assert_not_trusted();
}

#[test]
fn a_world_writable_entry_is_not_loaded() {
    let planted = planted();
    planted.swap();
    chmod(&planted.entry, 0o666);
    planted.assert_not_trusted();
}

#[test]
fn a_cache_folder_of_another_user_is_not_trusted() {
    let planted = planted();
    planted.swap();
    if give_away(planted.cache.path()) {
        planted.assert_not_trusted();
    }
}

#[test]
fn an_entry_of_another_user_is_not_loaded() {
    let planted = planted();
    planted.swap();
    if give_away(&planted.entry) {
        planted.assert_not_trusted();
    }
}

#[test]
fn a_symlink_planted_as_an_entry_is_not_followed() {
    let planted = planted();
    std::fs::remove_file(&planted.entry).unwrap();
    std::os::unix::fs::symlink(&planted.foreign, &planted.entry).unwrap();
    planted.assert_not_trusted();
}

/// The remembered hash of a file names its cache entry; a remembered "hash"
/// that climbs out of the cache must not make the host load a file elsewhere.
#[test]
fn a_remembered_hash_that_leaves_the_cache_is_ignored() {
    let planted = planted();
    let memos: Vec<PathBuf> = std::fs::read_dir(planted.engine_dir.join("hashes"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(memos.len(), 1, "{memos:?}");
    let memo = std::fs::read_to_string(&memos[0]).unwrap();
    let (identity, _) = memo.rsplit_once(' ').unwrap();

    // `../` up to the root, then the foreign file without its `.cwasm`, made
    // exactly 64 characters long with extra slashes, as a real hash is.
    let up = "../".repeat(planted.engine_dir.components().count());
    let short = planted.foreign_cache.path().join("x.cwasm");
    std::fs::copy(&planted.foreign, &short).unwrap();
    let target = short.with_extension("");
    let target = target.to_str().unwrap().trim_start_matches('/');
    let padding = 64usize
        .checked_sub(up.len() + target.len())
        .expect("the temp folder's path is short enough for the test");
    let escape = format!("{up}{}{target}", "/".repeat(padding));
    assert_eq!(escape.len(), 64);
    assert_eq!(
        std::fs::canonicalize(planted.engine_dir.join(format!("{escape}.cwasm"))).unwrap(),
        std::fs::canonicalize(&short).unwrap()
    );
    std::fs::write(&memos[0], format!("{identity} {escape}")).unwrap();

    let catalog = load(planted.tools.path(), Some(planted.cache.path()));
    assert_eq!(
        names(&catalog),
        planted.honest,
        "a file outside the cache was loaded as a.wasm"
    );
}
