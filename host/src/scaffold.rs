//! Scaffolding tool projects: `toolhost new NAME --lang rust|python|js`.
//!
//! Each project builds and passes its own tests as generated. A Rust project
//! depends on `toolhost-sdk` by path (this build's own `sdk/` when it is still
//! on disk, or the folder given), else by version. Python and JavaScript
//! projects get a copy of `wit/tool.wit`, keep their logic in a plain module
//! with native tests, and bind it to the world in a small glue file.

use std::fmt;
use std::path::{Path, PathBuf};

/// The language of a new tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lang {
    /// Rust, with `toolhost-sdk`.
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with componentize-js.
    Js,
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rust => "Rust",
            Self::Python => "Python",
            Self::Js => "JavaScript",
        })
    }
}

/// Why a project could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScaffoldError {
    /// The name cannot name a folder, a package and a tool.
    #[error(
        "invalid tool name {0:?}: use a lowercase letter, then up to 63 of a-z 0-9 _ - (it names a folder, a package and the tool)"
    )]
    BadName(String),
    /// The folder is there and has files in it.
    #[error("{0} already exists and is not empty; pick another name or folder")]
    Exists(PathBuf),
    /// The SDK folder given is not a crate.
    #[error("{0}: not the toolhost-sdk crate folder (no Cargo.toml)")]
    BadSdk(PathBuf),
    /// Writing a file failed.
    #[error("could not write {path}: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A created project.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Scaffold {
    /// Its folder.
    pub root: PathBuf,
    /// The shell commands that build it into a component, one per line.
    pub build: String,
    /// The command that runs its native tests.
    pub test: String,
    /// A `toolhost call` of the built tool.
    pub call: String,
}

const WIT: &str = include_str!("../../wit/tool.wit");

/// Creates the project `parent/name`. `sdk` (Rust only) is the
/// `toolhost-sdk` folder to depend on by path.
pub fn create(
    name: &str,
    lang: Lang,
    parent: &Path,
    sdk: Option<&Path>,
) -> Result<Scaffold, ScaffoldError> {
    check_name(name)?;
    let root = parent.join(name);
    if std::fs::read_dir(&root).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(ScaffoldError::Exists(root));
    }
    let files = match lang {
        Lang::Rust => rust_files(name, sdk)?,
        Lang::Python => python_files(name),
        Lang::Js => js_files(name),
    };
    for (path, contents) in &files {
        let path = root.join(path);
        let write = |path: &Path, e| ScaffoldError::Write {
            path: path.into(),
            source: e,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| write(dir, e))?;
        }
        std::fs::write(&path, contents).map_err(|e| write(&path, e))?;
    }
    let (build, test, call) = commands(lang, name);
    Ok(Scaffold {
        root,
        build,
        test: test.into(),
        call,
    })
}

fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ScaffoldError::BadName(name.into()))
    }
}

fn fill(template: &str, name: &str) -> String {
    template.replace("{{name}}", name)
}

fn rust_files(name: &str, sdk: Option<&Path>) -> Result<Vec<(PathBuf, String)>, ScaffoldError> {
    let sdk = match sdk {
        Some(path) => Some(
            path.canonicalize()
                .ok()
                .filter(|p| p.join("Cargo.toml").exists())
                .ok_or_else(|| ScaffoldError::BadSdk(path.into()))?,
        ),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../sdk")
            .canonicalize()
            .ok()
            .filter(|p| p.join("Cargo.toml").exists()),
    };
    let dependency = match sdk {
        Some(path) => format!(
            "toolhost-sdk = {{ path = {:?} }}",
            path.display().to_string()
        ),
        None => format!("toolhost-sdk = \"{}\"", env!("CARGO_PKG_VERSION")),
    };
    let cargo =
        fill(include_str!("../templates/rust/Cargo.toml"), name).replace("{{sdk}}", &dependency);
    Ok(vec![
        ("Cargo.toml".into(), cargo),
        (
            "src/lib.rs".into(),
            fill(include_str!("../templates/rust/lib.rs"), name),
        ),
        (".gitignore".into(), "target/\n".into()),
        ("README.md".into(), readme(Lang::Rust, name)),
    ])
}

