//! Builds the tools written in Python (componentize-py) and JavaScript
//! (componentize-js) into components, next to the Rust guests.
//!
//! The pinned toolchains install themselves the first time, inside the
//! workspace and nowhere else: componentize-py with pip into `target/python/`,
//! componentize-js with `npm ci` into `tools/js-toolchain/node_modules` (from
//! the committed lock file, which `npm ci` never rewrites). A build is
//! skipped when a stamp of its inputs (sources, the WIT, the toolchain's
//! version) matches the last one, so an unrelated change to a Rust guest does
//! not rebuild the 10+ MB Python and JS components.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The pinned toolchain versions; `.ci/run` installs exactly these.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";

/// A tool in another language.
pub struct Tool {
    /// The component's name: the file in `target/tools/` and the constant.
    pub name: &'static str,
    /// Its folder under `tools/`.
    pub folder: &'static str,
    pub lang: Lang,
}

#[derive(Clone, Copy)]
pub enum Lang {
    Python,
    JavaScript,
}

pub const TOOLS: &[Tool] = &[
    Tool {
        name: "units",
        folder: "py-units",
        lang: Lang::Python,
    },
    Tool {
        name: "markdown",
        folder: "js-markdown",
        lang: Lang::JavaScript,
    },
];

/// Source files of a tool, sorted: what its stamp and rerun-if-changed cover.
fn sources(dir: &Path, lang: Lang) -> Vec<PathBuf> {
    let ext = match lang {
        Lang::Python => "py",
        Lang::JavaScript => "js",
    };
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("list a tool's folder").flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if name != "node_modules" && name != "__pycache__" && name != "test" {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == ext) && !name.starts_with("test_") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Starts the builds that are out of date; returns the running ones.
/// `out_dir` receives `NAME.wasm` for every tool.
pub fn start(root: &Path, out_dir: &Path) -> Vec<(PathBuf, String, Child)> {
    fs::create_dir_all(out_dir).expect("create the polyglot output folder");
    let wit = root.join("wit");
    let mut running = Vec::new();
    for tool in TOOLS {
        let dir = root.join("tools").join(tool.folder);
        let files = sources(&dir, tool.lang);
        for file in &files {
            println!("cargo:rerun-if-changed={}", file.display());
        }
        let out = out_dir.join(format!("{}.wasm", tool.name));
        let (mut command, version) = match tool.lang {
            Lang::Python => python(root, &dir, &out),
            Lang::JavaScript => javascript(root, &dir, &out),
        };
        let mut inputs: Vec<PathBuf> = files;
        inputs.push(wit.join("tool.wit"));
        let stamp = stamp(&inputs, &version);
        let stamp_file = out.with_extension("stamp");
        if out.exists() && fs::read_to_string(&stamp_file).ok().as_deref() == Some(&stamp) {
            continue;
        }
        let _ = fs::remove_file(&stamp_file);
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "could not start the build of tools/{} ({e}); is the toolchain installed?",
                tool.folder
            )
        });
        running.push((stamp_file, stamp, child));
    }
    running
}

/// Waits for the builds started by [`start`]; panics naming any that failed.
pub fn finish(running: Vec<(PathBuf, String, Child)>) {
    for (stamp_file, stamp, mut child) in running {
        let status = child.wait().expect("wait for a tool build");
        assert!(
            status.success(),
            "building {} failed (see the output above)",
            stamp_file.with_extension("wasm").display()
        );
        fs::write(&stamp_file, stamp).expect("write a build stamp");
    }
}

