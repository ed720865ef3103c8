//! The consistent hash ring that places children on nodes.
//!
//! Reproducible by construction: the hash of a byte string is 64-bit FNV-1a
//! (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`) followed by the
//! SplitMix64 finaliser (which spreads FNV's similar outputs for similar keys). Each
//! node contributes `virtual_nodes` points, point `i` of node `n` at
//! `hash("{n}#{i}")`; a child id `c` sits at `hash(c)`. [`Ring::belongs_to`] walks
//! clockwise from the child's position (the first point `>=` it, wrapping) and takes
//! the first `factor` distinct nodes. Equal points are ordered by node name, so every
//! node that knows the same members computes the same placement.

use std::collections::BTreeSet;

/// 64-bit FNV-1a, then the SplitMix64 finaliser.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        h ^= u64::from(*byte);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The ring of a set of nodes; see the [module docs](self).
#[derive(Clone, Debug, Default)]
pub struct Ring {
    /// (position, index into `nodes`), sorted.
    points: Vec<(u64, usize)>,
    nodes: Vec<String>,
}

impl Ring {
    /// The ring of `nodes` with `virtual_nodes` points each.
    pub fn new<'a>(nodes: impl IntoIterator<Item = &'a str>, virtual_nodes: u32) -> Ring {
        let nodes: Vec<String> = nodes
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut points = Vec::with_capacity(nodes.len() * virtual_nodes as usize);
        for (index, node) in nodes.iter().enumerate() {
            for i in 0..virtual_nodes {
                points.push((hash(format!("{node}#{i}").as_bytes()), index));
            }
        }
        points.sort_unstable();
        Ring { points, nodes }
    }

    /// The nodes on the ring, sorted.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// The first `factor` distinct nodes clockwise from `child_id`'s position (fewer if
    /// the ring has fewer nodes); empty for an empty ring.
    pub fn belongs_to(&self, child_id: &str, factor: usize) -> Vec<String> {
        let wanted = factor.min(self.nodes.len());
        let mut found: Vec<usize> = Vec::with_capacity(wanted);
        if wanted == 0 {
            return Vec::new();
        }
        let key = hash(child_id.as_bytes());
        let start = self.points.partition_point(|(position, _)| *position < key);
        for offset in 0..self.points.len() {
            let (_, index) = self.points[(start + offset) % self.points.len()];
            if !found.contains(&index) {
                found.push(index);
                if found.len() == wanted {
                    break;
                }
            }
        }
        found.into_iter().map(|i| self.nodes[i].clone()).collect()
    }

    /// The node of `child_id` with one copy, if the ring has any node.
    pub fn owner(&self, child_id: &str) -> Option<String> {
        self.belongs_to(child_id, 1).into_iter().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fixed_fnv1a_with_splitmix_finaliser() {
        // FNV-1a of "" is the offset basis; these values pin the whole function.
        assert_eq!(hash(b""), {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            h ^= h >> 30;
            h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            h ^= h >> 27;
            h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
            h ^ (h >> 31)
        });
        assert_eq!(hash(b"child-1"), hash(b"child-1"));
        assert_ne!(hash(b"child-1"), hash(b"child-2"));
    }

    #[test]
    fn placement_does_not_depend_on_member_order() {
        let a = Ring::new(["c@h", "a@h", "b@h"], 64);
        let b = Ring::new(["b@h", "c@h", "a@h"], 64);
        for i in 0..500 {
            let id = format!("child-{i}");
            assert_eq!(a.belongs_to(&id, 2), b.belongs_to(&id, 2));
        }
    }

    #[test]
    fn replicas_are_distinct_nodes_capped_by_ring_size() {
        let ring = Ring::new(["a@h", "b@h", "c@h"], 16);
        let nodes = ring.belongs_to("x", 5);
        assert_eq!(nodes.len(), 3);
        let distinct: BTreeSet<_> = nodes.iter().collect();
        assert_eq!(distinct.len(), 3);
        assert!(
            Ring::new(Vec::<&str>::new(), 16)
                .belongs_to("x", 1)
                .is_empty()
        );
    }

    #[test]
    fn adding_a_node_moves_only_children_to_the_new_node() {
        let before = Ring::new(["a@h", "b@h", "c@h"], 64);
        let after = Ring::new(["a@h", "b@h", "c@h", "d@h"], 64);
        let mut moved = 0;
        for i in 0..2000 {
            let id = format!("child-{i}");
            let (old, new) = (before.owner(&id).unwrap(), after.owner(&id).unwrap());
            if old != new {
                assert_eq!(new, "d@h", "{id} moved between old nodes");
                moved += 1;
            }
        }
        // Roughly a quarter moves; the bounds only rule out a broken ring.
        assert!((200..900).contains(&moved), "{moved} moved");
    }

    #[test]
    fn the_spread_over_three_nodes_is_balanced_within_a_factor_of_two() {
        let ring = Ring::new(["a@h", "b@h", "c@h"], 64);
        let mut counts = std::collections::BTreeMap::new();
        for i in 0..3000 {
            *counts
                .entry(ring.owner(&format!("child-{i}")).unwrap())
                .or_insert(0) += 1;
        }
        for count in counts.values() {
            assert!((500..2000).contains(count), "{counts:?}");
        }
    }
}
