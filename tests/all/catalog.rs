//! Loading: refusals with clear messages while the rest still loads, policies
//! that fail closed, and the compile cache.

use std::path::Path;
use std::sync::Arc;

use toolhost::{Catalog, LoadError, LoadOptions};
use toolhost_artifacts as artifacts;

use crate::common::{block_on, engine, load_options};

fn load(dir: &Path, options: LoadOptions) -> Catalog {
    let dir = dir.to_path_buf();
    block_on(async move {
        Catalog::load_dir(&engine(), &dir, &options)
            .await
            .expect("the folder loads")
    })
}

fn failure_for<'a>(catalog: &'a Catalog, file: &str) -> &'a LoadError {
    catalog
        .failures()
        .iter()
        .find(|f| f.path().file_name().is_some_and(|n| n == file))
        .unwrap_or_else(|| panic!("{file} was not refused; failures: {:?}", catalog.failures()))
}

#[test]
fn bad_components_are_refused_and_the_rest_load() {
    let dir = tempfile::tempdir().unwrap();
    let put = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).unwrap();
    let trivial = std::fs::read(artifacts::TRIVIAL).unwrap();
    put("good.wasm", &trivial);
    put("garbage.wasm", b"this is not webassembly at all");
    put("core.wasm", b"\0asm\x01\0\0\0");
    put("truncated.wasm", &trivial[..trivial.len() / 2]);
    put("empty.wasm", b"");
    put("bad name.wasm", &trivial);
    put(
        "wrong.wasm",
        &std::fs::read(artifacts::WRONG_WORLD).unwrap(),
    );
    put(
        "baddescribe.wasm",
        &std::fs::read(artifacts::BAD_DESCRIBE).unwrap(),
    );
    put(
        "slowdescribe.wasm",
        &std::fs::read(artifacts::SLOW_DESCRIBE).unwrap(),
    );

    let mut options = load_options();
    // Short for the looping describe(), long enough for the others on a
    // loaded machine.
    options.describe_timeout = std::time::Duration::from_secs(2);
    let catalog = load(dir.path(), options);

    let names: Vec<&str> = catalog.tools().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["good__echo"]);
    assert_eq!(catalog.stats().failed, 8);

    for file in ["garbage.wasm", "core.wasm", "truncated.wasm", "empty.wasm"] {
        let failure = failure_for(&catalog, file);
        assert!(
            matches!(failure, LoadError::Compile { .. }),
            "{file}: {failure}"
        );
        assert!(
            failure
                .to_string()
                .contains("not a valid WebAssembly component"),
            "{failure}"
        );
    }
    assert!(matches!(
        failure_for(&catalog, "bad name.wasm"),
        LoadError::BadName { .. }
    ));
    let wrong = failure_for(&catalog, "wrong.wasm");
    assert!(
        matches!(wrong, LoadError::World { .. }) && wrong.to_string().contains("describe"),
        "{wrong}"
    );
    let bad = failure_for(&catalog, "baddescribe.wasm").to_string();
    for problem in [
        "\"bad name!\"",
        "`dup` appears twice",
        "`bad_schema`: input schema is not JSON",
    ] {
        assert!(bad.contains(problem), "missing {problem:?} in: {bad}");
    }
    let slow = failure_for(&catalog, "slowdescribe.wasm").to_string();
    // Fuel or the deadline, whichever comes first, stops a describe() that loops.
    assert!(
        slow.contains("describe() did not complete: timeout")
            || slow.contains("describe() did not complete: out-of-fuel"),
        "{slow}"
    );
}

#[test]
fn a_bad_policy_stops_only_its_own_tool() {
    let dir = tempfile::tempdir().unwrap();
    let trivial = std::fs::read(artifacts::TRIVIAL).unwrap();
    for name in ["fine", "unknown_key", "bad_value", "not_toml"] {
        std::fs::write(dir.path().join(format!("{name}.wasm")), &trivial).unwrap();
    }
    std::fs::write(dir.path().join("fine.toml"), "[limits]\ntimeout_ms = 100\n").unwrap();
    std::fs::write(
        dir.path().join("unknown_key.toml"),
        "[capabilities]\nnetwork = true\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad_value.toml"),
        "[limits]\nmemory_mb = 999999\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("not_toml.toml"), "[limits\n").unwrap();

    let catalog = load(dir.path(), load_options());
    let names: Vec<&str> = catalog.tools().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["fine__echo"]);

    let unknown = failure_for(&catalog, "unknown_key.toml").to_string();
    assert!(
        unknown.contains("unknown_key.toml") && unknown.contains("network"),
        "{unknown}"
    );
    let bad = failure_for(&catalog, "bad_value.toml").to_string();
    assert!(
        bad.contains("limits.memory_mb") && bad.contains("999999"),
        "{bad}"
    );
    assert!(matches!(
        failure_for(&catalog, "not_toml.toml"),
        LoadError::Policy(_)
    ));
}