fn stamp(inputs: &[PathBuf], version: &str) -> String {
    let mut hasher = DefaultHasher::new();
    version.hash(&mut hasher);
    for input in inputs {
        input.hash(&mut hasher);
        fs::read(input)
            .unwrap_or_else(|e| panic!("read {}: {e}", input.display()))
            .hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

/// The pinned `componentize-py`, or `$COMPONENTIZE_PY` when set.
///
/// The pinned version is installed once with `pip install --target` into
/// `target/python/componentize-py-VERSION/` (nothing outside `target/` is
/// touched) and run from there with `python3`.
fn python(root: &Path, dir: &Path, out: &Path) -> (Command, String) {
    println!("cargo:rerun-if-env-changed=COMPONENTIZE_PY");
    let program = std::env::var_os("COMPONENTIZE_PY");
    if program.is_none() {
        ensure_componentize_py(root);
    }
    let componentize_py = || match &program {
        Some(program) => Command::new(program),
        None => componentize_py_command(&python_package_dir(root)),
    };
    let version = componentize_py()
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| {
            panic!(
                "componentize-py does not run; it builds the Python tool tools/py-units. \
                 Check that `python3 -m pip` works (the build installs componentize-py=={COMPONENTIZE_PY_VERSION} \
                 under target/python), or point COMPONENTIZE_PY at a componentize-py"
            )
        });
    if !version.ends_with(COMPONENTIZE_PY_VERSION) {
        println!(
            "cargo:warning=found {version}; toolhost is tested with componentize-py {COMPONENTIZE_PY_VERSION}"
        );
    }
    let mut command = componentize_py();
    command
        .current_dir(dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg("-d")
        .arg(root.join("wit"))
        .args(["-w", "tool", "componentize", "app", "-p", "."])
        .arg("-o")
        .arg(out);
    (command, version)
}

/// componentize-js from `tools/js-toolchain/node_modules`, run by `node`.
fn javascript(root: &Path, dir: &Path, out: &Path) -> (Command, String) {
    let toolchain = root.join("tools/js-toolchain");
    println!(
        "cargo:rerun-if-changed={}",
        toolchain.join("package-lock.json").display()
    );
    let cli = toolchain.join("node_modules/@bytecodealliance/componentize-js/src/cli.js");
    let install = "Install it with `npm ci --prefix tools/js-toolchain` and build again";
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        node_ok,
        "`node` was not found; it runs componentize-js, which builds the JavaScript tool tools/js-markdown. Install Node.js 20 or later"
    );
    if !cli.exists() {
        // One command sets everything up: install the pinned toolchain.
        println!(
            "cargo:warning=installing componentize-js into tools/js-toolchain with npm ci (one time)"
        );
        let _ = Command::new("npm")
            .args([
                "ci",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
            ])
            .arg(&toolchain)
            .status();
    }
    assert!(
        cli.exists(),
        "componentize-js is not installed in tools/js-toolchain; it builds the JavaScript tool tools/js-markdown. {install}"
    );
    let manifest = toolchain.join("node_modules/@bytecodealliance/componentize-js/package.json");
    let version = fs::read_to_string(&manifest).unwrap_or_default();
    assert!(
        version.contains(&format!("\"version\": \"{COMPONENTIZE_JS_VERSION}\"")),
        "tools/js-toolchain has another componentize-js than {COMPONENTIZE_JS_VERSION}. {install}"
    );
    // componentize-js wants the WIT folder under its working directory.
    let source = dir.join("src/index.js");
    let mut command = Command::new("node");
    command
        .current_dir(root)
        .arg(cli)
        .arg(source.strip_prefix(root).unwrap_or(&source))
        .args([
            "--wit",
            "wit",
            "-n",
            "tool",
            "-d",
            "http",
            "fetch-event",
            "-o",
        ])
        .arg(out);
    (
        command,
        format!("componentize-js {COMPONENTIZE_JS_VERSION}"),
    )
}

/// Where the pinned componentize-py is installed: `target/python/componentize-py-VERSION`.
pub fn python_package_dir(root: &Path) -> PathBuf {
    root.join("target/python")
        .join(format!("componentize-py-{COMPONENTIZE_PY_VERSION}"))
}

/// `python3 DIR/bin/componentize-py` with `DIR` on `PYTHONPATH`.
fn componentize_py_command(dir: &Path) -> Command {
    let mut command = Command::new("python3");
    command
        .env("PYTHONPATH", dir)
        .arg(dir.join("bin/componentize-py"));
    command
}

/// Installs the pinned componentize-py under `target/python` once.
///
/// pip writes into a fresh temporary folder that is renamed into place only
/// when the install succeeded, so an interrupted install is never taken for
/// a finished one.
fn ensure_componentize_py(root: &Path) {
    let dir = python_package_dir(root);
    if dir.join("bin/componentize-py").exists() {
        return;
    }
    println!(
        "cargo:warning=installing componentize-py {COMPONENTIZE_PY_VERSION} into {} with pip (one time)",
        dir.display()
    );
    let partial = dir.with_extension(format!("partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&partial);
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            "--target",
        ])
        .arg(&partial)
        .arg(format!("componentize-py=={COMPONENTIZE_PY_VERSION}"))
        .status();
    assert!(
        matches!(status, Ok(s) if s.success()),
        "installing componentize-py=={COMPONENTIZE_PY_VERSION} with `python3 -m pip install --target {}` failed \
         (see above); it builds the Python tool tools/py-units. Python 3 with pip is a prerequisite",
        partial.display()
    );
    if fs::rename(&partial, &dir).is_err() {
        // Another build finished the same install first.
        let _ = fs::remove_dir_all(&partial);
    }
    assert!(
        dir.join("bin/componentize-py").exists(),
        "pip did not install the componentize-py script into {}",
        dir.display()
    );
}
