//! A fast hasher for the zen monitor's own tables (references, monitors by target and
//! reference, queued subscribes). Their keys are references this crate numbers
//! sequentially and targets the local user monitors, so SipHash's resistance to chosen
//! keys buys nothing, while a nodedown of a million monitors hashes each key several
//! times. One multiply per word; the final rotation brings the well-mixed high bits
//! down to where the table takes its bucket index.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// An odd constant with well-spread bits (from the golden ratio).
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

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

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;
pub(crate) type FastSet<K> = HashSet<K, BuildHasherDefault<FastHasher>>;

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
    fn a_map_with_it_finds_what_it_holds() {
        let mut map: FastMap<u64, u64> = FastMap::default();
        for key in 0..10_000u64 {
            map.insert(key * 7, key);
        }
        assert!((0..10_000u64).all(|key| map.get(&(key * 7)) == Some(&key)));
        assert_eq!(map.get(&1), None);
    }
}
