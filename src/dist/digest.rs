//! The cookie challenge: MD5 digests of cookie ++ decimal challenge, compared in
//! constant time, with challenges from the OS random source.

use md5::{Digest as _, Md5};

use super::error::DistError;

/// `MD5(cookie ++ integer_to_list(challenge))`, as `gen_digest/2` in the protocol.
pub fn digest(cookie: &str, challenge: u32) -> [u8; 16] {
    let mut hasher = Md5::new();
    hasher.update(cookie.as_bytes());
    hasher.update(challenge.to_string().as_bytes());
    hasher.finalize().into()
}

/// Compares two digests in time independent of where they differ.
pub fn digests_match(a: &[u8; 16], b: &[u8; 16]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold into an early exit.
    std::hint::black_box(difference) == 0
}

/// A fresh 32-bit challenge from the OS random source.
pub fn new_challenge() -> Result<u32, DistError> {
    let mut bytes = [0u8; 4];
    getrandom::getrandom(&mut bytes)?;
    Ok(u32::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_md5_of_cookie_and_decimal_challenge() {
        // MD5("abc123") computed independently (`printf abc123 | md5sum`).
        let expected = [
            0xe9, 0x9a, 0x18, 0xc4, 0x28, 0xcb, 0x38, 0xd5, 0xf2, 0x60, 0x85, 0x36, 0x78, 0x92,
            0x2e, 0x03,
        ];
        assert_eq!(digest("abc", 123), expected);
    }

    #[test]
    fn digests_match_only_when_equal() {
        let a = digest("cookie", 7);
        let mut b = a;
        assert!(digests_match(&a, &b));
        b[15] ^= 1;
        assert!(!digests_match(&a, &b));
    }

    #[test]
    fn challenges_differ() {
        let draws: std::collections::HashSet<u32> =
            (0..16).map(|_| new_challenge().unwrap()).collect();
        assert!(draws.len() > 1);
    }
}
