//! Maps sized to what they hold. A map keyed per session, user or topic grows to its
//! peak and, left alone, keeps that capacity after everyone left (a mass disconnect would
//! leave megabytes behind): they shrink once mostly empty. And a session's own few rooms
//! live in a `SmallMap`, not a hash map whose smallest table is four slots.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// Below this capacity shrinking is not worth a rehash.
const MIN_CAPACITY: usize = 64;

/// Shrinks `map` to twice its length once it uses less than a quarter of its capacity:
/// each shrink halves the capacity at least, so over a run of removals the rehashing
/// costs O(1) per removal, and growing back costs what it did the first time.
pub fn shrink_when_sparse<K: Eq + Hash, V, S: BuildHasher>(map: &mut HashMap<K, V, S>) {
    if let Some(target) = shrunk_capacity(map.len(), map.capacity(), MIN_CAPACITY) {
        map.shrink_to(target);
    }
}

/// The capacity to shrink to (twice the length) once a collection above `min` capacity
/// uses less than a quarter of it; `None` to leave it.
fn shrunk_capacity(len: usize, capacity: usize, min: usize) -> Option<usize> {
    (capacity > min && len < capacity / 4).then_some(len * 2)
}

/// Entries up to which a `SmallMap` grows one slot at a time.
const SMALL_EXACT: usize = 8;

/// A map kept as a vector sorted by key, for the handful of entries one session holds
/// (its rooms, its games). One room costs one 48-byte allocation instead of a 192-byte
/// hash table (10,000 idle connections: 1.4 MiB), and a lookup is a binary search with
/// no hashing. Grows one slot at a time while small, then doubles; shrinks once a
/// quarter full.
#[derive(Debug)]
pub struct SmallMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord, V> SmallMap<K, V> {
    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        let at = self.find(key).ok()?;
        Some(&self.entries[at].1)
    }

    pub fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let at = self.find(key).ok()?;
        Some(&mut self.entries[at].1)
    }

    /// Inserts or replaces; returns the value replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                if self.entries.len() < SMALL_EXACT {
                    self.entries.reserve_exact(1);
                }
                self.entries.insert(at, (key, value));
                None
            }
        }
    }

    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let at = self.find(key).ok()?;
        let (_, value) = self.entries.remove(at);
        if let Some(target) =
            shrunk_capacity(self.entries.len(), self.entries.capacity(), SMALL_EXACT)
        {
            self.entries.shrink_to(target);
        }
        Some(value)
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.iter().map(|(k, _)| k)
    }
}

impl<'a, K, V> IntoIterator for &'a SmallMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_map_finds_what_it_holds_and_stays_tight() {
        let mut map: SmallMap<String, u32> = SmallMap::default();
        assert!(map.is_empty());
        for (i, k) in ["m", "c", "x", "a"].into_iter().enumerate() {
            assert_eq!(map.insert(k.to_string(), i as u32), None);
            assert_eq!(map.entries.capacity(), i + 1, "one slot at a time");
        }
        assert_eq!(map.insert("c".into(), 9), Some(1));
        assert_eq!(map.len(), 4);
        assert!(map.contains_key("x") && !map.contains_key("b"));
        *map.get_mut("a").expect("a") += 10;
        let all: Vec<(&String, &u32)> = (&map).into_iter().collect();
        let keys: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "c", "m", "x"], "kept sorted");
        assert_eq!(*all[0].1, 13);
        assert_eq!(map.get("x"), Some(&2));
        assert_eq!(map.remove("m"), Some(0));
        assert_eq!(map.remove("m"), None);
        assert_eq!(map.keys().count(), 3);
        // Past the exact range it doubles, and it gives capacity back once emptied.
        for k in 0..1_000 {
            map.insert(format!("k{k:04}"), k);
        }
        assert!(map.entries.capacity() < 2_100);
        for k in 0..1_000 {
            assert_eq!(map.remove(&format!("k{k:04}")), Some(k));
        }
        assert!(
            map.entries.capacity() <= 2 * SMALL_EXACT,
            "kept {}",
            map.entries.capacity()
        );
    }

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
