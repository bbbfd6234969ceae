//! Compact handles for ids and names, and a deterministic encoding of hash maps.
//!
//! The read models refer to partners, customers and users by `u32` indexes given in order of
//! first appearance in the log, so the same log always gives the same indexes; hash maps
//! are only lookups from the outside ids to those indexes, serialized sorted so that a
//! checkpoint of the same log is the same bytes.

use std::hash::{BuildHasher, Hash};

use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Serializes a hash map as a vector of pairs sorted by key, and reads it back.
pub(crate) mod sorted {
    use super::*;

    /// Writes the map's entries sorted by key.
    pub fn serialize<K, V, S>(map: &FxHashMap<K, V>, serializer: S) -> Result<S::Ok, S::Error>
    where
        K: Ord + Serialize,
        V: Serialize,
        S: Serializer,
    {
        let mut entries: Vec<(&K, &V)> = map.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        entries.serialize(serializer)
    }

    /// Reads entries written by [`serialize`].
    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<FxHashMap<K, V>, D::Error>
    where
        K: Eq + Hash + DeserializeOwned,
        V: DeserializeOwned,
        D: Deserializer<'de>,
    {
        let entries: Vec<(K, V)> = Vec::deserialize(deserializer)?;
        Ok(entries.into_iter().collect())
    }
}

/// Interned strings (stream names, actor texts): each distinct name once, all of them in
/// one text (no allocation per name), found through a [`Lookup`] of their hashes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Names {
    /// Every name, one after another.
    text: String,
    /// Where each name ends in `text`.
    ends: Vec<u32>,
    #[serde(skip)]
    lookup: Lookup,
    /// The last name interned and its hash: the events of one command share their stream
    /// and actor, so this answers most lookups without probing the table.
    #[serde(skip)]
    last: Option<(u32, u32)>,
}

impl PartialEq for Names {
    fn eq(&self, other: &Self) -> bool {
        // The lookups are derived from the names.
        self.text == other.text && self.ends == other.ends
    }
}

impl Eq for Names {}

/// 32 bits of a name's hash: what [`Names`] finds it by, computed once per name by a caller
/// that looks names up ahead of their use ([`Names::warm_slot`]).
pub(crate) fn hash_of(name: &str) -> u32 {
    (FxBuildHasher.hash_one(name) >> 32) as u32
}

