//! Embeds a guest's WIT source, doc comments included, in its component as
//! a `wit-source` custom section, so the host can describe plain exported
//! functions with their docs. A guest asks for it in its Cargo.toml with
//! `[package.metadata.toolhost] embed-wit = true`; its `wit/` folder must
//! hold one `.wit` file.

use std::fs;
use std::path::{Path, PathBuf};

/// The section the host reads (`toolhost::WIT_SOURCE_SECTION`).
const SECTION: &str = "wit-source";

/// True if the guest in `dir` asks for its WIT to be embedded.
pub fn wanted(dir: &Path) -> bool {
    fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|toml| toml.contains("embed-wit = true"))
}

/// Writes `wasm` with the WIT of `dir/wit` appended to `out_dir`; returns the new path.
pub fn embed(dir: &Path, wasm: &Path, out_dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = fs::read_dir(dir.join("wit"))
        .expect("a guest that embeds its WIT has a wit/ folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wit"))
        .collect();
    assert!(
        files.len() == 1,
        "{}: embed-wit needs exactly one .wit file in wit/",
        dir.display()
    );
    let encoded = fs::read(&files[0]).expect("read the guest's WIT");
    let mut bytes = fs::read(wasm).expect("read a built guest");
    let mut payload = Vec::new();
    leb128(&mut payload, SECTION.len());
    payload.extend_from_slice(SECTION.as_bytes());
    payload.extend_from_slice(&encoded);
    bytes.push(0); // custom section id
    leb128(&mut bytes, payload.len());
    bytes.extend_from_slice(&payload);
    fs::create_dir_all(out_dir).expect("create the embedded guests folder");
    let out = out_dir.join(wasm.file_name().expect("a file name"));
    if fs::read(&out).ok().as_deref() != Some(&bytes[..]) {
        fs::write(&out, bytes).expect("write a guest with its WIT embedded");
    }
    out
}

fn leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
