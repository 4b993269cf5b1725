//! The two hash tables behind [`GraphBuilder`](crate::graph::GraphBuilder): state names with
//! dense ids in order of first sight ([`NameTable`]), and counts per pair of states
//! ([`TallyTable`]).
//!
//! Why not general hash maps: logs with millions of distinct, long names (the writer's
//! dictionaries overflow and every row carries its name) and millions of distinct pairs spend
//! their load time waiting on memory: about three cache misses per name in a
//! `HashMap<String, u32>` (its control bytes, its bucket, the stored name to compare) and two
//! per pair. Here both tables are flat arrays probed linearly, one miss per lookup (plus one in
//! the stored text of a name), and the batch operations ([`NameTable::intern_all`],
//! [`TallyTable::prefetch`] as `GraphBuilder::add_all` uses it) fetch what a lookup reads a few
//! lookups ahead, so that the misses overlap instead of adding up. Both place an entry by the
//! high bits of its hash, so doubling a table moves each entry to about twice its place, in
//! order, without hashing again.

use rayon::prelude::*;
use rustc_hash::FxBuildHasher;
use std::hash::BuildHasher;

/// Names and their ids.
pub struct NameTable {
    /// Every name, back to back in id order: name `i` ends at `ends[i]` and starts where name
    /// `i − 1` ends (one allocation for all, not one per name).
    text: String,
    ends: Vec<usize>,
    /// `tag << 32 | id` with `tag` the hash's high half, or [`EMPTY`]; `2^bits` long, at most
    /// half full. A name's first slot is its tag's high `bits` bits (see [`NameTable::slot`]).
    slots: Vec<u64>,
    bits: u32,
}

/// A free slot: ids stay below `u32::MAX`, so no entry equals it.
const EMPTY: u64 = u64::MAX;
/// Bits of the first table's size.
const MIN_BITS: u32 = 4;
/// Names looked up ahead of the one being interned by [`NameTable::intern_all`]: far enough
/// for a cache miss to complete (a few hundred cycles), near enough to stay in the L1 cache.
const AHEAD: usize = 16;
/// Bytes per cache line (64 on every current x86_64 and most ARM cores).
const CACHE_LINE: usize = 64;

impl Default for NameTable {
    fn default() -> Self {
        NameTable {
            text: String::new(),
            ends: Vec::new(),
            slots: vec![EMPTY; 1 << MIN_BITS],
            bits: MIN_BITS,
        }
    }
}

impl NameTable {
    /// The hash every lookup uses.
    pub fn hash(name: &str) -> u64 {
        FxBuildHasher.hash_one(name.as_bytes())
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The name of `id`.
    pub fn name(&self, id: u32) -> &str {
        &self.text[self.span(id as usize)]
    }

    /// Where the name of `id` lies in `text`.
    fn span(&self, id: usize) -> std::ops::Range<usize> {
        let start = if id == 0 { 0 } else { self.ends[id - 1] };
        start..self.ends[id]
    }

    /// The id of `name`, assigning the next one on first sight.
    pub fn intern(&mut self, name: &str) -> u32 {
        self.intern_hashed(name, Self::hash(name))
    }

    /// Replaces `ids` with the id of each of `names` in turn, as [`NameTable::intern`] one by
    /// one would, with what each lookup reads fetched into the cache ahead of time: a name's
    /// slot [`AHEAD`] names before its candidate's end offset, and that [`AHEAD`] names before
    /// the candidate's text (each stage reads what the previous one fetched).
    pub fn intern_all(&mut self, names: &[&str], ids: &mut Vec<u32>) {
        let hashes: Vec<u64> = names.iter().map(|name| Self::hash(name)).collect();
        ids.clear();
        ids.reserve(names.len());
        for (i, (name, &hash)) in names.iter().zip(&hashes).enumerate() {
            if let Some(&hash) = hashes.get(i + 3 * AHEAD) {
                prefetch(&self.slots[self.slot(hash)]);
            }
            if let Some(id) = hashes.get(i + 2 * AHEAD).and_then(|&h| self.candidate(h)) {
                prefetch(&self.ends[id.saturating_sub(1)]);
            }
            if let Some(id) = hashes.get(i + AHEAD).and_then(|&h| self.candidate(h)) {
                let text = &self.text.as_bytes()[self.span(id)];
                text.iter().step_by(CACHE_LINE).for_each(prefetch);
            }
            ids.push(self.intern_hashed(name, hash));
        }
    }

    /// The first slot of `hash`: its high bits, so that doubling the table moves every entry to
    /// twice its place, without hashing the name again.
    fn slot(&self, hash: u64) -> usize {
        ((hash >> 32) >> (32 - self.bits)) as usize
    }

    /// The id in the first slot of `hash`'s probe sequence whose tag matches.
    fn candidate(&self, hash: u64) -> Option<usize> {
        let mut at = self.slot(hash);
        while self.slots[at] != EMPTY {
            if self.slots[at] >> 32 == hash >> 32 {
                return Some(self.slots[at] as u32 as usize);
            }
            at = (at + 1) & (self.slots.len() - 1);
        }
        None
    }

    fn intern_hashed(&mut self, name: &str, hash: u64) -> u32 {
        let tag = hash >> 32;
        let mut at = self.slot(hash);
        while self.slots[at] != EMPTY {
            let entry = self.slots[at];
            if entry >> 32 == tag
                && self.text.as_bytes()[self.span(entry as u32 as usize)] == *name.as_bytes()
            {
                return entry as u32;
            }
            at = (at + 1) & (self.slots.len() - 1);
        }
        let id = u32::try_from(self.ends.len())
            .ok()
            .filter(|&id| id < u32::MAX)
            .expect("more than 2^32 − 1 distinct states");
        self.slots[at] = (tag << 32) | u64::from(id);
        self.text.push_str(name);
        self.ends.push(self.text.len());
        if 2 * self.ends.len() > self.slots.len() {
            self.grow();
        }
        id
    }

    /// Doubles the slots and places every entry again, in order (so the writes go forward).
    fn grow(&mut self) {
        self.bits += 1;
        assert!(self.bits <= 32, "more than 2^31 distinct states");
        let doubled = vec![EMPTY; 1 << self.bits];
        let old = std::mem::replace(&mut self.slots, doubled);
        for entry in old.into_iter().filter(|&e| e != EMPTY) {
            let mut at = self.slot(entry);
            while self.slots[at] != EMPTY {
                at = (at + 1) & (self.slots.len() - 1);
            }
            self.slots[at] = entry;
        }
    }
}

/// A count of transitions and the first row (global index) that added to it.
#[derive(Clone, Copy)]
pub struct Tally {
    pub count: u64,
    pub first_row: u64,
}

impl Tally {
    /// No transitions yet.
    pub const NONE: Tally = Tally {
        count: 0,
        first_row: u64::MAX,
    };

