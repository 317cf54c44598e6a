//! `flood-list`: a plain-export component whose result costs the host far
//! more memory than the guest spends.
//!
//! Not a shipped tool. Both exports are written by hand against the
//! canonical ABI (a `list<string>` result is returned through a pointer to
//! its address and length):
//! - `aliased(count, bytes)` returns `count` strings that all point at one
//!   `bytes`-byte buffer: 262,144 strings of 400 bytes cost the guest 2 MiB
//!   and, lifted whole, the host over 100 MB;
//! - `copied(count, bytes)` returns the same list built honestly.
//!
//! The host must refuse the aliased list while lifting it, within the call's
//! output budget, and serve the next call normally.

mod bindings {
    #![allow(unsafe_code, missing_docs, unused_qualifications, dead_code)]
    // Only for the component type it embeds: the exports are below.
    wit_bindgen::generate!({ world: "flood-list", path: "wit" });
}

/// A `list<string>` result: the address of `[ptr, len]` pairs and their count.
fn list_result(pairs: Vec<[u32; 2]>) -> *mut u32 {
    let count = pairs.len() as u32;
    let pairs: &'static mut [[u32; 2]] = pairs.leak();
    let result: &'static mut [u32; 2] = Box::leak(Box::new([pairs.as_ptr() as u32, count]));
    result.as_mut_ptr()
}

#[allow(
    unsafe_code,
    reason = "a hand-written export, so the result can alias one buffer"
)]
#[unsafe(export_name = "aliased")]
extern "C" fn aliased(count: u32, bytes: u32) -> *mut u32 {
    let buffer: &'static mut [u8] = vec![b'a'; bytes as usize].leak();
    let pair = [buffer.as_ptr() as u32, bytes];
    list_result(vec![pair; count as usize])
}

#[allow(
    unsafe_code,
    reason = "the honest twin of `aliased`, written the same way"
)]
#[unsafe(export_name = "copied")]
extern "C" fn copied(count: u32, bytes: u32) -> *mut u32 {
    let pairs = (0..count)
        .map(|_| {
            let buffer: &'static mut [u8] = vec![b'a'; bytes as usize].leak();
            [buffer.as_ptr() as u32, bytes]
        })
        .collect();
    list_result(pairs)
}
