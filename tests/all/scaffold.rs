//! `toolhost new`: each language's project, generated into a temp folder,
//! passes its own tests, builds into a component, and that component loads
//! and answers a call. Python and JavaScript use the pinned toolchains that
//! the artifacts step installed (componentize-py under `target/python`,
//! componentize-js under `tools/js-toolchain`).

use std::path::{Path, PathBuf};

use serde_json::json;
use toolhost::scaffold::{self, Lang};
use toolhost::{CallOptions, Catalog, Executor};

use crate::common::{block_on, engine, load_options, run_in as run};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// Loads `wasm` as `tools/NAME.wasm` and calls the tool of that name.
fn call_built(wasm: &Path, name: &str) {
    let tools = wasm.parent().unwrap().to_path_buf();
    assert_eq!(wasm.file_stem().unwrap(), name);
    let name = name.to_string();
    let record = block_on(async move {
        let catalog = Catalog::load_dir(&engine(), &tools, &load_options())
            .await
            .unwrap();
        assert!(catalog.failures().is_empty(), "{:?}", catalog.failures());
        let executor = Executor::new(std::sync::Arc::new(catalog));
        executor
            .call_value(
                &name,
                &json!({"name": "Ada", "times": 2}),
                CallOptions::default(),
            )
            .await
    });
    assert_eq!(
        record.outcome.output(),
        Some(&json!({"text": "Hello, Ada! Hello, Ada!"})),
        "{}",
        record.outcome
    );
}

#[test]
fn a_new_rust_tool_tests_builds_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let created =
        scaffold::create("greeter", Lang::Rust, dir.path(), Some(&repo().join("sdk"))).unwrap();
    assert!(created.build.contains("wasm32-wasip2"));
    // A target folder kept between runs: the SDK's dependencies build once.
    let target = repo().join("target/scaffold");
    run(
        &created.root,
        "cargo",
        &["test", "--quiet"],
        &[("CARGO_TARGET_DIR", &target)],
    );
    run(
        &created.root,
        "cargo",
        &["build", "--quiet", "--release", "--target", "wasm32-wasip2"],
        &[("CARGO_TARGET_DIR", &target)],
    );
    let tools = created.root.join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    let wasm = tools.join("greeter.wasm");
    std::fs::copy(target.join("wasm32-wasip2/release/greeter.wasm"), &wasm).unwrap();
    call_built(&wasm, "greeter");
}

#[test]
fn a_new_python_tool_tests_builds_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let created = scaffold::create("pygreeter", Lang::Python, dir.path(), None).unwrap();
    run(
        &created.root,
        "python3",
        &["-m", "unittest", "--quiet"],
        &[],
    );
    std::fs::create_dir_all(created.root.join("tools")).unwrap();
    // The README's build command, as written.
    let build = created.build.lines().last().unwrap();
    assert!(build.contains("componentize-py"), "{build}");
    // The pinned componentize-py that the artifacts step installed, as if on PATH.
    let installed = Path::new(toolhost_artifacts::COMPONENTIZE_PY_DIR);
    let mut path = std::ffi::OsString::from(installed.join("bin"));
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    run(
        &created.root,
        "sh",
        &["-c", build],
        &[("PATH", Path::new(&path)), ("PYTHONPATH", installed)],
    );
    call_built(&created.root.join("tools/pygreeter.wasm"), "pygreeter");
}

#[test]
fn a_new_javascript_tool_tests_builds_and_runs() {
    let cli =
        repo().join("tools/js-toolchain/node_modules/@bytecodealliance/componentize-js/src/cli.js");
    assert!(
        cli.exists(),
        "the artifacts step installs componentize-js with `npm ci --prefix tools/js-toolchain`; {} is missing",
        cli.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let created = scaffold::create("jsgreeter", Lang::Js, dir.path(), None).unwrap();
    run(&created.root, "node", &["--test"], &[]);
    // `npm run build` runs componentize-js from the project's devDependencies;
    // the repository's pinned copy is the same version, so use it instead of
    // installing it again.
    let cli = cli.to_string_lossy().to_string();
    std::fs::create_dir_all(created.root.join("tools")).unwrap();
    run(
        &created.root,
        "node",
        &[
            &cli,
            "src/index.js",
            "--wit",
            "wit",
            "-n",
            "tool",
            "-d",
            "http",
            "fetch-event",
            "-o",
            "tools/jsgreeter.wasm",
        ],
        &[],
    );
    call_built(&created.root.join("tools/jsgreeter.wasm"), "jsgreeter");
}

#[test]
fn bad_names_and_taken_folders_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = scaffold::create("Bad Name", Lang::Js, dir.path(), None).unwrap_err();
    assert!(err.to_string().contains("invalid tool name"), "{err}");
    scaffold::create("taken", Lang::Python, dir.path(), None).unwrap();
    let err = scaffold::create("taken", Lang::Rust, dir.path(), None).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
}
