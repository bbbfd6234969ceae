//! An in-memory backend: the reference for tests, with the same rules as the durable ones.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::codec::{self, ChainValue, GENESIS_CHAIN};
use crate::{
    AppendPlan, AppendResult, Direction, EventFilter, EventStore, ExpectedRevision, LogTail,
    NewEvent, PendingAppend, Position, ReadFrom, RecordedEvent, StoreError, StreamName,
    SubscribeFrom, Subscription, VerifyReport, catch_up, monotonic_recorded_at, plan_append,
    validate_batch,
};

/// An event store that keeps everything in memory. Positions are 0, 1, 2, … like the
/// embedded log's. Nothing survives the process.
pub struct MemoryStore {
    inner: Mutex<Inner>,
    head: watch::Sender<Option<Position>>,
}

#[derive(Default)]
struct Inner {
    events: Vec<RecordedEvent>,
    /// Chain value after each event, so that `verify` has something to check against.
    chains: Vec<ChainValue>,
    /// Indexes into `events`, by stream, in revision order.
    streams: HashMap<StreamName, Vec<usize>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            head: watch::channel(None).0,
        }
    }

    /// Appends, if the log ends with `after` when one is given.
    fn append_after(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
        after: Option<LogTail>,
    ) -> Result<AppendResult, StoreError> {
        validate_batch(&events)?;
        let mut inner = self.lock();
        if let Some(expected) = after {
            let actual = inner
                .events
                .last()
                .map_or(LogTail::Empty, |last| LogTail::Last {
                    position: last.position,
                    event_id: last.event_id,
                });
            if actual != expected {
                return Err(StoreError::TailMoved { expected, actual });
            }
        }
        let indexes = inner.streams.get(stream);
        let current = indexes
            .and_then(|ix| ix.len().checked_sub(1))
            .map(|r| r as u64);
        let plan = plan_append(stream, current, expected, &events, |revision| {
            let index = *indexes?.get(usize::try_from(revision).ok()?)?;
            Some(inner.events[index].event_id)
        })?;
        let count = events.len() as u64;
        let first_revision = match plan {
            AppendPlan::AlreadyAppended { first_revision } => {
                let indexes = inner.streams.get(stream).map(Vec::as_slice).unwrap_or(&[]);
                let positions = (first_revision..first_revision + count)
                    .map(|revision| inner.events[indexes[revision as usize]].position)
                    .collect();
                return Ok(AppendResult {
                    revision: first_revision + count - 1,
                    positions,
                });
            }
            AppendPlan::Append { first_revision } => first_revision,
        };
        let mut previous_at = inner.events.last().map(|event| event.recorded_at);
        let mut chain = inner.chains.last().copied().unwrap_or(GENESIS_CHAIN);
        let mut positions = Vec::with_capacity(events.len());
        let mut body = Vec::new();
        for (event, revision) in events.into_iter().zip(first_revision..) {
            let position = Position(inner.events.len() as u64);
            let recorded_at = monotonic_recorded_at(event.recorded_at, previous_at);
            previous_at = Some(recorded_at);
            let recorded =
                RecordedEvent::place(event, stream.clone(), revision, position, recorded_at);
            body.clear();
            codec::encode_body(&recorded, &mut body);
            chain = codec::chain_next(&chain, &body);
            let index = inner.events.len();
            inner.events.push(recorded);
            inner.chains.push(chain);
            inner.streams.entry(stream.clone()).or_default().push(index);
            positions.push(position);
        }
        let last = positions.last().copied();
        drop(inner);
        self.head.send_replace(last);
        Ok(AppendResult {
            revision: first_revision + count - 1,
            positions,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-updated (appends build
        // everything before pushing), so a poisoned lock is still consistent.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait::async_trait]
impl EventStore for MemoryStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.append_after(stream, expected, events, None)
    }

    fn pipelines_appends(&self) -> bool {
        true
    }

    async fn submit(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
        after: LogTail,
    ) -> Result<PendingAppend, StoreError> {
        // Appends are made at once, in call order: the append is durable (as durable as this
        // store gets) before the submission returns.
        let result = self.append_after(stream, expected, events, Some(after));
        Ok(Box::pin(std::future::ready(result)))
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: ReadFrom,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let inner = self.lock();
        let Some(indexes) = inner.streams.get(stream) else {
            return Ok(Vec::new());
        };
        Ok(select(indexes.len(), from, direction, limit)
            .map(|revision| inner.events[indexes[revision]].clone())
            .collect())
    }

    async fn read_all(
        &self,
        from: ReadFrom,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let inner = self.lock();
        Ok(select(inner.events.len(), from, direction, limit)
            .map(|index| inner.events[index].clone())
            .collect())
    }

    async fn stream_revision(&self, stream: &StreamName) -> Result<Option<u64>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .streams
            .get(stream)
            .and_then(|ix| ix.len().checked_sub(1))
            .map(|r| r as u64))
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        Ok(self.lock().events.last().map(|event| event.position))
    }

    fn subscribe_all(self: Arc<Self>, from: SubscribeFrom, filter: EventFilter) -> Subscription {
        let head = self.head.subscribe();
        catch_up(self, head, from, filter)
    }

    async fn verify(&self) -> Result<VerifyReport, StoreError> {
        let inner = self.lock();
        let mut chain = GENESIS_CHAIN;
        let mut body = Vec::new();
        for (index, (event, stored)) in inner.events.iter().zip(&inner.chains).enumerate() {
            body.clear();
            codec::encode_body(event, &mut body);
            chain = codec::chain_next(&chain, &body);
            if chain != *stored {
                return Ok(VerifyReport {
                    records_intact: index as u64,
                    last_position: index.checked_sub(1).map(|i| inner.events[i].position),
                    chain: index
                        .checked_sub(1)
                        .map_or(GENESIS_CHAIN, |i| inner.chains[i]),
                    damage: Some(crate::Damage {
                        position: Some(event.position.0),
                        file: None,
                        offset: None,
                        reason: "chain value does not match the record".into(),
                    }),
                });
            }
        }
        Ok(VerifyReport {
            records_intact: inner.events.len() as u64,
            last_position: inner.events.last().map(|event| event.position),
            chain,
            damage: None,
        })
    }
}

/// The indexes (0-based, dense) a read visits, given `len` items.
pub(crate) fn select(
    len: usize,
    from: ReadFrom,
    direction: Direction,
    limit: usize,
) -> Box<dyn Iterator<Item = usize>> {
    match direction {
        Direction::Forwards => {
            let start = match from {
                ReadFrom::Start => 0,
                ReadFrom::End => len,
                ReadFrom::At(at) => usize::try_from(at).unwrap_or(usize::MAX).min(len),
            };
            Box::new((start..len).take(limit))
        }
        Direction::Backwards => {
            let end = match from {
                ReadFrom::Start => len.min(1),
                ReadFrom::End => len,
                ReadFrom::At(at) => usize::try_from(at)
                    .unwrap_or(usize::MAX)
                    .saturating_add(1)
                    .min(len),
            };
            Box::new((0..end).rev().take(limit))
        }
    }
}