fn python_files(name: &str) -> Vec<(PathBuf, String)> {
    vec![
        (
            "app.py".into(),
            fill(include_str!("../templates/python/app.py"), name),
        ),
        (
            "tool.py".into(),
            fill(include_str!("../templates/python/tool.py"), name),
        ),
        (
            "test_tool.py".into(),
            fill(include_str!("../templates/python/test_tool.py"), name),
        ),
        ("wit/tool.wit".into(), WIT.into()),
        (".gitignore".into(), "__pycache__/\n*.wasm\n".into()),
        ("README.md".into(), readme(Lang::Python, name)),
    ]
}

fn js_files(name: &str) -> Vec<(PathBuf, String)> {
    vec![
        (
            "package.json".into(),
            fill(include_str!("../templates/js/package.json"), name),
        ),
        (
            "src/index.js".into(),
            fill(include_str!("../templates/js/index.js"), name),
        ),
        (
            "src/tool.js".into(),
            fill(include_str!("../templates/js/tool.js"), name),
        ),
        (
            "test/tool.test.js".into(),
            fill(include_str!("../templates/js/tool.test.js"), name),
        ),
        ("wit/tool.wit".into(), WIT.into()),
        (".gitignore".into(), "node_modules/\n*.wasm\n".into()),
        ("README.md".into(), readme(Lang::Js, name)),
    ]
}

/// The commands that build, test and run the generated project.
fn commands(lang: Lang, name: &str) -> (String, &'static str, String) {
    match lang {
        Lang::Rust => (
            format!(
                "rustup target add wasm32-wasip2\ncargo build --release --target wasm32-wasip2\nmkdir -p tools && cp target/wasm32-wasip2/release/{}.wasm tools/{name}.wasm",
                name.replace('-', "_")
            ),
            "cargo test",
            format!("toolhost call {name} '{{\"name\": \"Ada\"}}' --tools tools"),
        ),
        Lang::Python => (
            format!(
                "pip install componentize-py==0.25.1\nmkdir -p tools && componentize-py -d wit -w tool componentize app -o tools/{name}.wasm"
            ),
            "python3 -m unittest",
            format!("toolhost call {name} '{{\"name\": \"Ada\"}}' --tools tools"),
        ),
        Lang::Js => (
            format!("npm install\nnpm run build && mkdir -p tools && mv {name}.wasm tools/"),
            "npm test",
            format!("toolhost call {name} '{{\"name\": \"Ada\"}}' --tools tools"),
        ),
    }
}

fn readme(lang: Lang, name: &str) -> String {
    let (build, test, call) = commands(lang, name);
    let what = match lang {
        Lang::Rust => "Rust, with toolhost-sdk: the input and output types give the JSON Schemas",
        Lang::Python => {
            "Python, built with componentize-py: `tool.py` holds the logic, `app.py` binds it to the `toolhost:tool` world in `wit/`"
        }
        Lang::Js => {
            "JavaScript, built with componentize-js: `src/tool.js` holds the logic, `src/index.js` binds it to the `toolhost:tool` world in `wit/`"
        }
    };
    format!(
        "# {name}\n\nA toolhost tool in {what}.\n\n## Build\n\n```sh\n{build}\n```\n\n## Test\n\n```sh\n{test}\n```\n\n## Call\n\n```sh\n{call}\n```\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("greet").is_ok());
        assert!(check_name("my-tool_2").is_ok());
        for bad in [
            "",
            "Greet",
            "2greet",
            "has space",
            "dots.no",
            &"x".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn templates_are_filled() {
        for (path, text) in python_files("hello").into_iter().chain(js_files("hello")) {
            assert!(!text.contains("{{"), "{} has a hole", path.display());
        }
        assert!(js_files("hello")[0].1.contains("-o hello.wasm"));
    }
}
