//! `SortedKeys`: an ordered set of keys kept as a sorted persistent vector.

use std::fmt;
use std::sync::Arc;

/// Most keys an insert moves off the end and back instead of splitting the vector.
const TAIL_REINSERT_MAX: usize = 256;

/// An ordered set of keys, held as a sorted `imbl::Vector`: the per-node and per-job
/// allocation indexes of the state.
///
/// Those indexes receive their keys almost always in order (a node's allocations by the index
/// at which they changed, a job's by time-ordered id). imbl's `OrdSet` splits a full B-tree
/// leaf into two halves and then only ever appends to the right one, so its leaves stay half
/// full, and each leaf also carries room for 65 child pointers it never uses: at a million
/// allocations the two indexes cost about 185 bytes per allocation. A vector fills its chunks
/// completely when keys are appended, and shares them between versions of the state as the
/// set did. A lookup is a binary search over the vector's O(log n) reads.
///
/// The vector is behind an `Arc`, as the set's root was: the maps that hold one value per
/// node or job copy a whole leaf of values when a write follows a published version, and a
/// bare vector is 64 bytes with up to five reference counts of its own to increment (and
/// later decrement) per value, in chunks all over the heap.
#[derive(Clone, PartialEq, Eq)]
pub struct SortedKeys<K: Clone>(Arc<imbl::Vector<K>>);

impl<K: Clone> Default for SortedKeys<K> {
    fn default() -> Self {
        SortedKeys(Arc::new(imbl::Vector::new()))
    }
}

impl<K: Ord + Clone> SortedKeys<K> {
    /// Adds a key; false if it was already present.
    pub fn insert(&mut self, key: K) -> bool {
        // Most keys come after every key held: no search.
        if self.0.last().is_none_or(|last| *last < key) {
            Arc::make_mut(&mut self.0).push_back(key);
            return true;
        }
        match self.0.binary_search(&key) {
            Ok(_) => false,
            Err(at) if at == self.0.len() => {
                Arc::make_mut(&mut self.0).push_back(key);
                true
            }
            Err(at) if self.0.len() - at <= TAIL_REINSERT_MAX => {
                let keys = Arc::make_mut(&mut self.0);
                // Keys that arrive out of order arrive near the end (ids made in the same
                // millisecond). Taking the few keys after the spot off the end and putting
                // them back is a handful of moves within the last chunk, where `insert`
                // would split the vector and join it again.
                let mut tail = Vec::with_capacity(keys.len() - at);
                while keys.len() > at {
                    tail.extend(keys.pop_back());
                }
                keys.push_back(key);
                while let Some(k) = tail.pop() {
                    keys.push_back(k);
                }
                true
            }
            Err(at) => {
                Arc::make_mut(&mut self.0).insert(at, key);
                true
            }
        }
    }

    /// Removes a key; false if it was absent.
    pub fn remove(&mut self, key: &K) -> bool {
        match self.0.binary_search(key) {
            Ok(at) => {
                Arc::make_mut(&mut self.0).remove(at);
                true
            }
            Err(_) => false,
        }
    }

    pub fn contains(&self, key: &K) -> bool {
        self.0.binary_search(key).is_ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator {
        self.0.iter()
    }

    /// The keys from `from` (included) on, in order; the ones before it are not read.
    pub fn range_from(&self, from: &K) -> impl Iterator<Item = &K> {
        // Most reads ask for keys past the last one (nothing changed): no search, no focus.
        let at = match self.0.last() {
            Some(last) if last >= from => {
                let (Ok(at) | Err(at)) = self.0.binary_search(from);
                at
            }
            _ => self.0.len(),
        };
        (at < self.0.len())
            .then(|| self.0.focus().narrow(at..))
            .into_iter()
            .flatten()
    }

    /// Checks that the keys are strictly increasing. O(n): for `check_invariants`.
    pub fn assert_sorted(&self) {
        let mut keys = self.0.iter();
        if let Some(mut previous) = keys.next() {
            for key in keys {
                assert!(previous < key, "index keys out of order");
                previous = key;
            }
        }
    }
}

impl<K: Ord + Clone> FromIterator<K> for SortedKeys<K> {
    /// Sorts the keys and drops repeats; the vector is built with full chunks.
    fn from_iter<I: IntoIterator<Item = K>>(iter: I) -> SortedKeys<K> {
        let mut keys: Vec<K> = iter.into_iter().collect();
        keys.sort();
        keys.dedup();
        SortedKeys(Arc::new(keys.into_iter().collect()))
    }
}

impl<K: Clone + fmt::Debug> fmt::Debug for SortedKeys<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn keeps_the_same_keys_in_the_same_order_as_a_btree_set() {
        // Appends, inserts in the middle, repeats and removals, against BTreeSet.
        let mut keys = SortedKeys::default();
        let mut model = BTreeSet::new();
        let mut x: u64 = 7;
        for step in 0..5_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = if step % 3 == 0 {
                (x >> 40) % 2_000
            } else {
                2_000 + step
            };
            if x % 5 == 0 {
                assert_eq!(keys.remove(&key), model.remove(&key), "remove {key}");
            } else {
                assert_eq!(keys.insert(key), model.insert(key), "insert {key}");
            }
        }
        // Out-of-order keys near the end: descending appends, then keys between them, at
        // every distance from the end up to past `TAIL_REINSERT_MAX`.
        for j in (0..300u64).rev() {
            assert!(keys.insert(1_000_000 + 2 * j));
            model.insert(1_000_000 + 2 * j);
        }
        for j in 0..300u64 {
            assert!(keys.insert(1_000_001 + 2 * j));
            model.insert(1_000_001 + 2 * j);
        }
        assert_eq!(keys.len(), model.len());
        assert!(keys.iter().eq(model.iter()));
        keys.assert_sorted();
        for from in [0, 1_000, 2_500, 4_000, 10_000] {
            assert!(
                keys.range_from(&from).eq(model.range(from..)),
                "from {from}"
            );
        }
        assert!(model.iter().all(|k| keys.contains(k)));
        assert!(!keys.contains(&u64::MAX));
        let rebuilt: SortedKeys<u64> = model.iter().rev().copied().chain([5, 5]).collect();
        let mut expected = model.clone();
        expected.insert(5);
        assert!(rebuilt.iter().eq(expected.iter()));
    }

    #[test]
    fn a_copy_shares_the_keys_and_a_change_to_one_leaves_the_other() {
        let mut a: SortedKeys<u32> = (0..1_000).collect();
        let b = a.clone();
        a.insert(5_000);
        a.remove(&10);
        assert_eq!(b.len(), 1_000);
        assert!(b.contains(&10) && !b.contains(&5_000));
        assert!(a.contains(&5_000) && !a.contains(&10));
    }
}