/// The table's hash of a name, spread from its 32 bits (a slot's home is taken from the top
/// bits of this).
fn table_hash(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl Names {
    /// The index of `name`, adding it if new; `None` when the names would pass 4 GiB.
    /// `hash` is its [`hash_of`], which the caller computes (once, for the warming reads
    /// too).
    pub fn intern_hashed(&mut self, name: &str, hash: u32) -> Option<u32> {
        if let Some((last, last_hash)) = self.last
            && last_hash == hash
            && self.name(last) == name
        {
            return Some(last);
        }
        let index = match self.lookup.find_or_vacant(&self.text, name, hash) {
            Ok(index) => index,
            Err(vacant) => {
                // The lookup keeps `index + 1`, so the last index of all is never used.
                let index = u32::try_from(self.ends.len())
                    .ok()
                    .filter(|index| *index < u32::MAX)?;
                let start = u32::try_from(self.text.len()).ok()?;
                let length = u32::try_from(name.len()).ok()?;
                let end = start.checked_add(length)?;
                self.text.push_str(name);
                self.ends.push(end);
                self.lookup
                    .insert_at(vacant, [hash, index + 1, start, length]);
                index
            }
        };
        self.last = Some((index, hash));
        Some(index)
    }

    /// Makes room for up to `names` more names (in the lookup too) of `bytes` bytes in all,
    /// so that the text grows once rather than by doubling, copying and touching fresh
    /// memory each time.
    pub fn reserve(&mut self, names: usize, bytes: usize) {
        self.text.reserve(bytes);
        self.ends.reserve(names);
        self.lookup.reserve(names);
    }

    /// The index of `name`, if known.
    pub fn find(&self, name: &str) -> Option<u32> {
        self.lookup.find(&self.text, name, hash_of(name))
    }

    /// Reads the slot where a lookup of `hash` starts, and returns a word of it for the
    /// caller to fold into a value it keeps (so that the read is not optimized away).
    ///
    /// A lookup waits for one cache miss after another (slot, then text); a rebuild reads
    /// the slots of a batch of names first, then their texts ([`Names::warm_text`]), so
    /// that the misses of the batch overlap, and interns them after, from the cache.
    pub fn warm_slot(&self, hash: u32) -> u32 {
        self.lookup
            .home(hash)
            .map_or(0, |home| self.lookup.slots[home][1])
    }

    /// Reads the first byte of the name a lookup of `hash` would most likely find (the
    /// first slot with the same hash), returning that name's index and the byte, or `None`
    /// when no name has that hash. See [`Names::warm_slot`].
    pub fn warm_text(&self, hash: u32) -> Option<(u32, u8)> {
        let [_, index, start, _] = self.lookup.first_with(hash)?;
        let byte = self
            .text
            .as_bytes()
            .get(start as usize)
            .copied()
            .unwrap_or(0);
        Some((index - 1, byte))
    }

    /// The name at `index`.
    pub fn name(&self, index: u32) -> &str {
        let index = index as usize;
        let start = index.checked_sub(1).map_or(0, |before| self.ends[before]) as usize;
        &self.text[start..self.ends[index] as usize]
    }

    /// How many names.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the layout read from a checkpoint holds together: ends in order, within the
    /// text and on character boundaries, and fewer than `u32::MAX` names.
    pub fn well_formed(&self) -> bool {
        self.ends.len() < u32::MAX as usize
            && self.ends.windows(2).all(|pair| pair[0] <= pair[1])
            && self.ends.last().map_or(0, |end| *end as usize) == self.text.len()
            && self
                .ends
                .iter()
                .all(|end| self.text.is_char_boundary(*end as usize))
    }

    /// Rebuilds the lookup after deserializing (the layout must be [`Names::well_formed`]).
    /// A name written twice (a damaged checkpoint) keeps its first index.
    pub fn rebuild_index(&mut self) {
        self.last = None;
        self.lookup = Lookup::default();
        self.lookup.reserve(self.ends.len());
        let mut start = 0u32;
        for (index, end) in (0u32..).zip(self.ends.iter().copied()) {
            let name = &self.text[start as usize..end as usize];
            let hash = hash_of(name);
            if self.lookup.find(&self.text, name, hash).is_none() {
                self.lookup.insert([hash, index + 1, start, end - start]);
            }
            start = end;
        }
    }
}

/// Finds names by hash: open addressing with linear probing over 16-byte slots
/// `[hash, index + 1, start, length]` (0 as the second word: empty). A lookup reads one
/// slot (rarely the next few, as the table is at most 5/8 full) and then the name's text,
/// found from the slot alone; the table grows from the slots alone, never reading a name.
#[derive(Clone, Debug, Default)]
struct Lookup {
    /// A power of two of slots, or none.
    slots: Vec<[u32; 4]>,
    /// How many are used.
    used: usize,
}

impl Lookup {
    /// The slot where a probe for `hash` starts (`None` while the table is empty).
    fn home(&self, hash: u32) -> Option<usize> {
        let bits = self.slots.len().trailing_zeros();
        (!self.slots.is_empty()).then(|| (table_hash(hash) >> (64 - bits)) as usize)
    }

    /// The slots probed for `hash`, from its home to the first empty one.
    fn probe(&self, hash: u32) -> impl Iterator<Item = [u32; 4]> + '_ {
        let mask = self.slots.len().wrapping_sub(1);
        let home = self.home(hash);
        // The table always has an empty slot, so the walk ends.
        std::iter::successors(home, move |at| Some((at + 1) & mask))
            .map(|at| self.slots[at])
            .take_while(|slot| slot[1] != 0)
    }

    /// The first slot with `hash`, if any.
    fn first_with(&self, hash: u32) -> Option<[u32; 4]> {
        self.probe(hash).find(|slot| slot[0] == hash)
    }

    /// The index of `name` (its hash `hash`) within `text`.
    fn find(&self, text: &str, name: &str, hash: u32) -> Option<u32> {
        self.find_or_vacant(text, name, hash).ok()
    }

    /// The index of `name` (its hash `hash`) within `text`, or else the empty slot that
    /// ends its probe (`None` while the table is empty), where it would go.
    fn find_or_vacant(&self, text: &str, name: &str, hash: u32) -> Result<u32, Option<usize>> {
        let mask = self.slots.len().wrapping_sub(1);
        let Some(mut at) = self.home(hash) else {
            return Err(None);
        };
        // The table always has an empty slot, so the walk ends.
        loop {
            let [slot_hash, index, start, length] = self.slots[at];
            if index == 0 {
                return Err(Some(at));
            }
            let held = text
                .as_bytes()
                .get(start as usize..start as usize + length as usize);
            if slot_hash == hash && held == Some(name.as_bytes()) {
                return Ok(index - 1);
            }
            at = (at + 1) & mask;
        }
    }

    /// Adds a slot for a name not in the table, at `vacant` (the empty slot that ended its
    /// probe, from [`Lookup::find_or_vacant`]) unless the table must grow first, which moves
    /// every slot: one probe per new name rather than two.
    fn insert_at(&mut self, vacant: Option<usize>, slot: [u32; 4]) {
        match vacant {
            Some(at) if crate::idtable::grown_size(self.used, 1, self.slots.len()).is_none() => {
                self.slots[at] = slot;
                self.used += 1;
            }
            _ => self.insert(slot),
        }
    }

    /// Adds a slot for a name not in the table.
    fn insert(&mut self, slot: [u32; 4]) {
        self.reserve(1);
        self.place(slot);
        self.used += 1;
    }

    /// Makes room for `more` slots at most 5/8 full, doubling as needed.
    fn reserve(&mut self, more: usize) {
        let Some(size) = crate::idtable::grown_size(self.used, more, self.slots.len()) else {
            return;
        };
        // All-zero slots are empty, so the new table is fresh zeroed memory, not written.
        let old = std::mem::replace(&mut self.slots, vec![[0; 4]; size]);
        for slot in old.into_iter().filter(|slot| slot[1] != 0) {
            self.place(slot);
        }
    }

    /// Puts `slot` in the first empty slot of its probe (there is room).
    fn place(&mut self, slot: [u32; 4]) {
        let mask = self.slots.len() - 1;
        let mut at = self.home(slot[0]).unwrap_or(0);
        while self.slots[at][1] != 0 {
            at = (at + 1) & mask;
        }
        self.slots[at] = slot;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn intern(names: &mut Names, name: &str) -> Option<u32> {
        names.intern_hashed(name, hash_of(name))
    }

    #[test]
    fn names_intern_once_and_survive_a_round_trip() {
        let mut names = Names::default();
        let a = intern(&mut names, "order-1");
        let b = intern(&mut names, "customer-1");
        assert_eq!(intern(&mut names, "order-1"), a);
        assert_eq!(intern(&mut names, ""), Some(2));
        assert_eq!(names.find("customer-1"), b);
        assert_eq!(names.find("nope"), None);
        assert_eq!(names.name(1), "customer-1");
        let bytes = rmp_serde::to_vec(&names).unwrap_or_default();
        let mut read: Names = rmp_serde::from_slice(&bytes).unwrap_or_default();
        assert!(read.well_formed());
        read.rebuild_index();
        assert_eq!(read, names);
        assert_eq!(read.find("order-1"), a);
        assert_eq!(read.find(""), Some(2));
    }

    proptest! {
        /// Interning numbers names by first appearance, as a plain map would, through the
        /// lookup's growth and whatever the hashes: real ones, or only a few values, so
        /// that different names share a hash and only their text tells them apart. The
        /// warming reads point at a name of the same hash, and the lookup rebuilt from the
        /// names finds them all again.
        #[test]
        fn interning_numbers_names_by_first_appearance(
            picks in prop::collection::vec(0usize..300, 0..1500),
            few_hashes in any::<bool>(),
        ) {
            let hash = |name: &str| if few_hashes { hash_of(name) % 3 } else { hash_of(name) };
            let mut names = Names::default();
            let mut reference: HashMap<String, u32> = HashMap::new();
            for pick in picks {
                let name = format!("stream-{pick}");
                let expected = reference.len() as u32;
                let expected = *reference.entry(name.clone()).or_insert(expected);
                if let Some((index, _)) = names.warm_text(hash(&name)) {
                    prop_assert_eq!(hash(names.name(index)), hash(&name));
                }
                names.warm_slot(hash(&name));
                prop_assert_eq!(names.intern_hashed(&name, hash(&name)), Some(expected));
                prop_assert_eq!(names.name(expected), name.as_str());
            }
            prop_assert_eq!(names.len(), reference.len());
            if !few_hashes {
                for (name, index) in &reference {
                    prop_assert_eq!(names.find(name), Some(*index));
                }
                let mut rebuilt = names.clone();
                rebuilt.rebuild_index();
                for (name, index) in &reference {
                    prop_assert_eq!(rebuilt.find(name), Some(*index));
                }
                prop_assert_eq!(rebuilt.find("stream-none"), None);
            }
        }
    }
}
