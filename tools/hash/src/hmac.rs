//! HMAC (RFC 2104) over the SHA-2 hashes, written out: it is short.

use sha2::digest::core_api::BlockSizeUser;

/// HMAC (RFC 2104) over a SHA-2 hash.
pub fn hmac<D>(key: &[u8], message: &[u8]) -> Vec<u8>
where
    D: sha2::Digest + BlockSizeUser,
{
    let block = D::block_size();
    let mut padded = if key.len() > block {
        D::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    padded.resize(block, 0);
    let inner_pad: Vec<u8> = padded.iter().map(|b| b ^ 0x36).collect();
    let outer_pad: Vec<u8> = padded.iter().map(|b| b ^ 0x5c).collect();
    let inner = D::new()
        .chain_update(&inner_pad)
        .chain_update(message)
        .finalize();
    D::new()
        .chain_update(&outer_pad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use sha2::{Sha256, Sha512};

    use super::*;

    fn hex256(key: &[u8], message: &[u8]) -> String {
        hex::encode(hmac::<Sha256>(key, message))
    }

    #[test]
    fn rfc_4231_test_cases() {
        // Test case 1: a 20-byte key.
        assert_eq!(
            hex256(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 2: a short key.
        assert_eq!(
            hex256(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac::<Sha512>(b"Jefe", b"what do ya want for nothing?")),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
        // Test case 6: a 131-byte key, longer than the block, is hashed first.
        assert_eq!(
            hex256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn empty_key_and_message_still_work() {
        assert_eq!(
            hex256(b"", b""),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"
        );
    }
}
