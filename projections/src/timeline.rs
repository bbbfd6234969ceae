//! Facts as intervals of validity over the log, so that "as of" is a binary search.
//!
//! Every event applied gets a *sequence number* (`seq`): its index among the events applied,
//! 0, 1, 2, … in log order. A view of the read models "as of" some instant is the prefix of
//! the first `n` events (`seq < n`). A yes/no fact keeps the intervals of sequence numbers
//! during which it held: it starts to hold *with* the event at `start` (the event that made
//! it true, its evidence) and stops holding *with* the event at `end` (the event that made it
//! false). Answering at `n` is one `partition_point` over a vector that is almost always one
//! or two entries long, so an as-of query costs what a current one costs.
//!
//! Sequence numbers rather than global positions keep the intervals at 4 bytes a bound, and
//! let a backend's position gaps (KurrentDB) cost nothing.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// The end of an interval that has not ended.
pub(crate) const OPEN: u32 = u32::MAX;

/// No event: used for "never happened" in single-event slots.
pub(crate) const NONE: u32 = u32::MAX;

/// What a fact was at a view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fact {
    /// It held, made true by the event at this sequence number.
    Held(u32),
    /// It had held and was made false by the event at this sequence number.
    Ended(u32),
    /// It had never held.
    Never,
}

/// One interval of validity: `[start, end)` in sequence numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Span {
    /// The event that made the fact true.
    pub start: u32,
    /// The event that made it false, or [`OPEN`].
    pub end: u32,
}

impl Span {
    /// The fact as of the first `n` events, when this is its only interval.
    pub fn at(self, n: u32) -> Fact {
        if self.start >= n {
            Fact::Never
        } else if n <= self.end {
            Fact::Held(self.start)
        } else {
            Fact::Ended(self.end)
        }
    }
}

/// The intervals of validity of one yes/no fact, in log order and disjoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Spans(SmallVec<[Span; 1]>);

impl Spans {
    /// Whether the fact holds after every event applied so far.
    pub fn is_open(&self) -> bool {
        self.0.last().is_some_and(|span| span.end == OPEN)
    }

    /// The fact becomes true at `seq`; if it already holds, the earlier evidence is kept
    /// (the domain keeps the first start of a relationship or a delegated admin grant).
    pub fn start_keep(&mut self, seq: u32) -> bool {
        if self.is_open() {
            return false;
        }
        self.0.push(Span {
            start: seq,
            end: OPEN,
        });
        true
    }

    /// The fact becomes false at `seq` (nothing happens if it did not hold).
    pub fn end(&mut self, seq: u32) {
        if let Some(last) = self.0.last_mut()
            && last.end == OPEN
        {
            debug_assert!(last.start < seq, "an interval ends after it starts");
            last.end = seq;
        }
    }

    /// The index of the interval current at `n`, if any started before `n`.
    fn index_at(&self, n: u32) -> Option<usize> {
        self.0.partition_point(|span| span.start < n).checked_sub(1)
    }

    /// The fact as of the first `n` events.
    pub fn at(&self, n: u32) -> Fact {
        match self.index_at(n) {
            None => Fact::Never,
            Some(index) => self.0[index].at(n),
        }
    }

    /// The only interval, if there is at most one (`Some(None)`: none).
    pub fn single(&self) -> Option<Option<Span>> {
        match self.0.as_slice() {
            [] => Some(None),
            [span] => Some(Some(*span)),
            _ => None,
        }
    }

    /// Whether the fact held as of the first `n` events.
    pub fn holds_at(&self, n: u32) -> bool {
        matches!(self.at(n), Fact::Held(_))
    }

    /// The index of the interval that holds at `n`, for data kept beside the intervals.
    pub fn held_index(&self, n: u32) -> Option<usize> {
        let index = self.index_at(n)?;
        (n <= self.0[index].end).then_some(index)
    }
}

/// Events that each set a fact anew (the latest one is the evidence), as sequence numbers
/// in log order: authorizations, agreement signatures, deauthorizations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Marks(SmallVec<[u32; 2]>);

impl Marks {
    /// Records one more such event.
    pub fn push(&mut self, seq: u32) {
        debug_assert!(self.0.last().is_none_or(|last| *last < seq));
        self.0.push(seq);
    }

    /// The latest such event.
    pub fn last(&self) -> Option<u32> {
        self.0.last().copied()
    }

    /// The latest such event among the first `n`.
    pub fn last_before(&self, n: u32) -> Option<u32> {
        // Almost always zero or one entry: check the last one first.
        match self.0.last() {
            None => None,
            Some(last) if *last < n => Some(*last),
            Some(_) => {
                let count = self.0.partition_point(|seq| *seq < n);
                count.checked_sub(1).map(|index| self.0[index])
            }
        }
    }
}

/// A value that changes over the log: each version with the event that set it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Versions<T>(Vec<(u32, T)>);

impl<T> Default for Versions<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T: PartialEq> Versions<T> {
    /// Records a new version at `seq`.
    pub fn set(&mut self, seq: u32, value: T) {
        debug_assert!(self.0.last().is_none_or(|(last, _)| *last < seq));
        self.0.push((seq, value));
    }

    /// Records a new version at `seq` only if it differs from the current one.
    pub fn set_if_changed(&mut self, seq: u32, value: T) {
        if self.current().is_none_or(|current| *current != value) {
            self.set(seq, value);
        }
    }

    /// The latest version.
    pub fn current(&self) -> Option<&T> {
        self.0.last().map(|(_, value)| value)
    }

