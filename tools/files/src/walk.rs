//! The granted directories (the WASI preopens) and a bounded walk that
//! never follows symlinks.

use std::path::Path;

use schemars::JsonSchema;
use serde::Serialize;

/// One directory entry.
#[derive(Serialize, JsonSchema)]
pub struct Entry {
    /// The guest path.
    pub path: String,
    /// `file`, `dir`, `symlink` or `other`.
    pub kind: &'static str,
    /// Size in bytes (0 for directories).
    pub size: u64,
}

impl Entry {
    pub fn file(path: &Path, size: u64) -> Self {
        Self {
            path: path.display().to_string(),
            kind: "file",
            size,
        }
    }
}

/// The guest paths of the granted directories.
#[cfg(target_arch = "wasm32")]
pub fn roots() -> Vec<String> {
    let mut roots: Vec<String> = wasip2::filesystem::preopens::get_directories()
        .into_iter()
        .map(|(_, path)| path)
        .collect();
    roots.sort();
    roots
}

/// Outside a WebAssembly host there are no grants.
#[cfg(not(target_arch = "wasm32"))]
pub fn roots() -> Vec<String> {
    Vec::new()
}

/// Appends the entries under `dir`, `depth` levels deep, until `out` holds
/// `max`; returns whether it stopped early. Symlinks are listed, not followed.
pub fn walk(dir: &Path, depth: u32, max: usize, out: &mut Vec<Entry>) -> std::io::Result<bool> {
    let mut names: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    names.sort_by_key(|e| e.file_name());
    for entry in names {
        if out.len() >= max {
            return Ok(true);
        }
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let kind = if meta.is_symlink() {
            "symlink"
        } else if meta.is_dir() {
            "dir"
        } else if meta.is_file() {
            "file"
        } else {
            "other"
        };
        out.push(Entry {
            path: path.display().to_string(),
            kind,
            size: if meta.is_file() { meta.len() } else { 0 },
        });
        if meta.is_dir() && depth > 1 && walk(&path, depth - 1, max, out)? {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_in_name_order_without_following_symlinks() {
        let dir = std::env::temp_dir().join(format!("files-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("b.txt"), "bb").unwrap();
        std::fs::write(dir.join("sub/a.txt"), "a").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/", dir.join("link")).unwrap();
        let mut out = Vec::new();
        assert!(!walk(&dir, 32, 100, &mut out).unwrap());
        let seen: Vec<(String, &str, u64)> = out
            .iter()
            .map(|e| {
                (
                    e.path
                        .trim_start_matches(&dir.display().to_string())
                        .to_string(),
                    e.kind,
                    e.size,
                )
            })
            .collect();
        let mut want = vec![("/b.txt".to_string(), "file", 2)];
        #[cfg(unix)]
        want.push(("/link".to_string(), "symlink", 0));
        want.extend([
            ("/sub".to_string(), "dir", 0),
            ("/sub/a.txt".to_string(), "file", 1),
        ]);
        assert_eq!(seen, want);
        let mut few = Vec::new();
        assert!(walk(&dir, 32, 1, &mut few).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
