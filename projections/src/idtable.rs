//! A lookup from UUID ids to small values whose slot for an id is known from the id alone.
//!
//! The read models' lookups by id (customers, orders, partners, users, tenants) are read at
//! random by a rebuild, and the customers' and orders' are tens of megabytes, so nearly
//! every lookup of those misses the cache. A general hash map finds where an entry lies
//! only by reading its control bytes first, so a lookup is two misses one after the other
//! and cannot be asked for ahead. Here the entries lie in the slots themselves, and the
//! first slot a lookup reads follows from the id's hash: a rebuild prefetches the slots of
//! a whole batch ([`IdTable::prefetch`]) and then finds them in the cache. Open addressing
//! with linear probing, at most 5/8 full; entries are never removed (the read models only
//! ever gain ids). The hash is not keyed, as the map it replaces (FxHash) was not: the ids
//! come from the ledger's own log, minted by the domain.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use domain::{CustomerId, OrderId, PartnerId, TenantId, UserId};

/// An id a table is keyed by: its 128 bits.
pub(crate) trait IdKey: Copy + Eq + Ord {
    /// The id's bits.
    fn bits(&self) -> u128;
}

/// The ids of the domain, each a UUID.
macro_rules! uuid_keys {
    ($($id:ty),*) => {
        $(
            impl IdKey for $id {
                fn bits(&self) -> u128 {
                    self.0.as_u128()
                }
            }
        )*
    };
}

uuid_keys!(CustomerId, OrderId, PartnerId, TenantId, UserId);

/// The table's hash of an id: both halves folded, then spread by a multiplication (a
/// slot's home is the top bits). UUIDv7's random bits are in the low half, its time in the
/// high half; the product spreads either, sequential ids included.
fn hash(bits: u128) -> u64 {
    let folded = (bits as u64) ^ ((bits >> 64) as u64).rotate_left(29);
    folded.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The number of slots an open-addressing table of `slots` slots with `used` of them used
/// needs for `more`: `None` while it has room at most 5/8 full, else the power of two
/// (at least 16) that keeps it so. Linear probing stays short below that fill.
pub(crate) fn grown_size(used: usize, more: usize, slots: usize) -> Option<usize> {
    let wanted = used.saturating_add(more);
    (wanted.saturating_mul(8) >= slots.saturating_mul(5)).then(|| {
        (wanted.saturating_mul(8) / 5 + 1)
            .next_power_of_two()
            .max(16)
    })
}

/// Ids and their values (see the module's doc).
#[derive(Clone, Debug)]
pub(crate) struct IdTable<K, V> {
    /// A power of two of slots (at least 16), or none.
    slots: Vec<Option<(K, V)>>,
    /// How many are used.
    used: usize,
}

impl<K, V> Default for IdTable<K, V> {
    fn default() -> Self {
        IdTable {
            slots: Vec::new(),
            used: 0,
        }
    }
}

impl<K: IdKey, V> IdTable<K, V> {
    /// The slot where a probe for `key` starts (`None` while the table has no slots).
    fn home(&self, key: &K) -> Option<usize> {
        let bits = self.slots.len().trailing_zeros();
        (!self.slots.is_empty()).then(|| (hash(key.bits()) >> (64 - bits)) as usize)
    }

    /// The slot holding `key`, or else the empty slot where it would go (`None` while the
    /// table has no slots). The table always has an empty slot, so the walk ends.
    fn slot_of(&self, key: &K) -> Option<usize> {
        let mask = self.slots.len().wrapping_sub(1);
        let mut at = self.home(key)?;
        while let Some((held, _)) = &self.slots[at] {
            if held == key {
                break;
            }
            at = (at + 1) & mask;
        }
        Some(at)
    }

    /// How many ids.
    pub fn len(&self) -> usize {
        self.used
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        let at = self.slot_of(key)?;
        self.slots[at].as_ref().map(|(_, value)| value)
    }

    /// The value of `key`, to change.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let at = self.slot_of(key)?;
        self.slots[at].as_mut().map(|(_, value)| value)
    }

    /// Whether `key` is in the table.
    pub fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// Sets the value of `key`, returning the one it replaces.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let at = self.slot_or_room(&key);
        match &mut self.slots[at] {
            Some((_, held)) => Some(std::mem::replace(held, value)),
            empty @ None => {
                *empty = Some((key, value));
                self.used += 1;
                None
            }
        }
    }

    /// The value of `key`, added as `make()` if it is new.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let at = self.slot_or_room(&key);
        match &mut self.slots[at] {
            Some((_, held)) => held,
            empty @ None => {
                self.used += 1;
                &mut empty.insert((key, make())).1
            }
        }
    }

    /// The slot holding `key`, or else the empty slot where it goes, with the table grown
    /// first if one more id would fill it past 5/8. One probe: the table grows only when
    /// it must, and then `key` is sought in the grown table (it moved every slot).
    fn slot_or_room(&mut self, key: &K) -> usize {
        if let Some(at) = self.slot_of(key)
            && (self.slots[at].is_some() || grown_size(self.used, 1, self.slots.len()).is_none())
        {
            return at;
        }
        self.reserve(1);
        // Grown: the table has slots and an empty one, so the walk finds one.
        self.slot_of(key).unwrap_or(0)
    }

    /// Makes room for `more` ids with the table at most 5/8 full, doubling as needed.
    pub fn reserve(&mut self, more: usize) {
        let Some(size) = grown_size(self.used, more, self.slots.len()) else {
            return;
        };
        let old = std::mem::take(&mut self.slots);
        self.slots.resize_with(size, || None);
        for (key, value) in old.into_iter().flatten() {
            let at = self.slot_of(&key).unwrap_or(0);
            self.slots[at] = Some((key, value));
        }
    }

    /// Starts bringing the slot where a lookup of `key` starts into the cache (see the
    /// module's doc). Changes nothing but timing.
    pub fn prefetch(&self, key: &K) {
        if let Some(home) = self.home(key) {
            crate::cache::prefetch(&self.slots[home]);
        }
    }

    /// The ids and their values, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.slots.iter().flatten().map(|(key, value)| (key, value))
    }

    /// The values, to change, in no particular order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.slots.iter_mut().flatten().map(|(_, value)| value)
    }

    /// The entries sorted by id: what a table serializes as.
    pub fn sorted(&self) -> Vec<(&K, &V)> {
        let mut entries: Vec<(&K, &V)> = self.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        entries
    }
}

