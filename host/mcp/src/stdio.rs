//! Standard input and output as non-blocking sockets, when they are sockets.
//!
//! Node starts a child with Unix sockets, not pipes, as its stdin and
//! stdout (so do the editors and desktop apps built on it). Reading those
//! through tokio's `Stdin`/`Stdout` hands every read and write to a blocking
//! thread; read as sockets they are driven by the runtime's own reactor.

use std::io::IsTerminal;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;

use tokio::net::UnixStream;

/// Stdin and stdout as tokio sockets, when both are sockets. The sockets
/// are duplicates of the process's descriptors, switched to non-blocking
/// mode (a flag they share with the originals, which nothing else reads or
/// writes while MCP is served). `None` for anything else.
pub(crate) fn sockets() -> Option<(UnixStream, UnixStream)> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    if stdin.is_terminal() || stdout.is_terminal() {
        return None;
    }
    let input = socket(stdin.as_fd().try_clone_to_owned().ok()?)?;
    let output = socket(stdout.as_fd().try_clone_to_owned().ok()?)?;
    Some((input, output))
}

/// `fd` as a non-blocking tokio socket, if it is a socket.
fn socket(fd: OwnedFd) -> Option<UnixStream> {
    let file = std::fs::File::from(fd);
    if !file.metadata().ok()?.file_type().is_socket() {
        return None;
    }
    let socket = std::os::unix::net::UnixStream::from(OwnedFd::from(file));
    socket.set_nonblocking(true).ok()?;
    UnixStream::from_std(socket)
        .inspect_err(|error| tracing::debug!(%error, "stdio: not usable as a socket"))
        .ok()
}
