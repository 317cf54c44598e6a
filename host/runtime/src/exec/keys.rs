//! Map keys that may be empty, made cheap to compare.
//!
//! Calls without a caller key share the empty key in the fair pools and the
//! result cache. An empty `&str` from a literal, or an empty `String`, points
//! at address 1, and comparing two strings of equal length is a `memcmp`
//! even when the length is 0. glibc's AVX-512 `memcmp` still issues a masked
//! load at that address, and the CPU completes a masked load from an
//! unmapped page only through a microcode assist: one comparison took 93 ns
//! instead of 2, and a map lookup by the empty key 115 ns instead of 15, on
//! the Xeons this project is measured on. Four such lookups per call were
//! 4 % of an executor call's CPU in `toolhost bench`.
//!
//! So an empty key is looked up by [`probe`], an empty slice at a mapped
//! address, and kept as a key made by [`owned`], whose buffer is allocated.
//! (An `Arc<str>` key is always allocated, so needs neither.)

/// An empty string at a mapped address: the first zero bytes of `"-"`.
const EMPTY: &str = match std::str::from_utf8(b"-".split_at(0).0) {
    Ok(empty) => empty,
    Err(_) => "",
};

/// `key`, or for the empty key, an empty slice at a mapped address, to look
/// a map up by.
pub(crate) fn probe(key: &str) -> &str {
    if key.is_empty() { EMPTY } else { key }
}

/// `key` as an owned map key whose buffer is allocated, also when empty.
pub(crate) fn owned(key: &str) -> String {
    let mut owned = String::with_capacity(key.len().max(1));
    owned.push_str(key);
    owned
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;

    /// Where a dangling (unallocated) empty slice points.
    fn dangling() -> *const u8 {
        std::ptr::NonNull::<u8>::dangling().as_ptr()
    }

    #[test]
    fn empty_keys_point_at_mapped_memory() {
        assert_eq!(probe(""), "");
        assert_ne!(probe("").as_ptr(), dangling());
        let (empty, shared) = (owned(""), Arc::<str>::from(""));
        assert_eq!(empty, "");
        assert_ne!(empty.as_ptr(), dangling());
        assert_ne!(shared.as_ptr(), dangling());
        assert_eq!(probe("tenant"), "tenant");
        assert_eq!(owned("tenant"), "tenant");
    }

    #[test]
    fn probes_find_what_plain_keys_find() {
        let mut map = HashMap::new();
        map.insert(owned(""), 1);
        map.insert(owned("a"), 2);
        assert_eq!(map.get(probe("")), Some(&1));
        assert_eq!(map.get(""), Some(&1));
        assert_eq!(map.get(probe("a")), Some(&2));
        let mut arcs: HashMap<Arc<str>, i32> = HashMap::new();
        arcs.insert(Arc::from(""), 3);
        assert_eq!(arcs.get(probe("")), Some(&3));
    }
}