/// A policy that is a FIFO (reading it would wait for a writer for good,
/// holding the loader and the hot-reload watcher) or a link to a device
/// (read without end) stops only its own tool, at once.
#[cfg(unix)]
#[test]
fn a_policy_that_is_no_regular_file_stops_only_its_own_tool() {
    let dir = tempfile::tempdir().unwrap();
    let trivial = std::fs::read(artifacts::TRIVIAL).unwrap();
    for name in ["fine", "fifo", "device"] {
        std::fs::write(dir.path().join(format!("{name}.wasm")), &trivial).unwrap();
    }
    let made = std::process::Command::new("mkfifo")
        .arg(dir.path().join("fifo.toml"))
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("device.toml")).unwrap();
    let (done, loaded) = std::sync::mpsc::channel();
    let path = dir.path().to_path_buf();
    std::thread::spawn(move || {
        let _ = done.send(load(&path, load_options()));
    });
    let catalog = loaded
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the folder loads instead of waiting on the FIFO");
    let names: Vec<&str> = catalog.tools().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["fine__echo"]);
    for file in ["fifo.toml", "device.toml"] {
        let why = failure_for(&catalog, file).to_string();
        assert!(why.contains("not a regular file"), "{why}");
    }
}

/// A tenant's grant `text__*` means the tools of component `text`: a
/// component named `text__evil` or `text_` would publish tools that grant
/// matches (`text__evil__echo`, `text___echo`), so such names are refused.
#[test]
fn a_component_name_cannot_reach_into_another_s_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let trivial = std::fs::read(artifacts::TRIVIAL).unwrap();
    for name in ["text", "text__evil", "text_"] {
        std::fs::write(dir.path().join(format!("{name}.wasm")), &trivial).unwrap();
    }
    let catalog = load(dir.path(), load_options());
    let names: Vec<&str> = catalog.tools().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["text__echo"]);
    for file in ["text__evil.wasm", "text_.wasm"] {
        assert!(matches!(
            failure_for(&catalog, file),
            LoadError::BadName { .. }
        ));
    }
}

#[test]
fn the_compile_cache_is_used_on_the_second_load() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    std::fs::copy(artifacts::TRIVIAL, dir.path().join("a.wasm")).unwrap();
    std::fs::copy(artifacts::SLEEP, dir.path().join("sleep.wasm")).unwrap();
    let mut options = load_options();
    options.cache_dir = Some(cache.path().to_path_buf());

    let first = load(dir.path(), options.clone()).stats();
    assert_eq!((first.compiled, first.cache_hits, first.loaded), (2, 0, 2));
    let second = load(dir.path(), options.clone()).stats();
    assert_eq!(
        (second.compiled, second.cache_hits, second.loaded),
        (0, 2, 2)
    );

    // A corrupt entry is discarded and rebuilt, not trusted.
    for entry in walk(cache.path()) {
        std::fs::write(&entry, b"corrupt").unwrap();
    }
    let third = load(dir.path(), options.clone()).stats();
    assert_eq!((third.compiled, third.cache_hits, third.loaded), (2, 0, 2));
    let fourth = load(dir.path(), options).stats();
    assert_eq!(fourth.cache_hits, 2);
}

#[test]
fn a_loaded_catalog_calls_through_an_executor() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(artifacts::SLEEP, dir.path().join("sleep.wasm")).unwrap();
    let catalog = load(dir.path(), load_options());
    let info = catalog
        .tool("sleep")
        .expect("sleep is published under its own name");
    assert!(info.behavior.read_only && info.behavior.idempotent);
    assert_eq!(info.input_schema["required"], serde_json::json!(["ms"]));
    let executor = toolhost::Executor::new(Arc::new(catalog));
    let record = block_on(async move {
        executor
            .call("sleep", r#"{"ms": 1}"#, toolhost::CallOptions::default())
            .await
    });
    assert!(record.outcome.is_ok(), "{}", record.outcome);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path))
        } else {
            files.push(path)
        }
    }
    files
}
