//! Examples live beside this file; see `demo.rs`.
