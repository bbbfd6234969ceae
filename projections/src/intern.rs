//! Compact handles for ids and names, and a deterministic encoding of hash maps.
//!
//! The read models refer to partners, customers and users by `u32` indexes given in order of
//! first appearance in the log, so the same log always gives the same indexes; hash maps
//! are only lookups from the outside ids to those indexes, serialized sorted so that a
//! checkpoint of the same log is the same bytes.

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;
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
/// one text (no allocation per name), found through a table of 8-byte slots, each a name's
/// index and 32 bits of its hash: a lookup reads the name's text only when those bits
/// match, and the table grows from the slots alone (its hash is derived from the stored
/// bits), never reading a name back.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Names {
    /// Every name, one after another.
    text: String,
    /// Where each name ends in `text`.
    ends: Vec<u32>,
    #[serde(skip)]
    table: HashTable<Slot>,
    /// The last name interned: the events of one command share their stream and actor,
    /// so this answers most lookups without hashing.
    #[serde(skip)]
    last: Option<u32>,
}

/// One name in the lookup table.
#[derive(Clone, Copy, Debug)]
struct Slot {
    index: u32,
    hash: u32,
}

impl PartialEq for Names {
    fn eq(&self, other: &Self) -> bool {
        // The lookups are derived from the names.
        self.text == other.text && self.ends == other.ends
    }
}

impl Eq for Names {}

/// 32 bits of the name's hash, kept in its slot.
fn hash_of(name: &str) -> u32 {
    (FxBuildHasher.hash_one(name) >> 32) as u32
}

/// The table's hash of a slot, spread from the 32 stored bits (the table takes its bucket
/// from the low bits and its tag from the top ones).
fn table_hash(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl Names {
    /// The index of `name`, adding it if new; `None` when the names would pass 4 GiB.
    pub fn intern(&mut self, name: &str) -> Option<u32> {
        if let Some(last) = self.last
            && self.name(last) == name
        {
            return Some(last);
        }
        let hash = hash_of(name);
        let index = match self.find_hashed(name, hash) {
            Some(index) => index,
            None => {
                let index = u32::try_from(self.ends.len()).ok()?;
                let end = u32::try_from(self.text.len() + name.len()).ok()?;
                self.text.push_str(name);
                self.ends.push(end);
                self.table
                    .insert_unique(table_hash(hash), Slot { index, hash }, |slot| {
                        table_hash(slot.hash)
                    });
                index
            }
        };
        self.last = Some(index);
        Some(index)
    }

    /// Makes room for up to `names` more names of `bytes` bytes in all, so that the text
    /// grows once rather than by doubling, copying and touching fresh memory each time.
    pub fn reserve(&mut self, names: usize, bytes: usize) {
        self.text.reserve(bytes);
        self.ends.reserve(names);
        self.table.reserve(names, |slot| table_hash(slot.hash));
    }

    /// The index of `name`, if known.
    pub fn find(&self, name: &str) -> Option<u32> {
        self.find_hashed(name, hash_of(name))
    }

    fn find_hashed(&self, name: &str, hash: u32) -> Option<u32> {
        self.table
            .find(table_hash(hash), |slot| {
                slot.hash == hash && self.name(slot.index) == name
            })
            .map(|slot| slot.index)
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
    /// text and on character boundaries.
    pub fn well_formed(&self) -> bool {
        self.ends.windows(2).all(|pair| pair[0] <= pair[1])
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
        self.table = HashTable::with_capacity(self.ends.len());
        for index in 0..self.ends.len() as u32 {
            let name = self.name(index);
            let hash = hash_of(name);
            if self.find_hashed(name, hash).is_none() {
                self.table
                    .insert_unique(table_hash(hash), Slot { index, hash }, |slot| {
                        table_hash(slot.hash)
                    });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_intern_once_and_survive_a_round_trip() {
        let mut names = Names::default();
        let a = names.intern("order-1");
        let b = names.intern("customer-1");
        assert_eq!(names.intern("order-1"), a);
        assert_eq!(names.intern(""), Some(2));
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
}
