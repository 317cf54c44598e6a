//! Bundled tools, through the host.