impl<K: IdKey, V> FromIterator<(K, V)> for IdTable<K, V> {
    /// A table of `entries`; of an id given twice, the last value (as a map collects).
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        let entries = entries.into_iter();
        let mut table = IdTable::default();
        table.reserve(entries.size_hint().0);
        for (key, value) in entries {
            table.insert(key, value);
        }
        table
    }
}

/// Equal as maps: the same ids with the same values, wherever their slots lie.
impl<K: IdKey, V: PartialEq> PartialEq for IdTable<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.used == other.used
            && self
                .iter()
                .all(|(key, value)| other.get(key) == Some(value))
    }
}

impl<K: IdKey, V: Eq> Eq for IdTable<K, V> {}

/// Serialized as the entries sorted by id, as a map is by [`crate::intern::sorted`] (the
/// same bytes).
impl<K: IdKey + Serialize, V: Serialize> Serialize for IdTable<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.sorted().serialize(serializer)
    }
}

impl<'de, K: IdKey + DeserializeOwned, V: DeserializeOwned> Deserialize<'de> for IdTable<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries: Vec<(K, V)> = Vec::deserialize(deserializer)?;
        Ok(entries.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;

    fn order(bits: u128) -> OrderId {
        OrderId(Uuid::from_u128(bits))
    }

    proptest! {
        /// The table answers as a map given the same inserts and gets-or-inserts does,
        /// through its growth, for random ids and for ids that differ in a few bits only
        /// (they share slots' homes and probe past one another), and serializes as the
        /// map's sorted entries.
        #[test]
        fn a_table_answers_as_a_map(
            inserts in prop::collection::vec((0u128..400, any::<u16>(), any::<bool>()), 0..1200),
            spread in prop_oneof![Just(0u128), Just(1u128 << 80), any::<u128>()],
        ) {
            let key = |n: u128| order(n.wrapping_mul(spread | 1) ^ (spread & !0xffff));
            let mut table: IdTable<OrderId, u16> = IdTable::default();
            let mut reference = BTreeMap::new();
            for (n, value, keep) in &inserts {
                if *keep {
                    // Adds only a new id, and answers the value held.
                    let held = *reference.entry(key(*n)).or_insert(*value);
                    prop_assert_eq!(*table.get_or_insert_with(key(*n), || *value), held);
                } else {
                    prop_assert_eq!(table.insert(key(*n), *value), reference.insert(key(*n), *value));
                }
                prop_assert_eq!(table.len(), reference.len());
            }
            for n in 0u128..400 {
                prop_assert_eq!(table.get(&key(n)), reference.get(&key(n)));
                prop_assert_eq!(table.contains_key(&key(n)), reference.contains_key(&key(n)));
            }
            let sorted: Vec<(&OrderId, &u16)> = reference.iter().collect();
            prop_assert_eq!(table.sorted(), sorted);
            let bytes = rmp_serde::to_vec(&table).unwrap_or_default();
            let entries: Vec<(OrderId, u16)> = reference.iter().map(|(k, v)| (*k, *v)).collect();
            prop_assert_eq!(&bytes, &rmp_serde::to_vec(&entries).unwrap_or_default());
            let read: IdTable<OrderId, u16> = rmp_serde::from_slice(&bytes).unwrap_or_default();
            prop_assert_eq!(&read, &table);
        }
    }

    #[test]
    fn get_or_insert_adds_once_and_changes_in_place() {
        let mut table: IdTable<OrderId, u32> = IdTable::default();
        assert_eq!(table.get(&order(1)), None);
        let value = table.get_or_insert_with(order(1), || 7);
        *value += 1;
        let value = table.get_or_insert_with(order(1), || 100);
        assert_eq!(*value, 8);
        if let Some(value) = table.get_mut(&order(1)) {
            *value = 9;
        }
        assert_eq!(table.get(&order(1)), Some(&9));
        assert_eq!(table.len(), 1);
        table.prefetch(&order(2));
        assert_eq!(table.values_mut().count(), 1);
    }

    #[test]
    fn equal_tables_need_not_share_a_layout() {
        let a: IdTable<OrderId, u8> = (0..50).map(|n| (order(n), n as u8)).collect();
        let b: IdTable<OrderId, u8> = (0..50).rev().map(|n| (order(n), n as u8)).collect();
        assert_eq!(a, b);
        let c: IdTable<OrderId, u8> = (0..50).map(|n| (order(n), 0)).collect();
        assert_ne!(a, c);
    }
}
