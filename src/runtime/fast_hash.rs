//! A fast hasher for the runtime's own lookup tables (names, connections, served
//! processes), looked up on every message.
//!
//! std's SipHash resists collision attacks on keys an adversary chooses; these tables'
//! keys are chosen by this node (names it registers, pids it created, nodes that passed
//! the cookie handshake), so a multiply-rotate hash in the style of rustc's FxHash is
//! safe here and several times cheaper for short keys. Peers only make lookups.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`FastHasher`]; build it with `FastMap::default()`.
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Multiply-rotate hashing of 8 bytes at a time.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    #[inline]
    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }

    #[inline]
    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    #[inline]
    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_spread_over_the_buckets() {
        let mut buckets = [0u32; 64];
        for n in 0..64_000u32 {
            let mut hasher = FastHasher::default();
            hasher.write(format!("worker-{n}").as_bytes());
            buckets[(hasher.finish() >> 58) as usize] += 1;
        }
        // 1,000 per bucket on average; a poor spread would leave some near empty.
        assert!(
            buckets.iter().all(|&count| (700..1300).contains(&count)),
            "{buckets:?}"
        );
    }

    #[test]
    fn a_fast_map_finds_what_it_holds() {
        let mut map: FastMap<String, u32> = FastMap::default();
        for n in 0..1_000 {
            map.insert(format!("name{n}"), n);
        }
        assert!((0..1_000).all(|n| map.get(&format!("name{n}")) == Some(&n)));
        assert_eq!(map.get("name1000"), None);
    }
}
