//! Reading the files the host trusts to configure a tool (its policy, a
//! secret file, its signature, the lock file, a WIT sidecar, the
//! component): only regular files, and only up to a size. Anyone who can
//! write the tools folder could otherwise make one a FIFO (reading it
//! blocks the loader, and the hot-reload watcher, for good) or a link to
//! `/dev/zero` (read until memory runs out).

use std::io::{Error, ErrorKind, Read};
use std::path::Path;

/// The most a policy, secret, signature, lock or WIT file may hold.
pub(crate) const MAX_TEXT_BYTES: u64 = 16 << 20;

/// The largest component file read.
pub(crate) const MAX_COMPONENT_BYTES: u64 = 1 << 30;

/// The bytes of the regular file at `path` (links followed), refused past
/// `max` bytes. A missing file is [`ErrorKind::NotFound`], as from
/// [`std::fs::read`].
pub(crate) fn read_regular(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    // Checked before opening: opening a FIFO waits for a writer.
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path)?;
    // Checked again on what was opened, should the name have changed.
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(not_regular());
    }
    if metadata.len() > max {
        return Err(too_large(max));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    // A file that grows while read is cut just past the limit, then refused.
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(max));
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` whole: through a new temporary file beside it,
/// with an unpredictable name (never a link someone planted under a name
/// they could guess, which a write would follow), then a rename, so a
/// watching server never reads half a file. The file is 0644, as a plain
/// write would make it: readable by a server running as another user.
pub fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".toolhost.")
        .suffix(".partial")
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        temp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    temp.persist(path).map_err(|error| error.error)?;
    Ok(())
}

/// [`read_regular`] of at most [`MAX_TEXT_BYTES`], as UTF-8 text.
pub(crate) fn read_text(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_regular(path, MAX_TEXT_BYTES)?)
        .map_err(|_| Error::new(ErrorKind::InvalidData, "it is not UTF-8 text"))
}

fn not_regular() -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        "it is not a regular file (a FIFO, a device or a folder)",
    )
}

fn too_large(max: u64) -> Error {
    Error::new(
        ErrorKind::InvalidData,
        format!("it is larger than {max} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.toml");
        std::fs::write(&file, "x = 1\n").unwrap();
        assert_eq!(read_text(&file).unwrap(), "x = 1\n");
        assert_eq!(
            read_regular(&file, 3).unwrap_err().kind(),
            ErrorKind::InvalidData
        );
        let missing = dir.path().join("none.toml");
        assert_eq!(read_text(&missing).unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(
            read_text(dir.path()).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        #[cfg(unix)]
        {
            let zero = dir.path().join("zero.toml");
            std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
            assert_eq!(
                read_text(&zero).unwrap_err().kind(),
                ErrorKind::InvalidInput
            );
            std::fs::write(dir.path().join("bad.toml"), [0xff, 0xfe]).unwrap();
            assert_eq!(
                read_text(&dir.path().join("bad.toml")).unwrap_err().kind(),
                ErrorKind::InvalidData
            );
        }
    }
}
