//! Builds every guest crate in `tools/` for `wasm32-wasip2` and writes a
//! constant with the path of each component, as wasmtime's test-programs do.
//!
//! The bundled tools are also copied, with their policy files, into
//! `target/tools/`: a ready tools folder for the demo, the CLI and benches.
//! The tools written in Python and JavaScript are built too (`polyglot.rs`).

mod embed;
mod polyglot;

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// The tools that ship: (package, folder under tools/).
const BUNDLED: &[&str] = &[
    "calc",
    "text",
    "json",
    "hash",
    "clock",
    "sleep",
    "fetch",
    "http_json",
    "files",
];

fn main() {
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists");
    let tools = root.join("tools");
    let target_dir = root.join("target/guests");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!("cargo:rerun-if-changed={}", root.join("sdk").display());
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.lock").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        tools.join("test-guests").display()
    );

    let mut packages: Vec<(String, PathBuf, bool)> = Vec::new();
    for name in BUNDLED {
        packages.push((name.to_string(), tools.join(name), true));
    }
    let mut guests: Vec<PathBuf> = fs::read_dir(tools.join("test-guests"))
        .expect("tools/test-guests exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    guests.sort();
    for dir in guests {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 folder name")
            .to_string();
        packages.push((format!("guest-{name}"), dir, false));
    }
    for (_, dir, _) in &packages {
        println!("cargo:rerun-if-changed={}", dir.join("src").display());
        println!(
            "cargo:rerun-if-changed={}",
            dir.join("Cargo.toml").display()
        );
    }

    ensure_target();

    // The Python and JavaScript builds run while cargo builds the Rust guests.
    let polyglot_dir = target_dir.join("polyglot");
    let polyglot_builds = polyglot::start(&root, &polyglot_dir);

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--release", "--target", TARGET])
        .env("CARGO_TARGET_DIR", &target_dir)
        // Guests want to be small; debug info only bloats them.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        // A build run by clippy or with host flags must not leak into the guests.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_BUILD_RUSTFLAGS");
    for (package, _, _) in &packages {
        cmd.args(["-p", package]);
    }
    let status = cmd
        .status()
        .expect("could not run cargo to build the guest tools");
    assert!(
        status.success(),
        "building the guest tools for {TARGET} failed (see above)"
    );
    polyglot::finish(polyglot_builds);

    let wasm_dir = target_dir.join(TARGET).join("release");
    let bundled_dir = root.join("target/tools");
    fs::create_dir_all(&bundled_dir).expect("create target/tools");

    let mut code = String::new();
    let mut all = String::new();
    for (package, dir, bundled) in &packages {
        let file = artifact_name(package, dir);
        let wasm = wasm_dir.join(&file);
        assert!(
            wasm.exists(),
            "the build did not produce {}",
            wasm.display()
        );
        let konst = package
            .trim_start_matches("guest-")
            .replace('-', "_")
            .to_uppercase();
        let path = if *bundled {
            let dest = bundled_dir.join(format!("{package}.wasm"));
            copy_if_changed(&wasm, &dest);
            let policy = dir.join(format!("{package}.toml"));
            let policy_dest = bundled_dir.join(format!("{package}.toml"));
            if policy.exists() {
                println!("cargo:rerun-if-changed={}", policy.display());
                copy_if_changed(&policy, &policy_dest);
            } else if policy_dest.exists() {
                fs::remove_file(&policy_dest).expect("remove a stale policy");
            }
            dest
        } else if embed::wanted(dir) {
            println!("cargo:rerun-if-changed={}", dir.join("wit").display());
            embed::embed(dir, &wasm, &target_dir.join("embedded"))
        } else {
            wasm
        };
        writeln!(
            code,
            "/// The component built from `{}`.",
            dir.strip_prefix(&root).unwrap_or(dir).display()
        )
        .unwrap();
        writeln!(
            code,
            "pub const {konst}: &str = {:?};",
            path.display().to_string()
        )
        .unwrap();
        if !*bundled {
            writeln!(
                all,
                "    ({:?}, {konst}),",
                package.trim_start_matches("guest-")
            )
            .unwrap();
        }
    }
    for tool in polyglot::TOOLS {
        let wasm = polyglot_dir.join(format!("{}.wasm", tool.name));
        let dest = bundled_dir.join(format!("{}.wasm", tool.name));
        copy_if_changed(&wasm, &dest);
        writeln!(
            code,
            "/// The component built from `tools/{}` (Python or JavaScript).",
            tool.folder
        )
        .unwrap();
        writeln!(
            code,
            "pub const {}: &str = {:?};",
            tool.name.to_uppercase(),
            dest.display().to_string()
        )
        .unwrap();
    }
    writeln!(
        code,
        "/// `target/python`: Python packages that the build and the tests install for themselves."
    )
    .unwrap();
    writeln!(
        code,
        "pub const PYTHON_DIR: &str = {:?};",
        root.join("target/python").display().to_string()
    )
    .unwrap();
    writeln!(
        code,
        "/// Where the build installed componentize-py (`bin/componentize-py`; put the folder on `PYTHONPATH`)."
    )
    .unwrap();
    writeln!(
        code,
        "pub const COMPONENTIZE_PY_DIR: &str = {:?};",
        polyglot::python_package_dir(&root).display().to_string()
    )
    .unwrap();
    writeln!(
        code,
        "/// The folder holding the bundled tools and their policies."
    )
    .unwrap();
    writeln!(
        code,
        "pub const TOOLS_DIR: &str = {:?};",
        bundled_dir.display().to_string()
    )
    .unwrap();
    writeln!(
        code,
        "/// Every test guest, by name, so a test can check each one is covered."
    )
    .unwrap();
    writeln!(code, "pub const TEST_GUESTS: &[(&str, &str)] = &[\n{all}];").unwrap();
    fs::write(out.join("artifacts.rs"), code).expect("write artifacts.rs");
}

/// The file cargo writes for a package: a library's `lib_name.wasm`, or a binary's `name.wasm`.
fn artifact_name(package: &str, dir: &Path) -> String {
    if dir.join("src/lib.rs").exists() {
        format!("{}.wasm", package.replace('-', "_"))
    } else {
        format!("{package}.wasm")
    }
}

fn copy_if_changed(from: &Path, to: &Path) {
    let new = fs::read(from).expect("read a built component");
    if fs::read(to).ok().as_deref() != Some(&new[..]) {
        fs::write(to, new).expect("copy a built component");
    }
}

/// Installs the wasm32-wasip2 standard library with rustup if it is missing,
/// so that a fresh machine needs no manual step.
fn ensure_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if libdir.is_some_and(|dir| dir.exists()) {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup (one time)");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status();
    assert!(
        matches!(status, Ok(s) if s.success()),
        "the {TARGET} target is missing and `rustup target add {TARGET}` failed; install it and build again"
    );
}
