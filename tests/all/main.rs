//! Integration tests: real components built from `tools/`, real wasmtime
//! sandboxes. One binary keeps link time down.

mod adversarial;
mod bundled;
mod catalog;
mod common;
mod executor;
mod files;
mod http;
mod net_tools;
mod policy;
mod sandbox;
mod server;
