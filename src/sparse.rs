//! Maps that give memory back: a map keyed per session, user or topic grows to its peak
//! and, left alone, keeps that capacity after everyone left (a mass disconnect would
//! leave megabytes behind). They shrink once mostly empty.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// Below this capacity shrinking is not worth a rehash.
const MIN_CAPACITY: usize = 64;

/// Shrinks `map` to twice its length once it uses less than a quarter of its capacity:
/// each shrink halves the capacity at least, so over a run of removals the rehashing
/// costs O(1) per removal, and growing back costs what it did the first time.
pub fn shrink_when_sparse<K: Eq + Hash, V, S: BuildHasher>(map: &mut HashMap<K, V, S>) {
    let capacity = map.capacity();
    if capacity > MIN_CAPACITY && map.len() < capacity / 4 {
        map.shrink_to(map.len() * 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_emptied_after_a_peak_gives_its_capacity_back() {
        let mut map: HashMap<u32, [u8; 64]> = (0..10_000).map(|k| (k, [0; 64])).collect();
        let peak = map.capacity();
        for k in 0..10_000 {
            map.remove(&k);
            shrink_when_sparse(&mut map);
        }
        assert!(peak >= 10_000);
        assert!(map.capacity() <= MIN_CAPACITY, "kept {}", map.capacity());
    }

    #[test]
    fn a_map_in_use_is_left_alone() {
        let mut map: HashMap<u32, u32> = (0..1_000).map(|k| (k, k)).collect();
        let capacity = map.capacity();
        for k in 0..200 {
            map.remove(&k);
            shrink_when_sparse(&mut map);
        }
        // (`capacity()` moves a little with removals; a shrink would halve it at least.)
        assert!(
            map.capacity() > capacity * 3 / 4,
            "{capacity} -> {}",
            map.capacity()
        );
        assert_eq!(map.len(), 800);
    }
}