    pub fn add(&mut self, count: u64, first_row: u64) {
        self.count += count;
        self.first_row = self.first_row.min(first_row);
    }
}

/// A [`Tally`] per key (`source << 32 | target`, `source ≠ target`).
pub struct TallyTable {
    /// `2^bits` slots, at most half full; a free slot has the key [`NO_PAIR`].
    slots: Vec<(u64, Tally)>,
    bits: u32,
    len: usize,
}

/// The key of a free slot: `source = target = u32::MAX`, never a pair of different states.
const NO_PAIR: u64 = u64::MAX;

impl Default for TallyTable {
    fn default() -> Self {
        TallyTable {
            slots: vec![(NO_PAIR, Tally::NONE); 1 << MIN_BITS],
            bits: MIN_BITS,
            len: 0,
        }
    }
}

impl TallyTable {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first slot of `key`: the high bits of a multiplicative hash of it.
    fn slot(&self, key: u64) -> usize {
        let product = u128::from(key) * 0x9e37_79b9_7f4a_7c15;
        let hash = (product >> 64) as u64 ^ product as u64;
        (hash >> (64 - self.bits)) as usize
    }

    /// Fetches the first slot of `key` into the cache.
    pub fn prefetch(&self, key: u64) {
        prefetch(&self.slots[self.slot(key)]);
    }

    /// The tally of `key`, created empty on first use.
    pub fn entry(&mut self, key: u64) -> &mut Tally {
        debug_assert_ne!(key, NO_PAIR);
        let mut at = self.slot(key);
        while self.slots[at].0 != key {
            if self.slots[at].0 == NO_PAIR {
                if 2 * (self.len + 1) > self.slots.len() {
                    self.grow();
                    return self.entry(key);
                }
                self.slots[at].0 = key;
                self.len += 1;
                break;
            }
            at = (at + 1) & (self.slots.len() - 1);
        }
        &mut self.slots[at].1
    }

    /// Every key and its tally, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Tally)> {
        self.slots
            .iter()
            .filter(|(key, _)| *key != NO_PAIR)
            .map(|(key, tally)| (*key, tally))
    }

    /// [`TallyTable::iter`] on every thread.
    pub fn par_iter(&self) -> impl ParallelIterator<Item = (u64, &Tally)> {
        (self.slots.par_iter())
            .filter_map(|(key, tally)| (*key != NO_PAIR).then_some((*key, tally)))
    }

    /// Doubles the slots and places every entry again, in order (so the writes go forward).
    fn grow(&mut self) {
        self.bits += 1;
        let doubled = vec![(NO_PAIR, Tally::NONE); 1 << self.bits];
        let old = std::mem::replace(&mut self.slots, doubled);
        for (key, tally) in old.into_iter().filter(|(key, _)| *key != NO_PAIR) {
            let mut at = self.slot(key);
            while self.slots[at].0 != NO_PAIR {
                at = (at + 1) & (self.slots.len() - 1);
            }
            self.slots[at] = (key, tally);
        }
    }
}

/// Asks the processor to bring `value`'s cache line in (a hint: no effect on results).
#[inline]
fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing architecturally; SSE is part of x86_64's baseline.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_first_sight_through_growth() {
        let mut table = NameTable::default();
        let names: Vec<String> = (0..10_000).map(|i| format!("name {}", i % 3_000)).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut ids = Vec::new();
        table.intern_all(&refs, &mut ids);
        assert_eq!(table.len(), 3_000);
        for (name, &id) in refs.iter().zip(&ids) {
            assert_eq!(table.name(id), *name);
            assert_eq!(id as usize, name[5..].parse::<usize>().unwrap());
        }
        assert_eq!(table.intern("name 7"), 7);
        assert_eq!(table.intern(""), 3_000);
        assert_eq!(table.name(3_000), "");
    }

    #[test]
    fn tallies_add_up_through_growth() {
        let mut table = TallyTable::default();
        for row in 0..30_000u64 {
            let key = (row % 7_000) << 32 | (row % 3);
            table.entry(key).add(row % 5 + 1, row);
        }
        // Rows 0..21,000 give every pair (row mod 7,000, row mod 3) once.
        assert_eq!(table.len(), 21_000);
        let total: u64 = table.iter().map(|(_, t)| t.count).sum();
        assert_eq!(total, (0..30_000u64).map(|row| row % 5 + 1).sum::<u64>());
        assert_eq!(table.entry(6_999 << 32 | 2).first_row, 20_999);
    }
}
