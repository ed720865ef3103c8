//! A fast hasher for tables whose keys the program chooses itself, looked up on every
//! message or call: the runtime's process table and monitor tables, its names,
//! connections and served processes, and the zen monitor's references and targets.
//!
//! std's SipHash resists collision attacks on keys an adversary chooses. Keys this
//! node makes (names it registers, pids and references it numbers, nodes that passed
//! the cookie handshake) need no such defence, and for them a multiply-rotate hash is
//! several times cheaper. Do not key a table with these by data a peer sends for
//! insertion.
//!
//! ```
//! use otp_threads::fast_hash::FastMap;
//!
//! let mut names: FastMap<&str, u32> = FastMap::default();
//! names.insert("logger", 7);
//! assert_eq!(names.get("logger"), Some(&7));
//! ```

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`FastHasher`]; build it with `FastMap::default()`.
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// A `HashSet` with [`FastHasher`]; build it with `FastSet::default()`.
pub type FastSet<K> = HashSet<K, BuildHasherDefault<FastHasher>>;

/// An odd constant with well-spread bits (from the golden ratio).
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// Multiply-rotate hashing of 8 bytes at a time; the final rotation brings the
/// well-mixed high bits down to where a table takes its bucket index.
#[derive(Default, Clone, Copy, Debug)]
pub struct FastHasher(u64);

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(MULTIPLIER);
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
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_references_spread_over_the_buckets() {
        // The low 10 bits (a 1,024-bucket table's index) of 100,000 sequential keys'
        // hashes use every bucket, about evenly.
        let mut buckets = [0u32; 1024];
        for key in 1..=100_000u64 {
            let mut hasher = FastHasher::default();
            hasher.write_u64(key);
            buckets[(hasher.finish() & 1023) as usize] += 1;
        }
        let (least, most) = (buckets.iter().min().unwrap(), buckets.iter().max().unwrap());
        assert!(*least > 40 && *most < 160, "least {least}, most {most}");
    }

    #[test]
    fn short_names_spread_over_the_buckets() {
        // Bucket indexes (low bits) and hashbrown's control bits (top 7) both spread.
        let (mut low, mut high) = ([0u32; 64], [0u32; 64]);
        for n in 0..64_000u32 {
            let mut hasher = FastHasher::default();
            hasher.write(format!("worker-{n}").as_bytes());
            let hash = hasher.finish();
            low[(hash & 63) as usize] += 1;
            high[(hash >> 58) as usize] += 1;
        }
        // 1,000 per bucket on average; a poor spread would leave some near empty.
        for buckets in [low, high] {
            assert!(
                buckets.iter().all(|&count| (700..1300).contains(&count)),
                "{buckets:?}"
            );
        }
    }

    #[test]
    fn a_map_with_it_finds_what_it_holds() {
        let mut map: FastMap<String, u32> = FastMap::default();
        for n in 0..1_000 {
            map.insert(format!("name{n}"), n);
        }
        assert!((0..1_000).all(|n| map.get(&format!("name{n}")) == Some(&n)));
        assert_eq!(map.get("name1000"), None);
    }
}