    /// The version current as of the first `n` events, with the event that set it.
    pub fn at(&self, n: u32) -> Option<(u32, &T)> {
        match self.0.last() {
            None => None,
            Some((seq, value)) if *seq < n => Some((*seq, value)),
            Some(_) => {
                let count = self.0.partition_point(|(seq, _)| *seq < n);
                count.checked_sub(1).map(|index| {
                    let (seq, value) = &self.0[index];
                    (*seq, value)
                })
            }
        }
    }
}

/// The events that concern one party or relationship (its history), as a list threaded
/// through one shared [`Mentions`] arena: recording a mention appends to one vector and
/// allocates nothing per party, and the list is walked backwards when asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct History {
    /// The arena index of the latest mention, or [`NONE`].
    last_link: u32,
    /// The sequence number of the latest mention, or [`NONE`] (kept here so that a second
    /// mention by the same event costs no look into the arena).
    last_seq: u32,
}

impl Default for History {
    fn default() -> Self {
        History {
            last_link: NONE,
            last_seq: NONE,
        }
    }
}

/// One mention: an event, and the mention before it in the same history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Link {
    seq: u32,
    previous: u32,
}

/// The arena of every [`History`]'s mentions, in the order they were recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Mentions(Vec<Link>);

/// Room kept below `u32::MAX` links: an event is refused (the read models are full) before
/// its mentions could run out of arena indexes.
pub(crate) const MENTIONS_PER_EVENT_MAX: usize = 1024;

impl Mentions {
    /// Makes room for `count` more mentions.
    pub fn reserve(&mut self, count: usize) {
        self.0.reserve(count);
    }

    /// Whether one more event's mentions still fit.
    pub fn has_room(&self) -> bool {
        self.0.len() + MENTIONS_PER_EVENT_MAX < NONE as usize
    }

    /// Adds `seq` to `history`, once (an event that concerns a party twice is listed once).
    pub fn mention(&mut self, history: &mut History, seq: u32) {
        if history.last_seq == seq {
            return;
        }
        debug_assert!(history.last_seq == NONE || history.last_seq < seq);
        let link = self.0.len() as u32;
        self.0.push(Link {
            seq,
            previous: history.last_link,
        });
        history.last_link = link;
        history.last_seq = seq;
    }

    /// The events of `history` among the first `n`, in log order.
    pub fn before(&self, history: &History, n: u32) -> Vec<u32> {
        let mut seqs = Vec::new();
        let mut link = history.last_link;
        while link != NONE {
            let Link { seq, previous } = self.0[link as usize];
            if seq < n {
                seqs.push(seq);
            }
            link = previous;
        }
        seqs.reverse();
        seqs
    }

    /// Whether a history read from a checkpoint points into this arena, and every link to
    /// an earlier one (so that a walk ends).
    pub fn well_formed(&self, history: &History) -> bool {
        history.last_link == NONE || (history.last_link as usize) < self.0.len()
    }

    /// Whether the arena's links read from a checkpoint only point backwards, to events
    /// among the first `events`.
    pub fn links_well_formed(&self, events: usize) -> bool {
        self.0.iter().enumerate().all(|(index, link)| {
            (link.seq as usize) < events
                && (link.previous == NONE || (link.previous as usize) < index)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_answer_at_every_prefix() {
        let mut spans = Spans::default();
        assert!(spans.start_keep(2));
        assert!(
            !spans.start_keep(3),
            "an open fact keeps its first evidence"
        );
        spans.end(5);
        spans.start_keep(7);
        let expected = [
            Fact::Never,
            Fact::Never,
            Fact::Never,
            Fact::Held(2),
            Fact::Held(2),
            Fact::Held(2),
            Fact::Ended(5),
            Fact::Ended(5),
            Fact::Held(7),
            Fact::Held(7),
        ];
        for (n, fact) in expected.iter().enumerate() {
            assert_eq!(spans.at(n as u32), *fact, "at {n}");
        }
    }

    #[test]
    fn marks_and_versions_take_the_latest_before() {
        let mut marks = Marks::default();
        marks.push(3);
        marks.push(8);
        assert_eq!(marks.last_before(3), None);
        assert_eq!(marks.last_before(4), Some(3));
        assert_eq!(marks.last_before(9), Some(8));
        let mut versions = Versions::default();
        versions.set(1, "a");
        versions.set_if_changed(4, "a");
        versions.set_if_changed(6, "b");
        assert_eq!(versions.at(1), None);
        assert_eq!(versions.at(5), Some((1, &"a")));
        assert_eq!(versions.at(7), Some((6, &"b")));
    }

    #[test]
    fn histories_share_one_arena_and_list_each_event_once() {
        let mut mentions = Mentions::default();
        let (mut a, mut b) = (History::default(), History::default());
        mentions.mention(&mut a, 1);
        mentions.mention(&mut b, 1);
        mentions.mention(&mut a, 1);
        mentions.mention(&mut a, 4);
        mentions.mention(&mut b, 6);
        assert_eq!(mentions.before(&a, 10), vec![1, 4]);
        assert_eq!(mentions.before(&a, 4), vec![1]);
        assert_eq!(mentions.before(&b, 10), vec![1, 6]);
        assert_eq!(mentions.before(&History::default(), 10), Vec::<u32>::new());
        assert!(mentions.links_well_formed(7));
        assert!(!mentions.links_well_formed(6));
    }
}
