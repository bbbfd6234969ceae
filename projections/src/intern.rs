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

/// Interned strings (stream names, actor texts): each distinct name once, with an index
/// keyed by the name's 64-bit hash so the names are not stored twice. The rare hash
/// collision goes to a small overflow map keyed by the name itself.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Names {
    names: Vec<Box<str>>,
    #[serde(skip)]
    by_hash: FxHashMap<u64, u32>,
    #[serde(skip)]
    overflow: FxHashMap<Box<str>, u32>,
    /// The last name interned: the events of one command share their stream and actor,
    /// so this answers most lookups without hashing.
    #[serde(skip)]
    last: Option<u32>,
}

impl PartialEq for Names {
    fn eq(&self, other: &Self) -> bool {
        // The indexes are derived from the names.
        self.names == other.names
    }
}

impl Eq for Names {}

fn hash_of(name: &str) -> u64 {
    FxBuildHasher.hash_one(name)
}

impl Names {
    /// The index of `name`, adding it if new.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(last) = self.last
            && &*self.names[last as usize] == name
        {
            return last;
        }
        let index = match self.find(name) {
            Some(index) => index,
            None => {
                let index = self.names.len() as u32;
                self.names.push(name.into());
                self.index_name(index);
                index
            }
        };
        self.last = Some(index);
        index
    }

    /// The index of `name`, if known.
    pub fn find(&self, name: &str) -> Option<u32> {
        let index = *self.by_hash.get(&hash_of(name))?;
        if &*self.names[index as usize] == name {
            return Some(index);
        }
        self.overflow.get(name).copied()
    }

    fn index_name(&mut self, index: u32) {
        let name = &self.names[index as usize];
        match self.by_hash.entry(hash_of(name)) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(index);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.overflow.insert(name.clone(), index);
            }
        }
    }

    /// The name at `index`.
    pub fn name(&self, index: u32) -> &str {
        &self.names[index as usize]
    }

    /// How many names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Rebuilds the lookup after deserializing.
    pub fn rebuild_index(&mut self) {
        self.by_hash.clear();
        self.overflow.clear();
        self.last = None;
        self.by_hash.reserve(self.names.len());
        for index in 0..self.names.len() as u32 {
            self.index_name(index);
        }
    }
}
