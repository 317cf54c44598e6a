//! Integration tests: real components built from `tools/`, real wasmtime
//! sandboxes. One binary keeps link time down.

mod admission;
mod adversarial;
mod allocations;
mod bundled;
mod catalog;
mod cli;
mod common;
#[cfg(unix)]
mod compile_cache;
mod dynamic;
mod executor;
mod files;
mod flood;
mod guest_logs;
mod heap;
mod http;
mod llm_agent;
mod llm_client;
mod llm_speculate;
mod llm_util;
mod mcp;
mod memories;
mod net_tools;
mod oci;
mod policy;
mod polyglot;
mod redis_server;
mod sandbox;
mod scaffold;
mod scaleout;
mod schema;
mod serve_api;
mod serve_hostile;
mod serve_metrics;
mod serve_reload;
mod serve_tenancy;
mod server;
mod transport;
mod trust_audit;
mod trust_pin;
mod trust_sign;

#[global_allocator]
static HEAP: heap::Counting = heap::Counting;
