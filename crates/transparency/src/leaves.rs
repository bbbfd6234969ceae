//! Which log position each leaf is: nothing to keep while positions are the leaf indexes
//! (the embedded log), one number a leaf after the first gap (KurrentDB).

/// Leaves `0..dense` are at positions `0..dense`; leaf `dense + i` is at `sparse[i]`.
#[derive(Debug, Default)]
pub struct LeafMap {
    dense: u64,
    sparse: Vec<u64>,
}

impl LeafMap {
    /// The map of `size` leaves at positions `0..size`.
    pub fn dense(size: u64) -> Self {
        Self {
            dense: size,
            sparse: Vec::new(),
        }
    }

    /// Places the next leaf at `position`; `false` (nothing placed) when `position` does not
    /// come after the last leaf's.
    pub fn push(&mut self, position: u64) -> bool {
        if self.sparse.is_empty() && position == self.dense {
            self.dense += 1;
            return true;
        }
        let last = self.sparse.last().copied().or(self.dense.checked_sub(1));
        if last.is_some_and(|last| position <= last) {
            return false;
        }
        self.sparse.push(position);
        true
    }

    /// The leaf index of the record at `position`.
    pub fn index_of(&self, position: u64) -> Option<u64> {
        if position < self.dense {
            return Some(position);
        }
        self.sparse
            .binary_search(&position)
            .ok()
            .map(|i| self.dense + i as u64)
    }

    /// The position of leaf `index`.
    pub fn position_of(&self, index: u64) -> Option<u64> {
        if index < self.dense {
            return Some(index);
        }
        let offset = usize::try_from(index - self.dense).ok()?;
        self.sparse.get(offset).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_positions_need_no_map_and_gaps_are_mapped_both_ways() {
        let mut map = LeafMap::default();
        for position in [0, 1, 2, 10, 15, 40] {
            assert!(map.push(position));
        }
        assert!(
            map.sparse.len() == 3,
            "only the leaves after the first gap are kept"
        );
        assert!(!map.push(40), "a position that does not move on is refused");
        for (index, position) in [0u64, 1, 2, 10, 15, 40].into_iter().enumerate() {
            assert_eq!(map.index_of(position), Some(index as u64));
            assert_eq!(map.position_of(index as u64), Some(position));
        }
        assert_eq!(map.index_of(11), None);
        assert_eq!(map.position_of(6), None);
    }

    #[test]
    fn a_log_with_gaps_from_its_start_is_all_sparse() {
        let mut map = LeafMap::default();
        assert!(map.push(5));
        assert!(map.push(9));
        assert_eq!(map.index_of(5), Some(0));
        assert_eq!(map.index_of(0), None);
        assert_eq!(map.position_of(1), Some(9));
    }
}
