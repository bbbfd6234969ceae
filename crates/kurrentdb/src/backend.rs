//! [`KurrentStore`]: the store interface on a KurrentDB cluster, through the official
//! `eventstore` client.
//!
//! Every append is sent with an exact expected revision (or "no stream"), because KurrentDB
//! only guarantees idempotent retries with one: an `Any` or `StreamExists` append first reads
//! the stream's revision, applies the ledger's own append rules ([`store::plan_append`],
//! which also recognise a retry of an append that already happened), and then appends at
//! exactly that revision. If another writer moved the stream in between, KurrentDB refuses
//! and the append is planned again, a bounded number of times.
//!
//! Cluster errors (not leader, unavailable, deadline exceeded) are retried with bounded
//! exponential backoff, then surfaced as [`StoreError::Unavailable`]. An append returns
//! success only after KurrentDB acknowledged it and the events were read back at the
//! revisions it reported.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventstore::{
    Client, ClientSettings, EventData, ReadAllOptions, ReadStreamOptions, StreamPosition,
    SubscribeToAllOptions, SubscriptionEvent, SubscriptionFilter,
};
use store::codec::{ChainValue, GENESIS_CHAIN};
use store::{
    AppendPlan, AppendResult, Damage, Direction, EventFilter, EventStore, ExpectedRevision,
    NewEvent, Position, ReadFrom, RecordedEvent, StoreError, StreamName, SubscribeFrom,
    Subscription, SubscriptionItem, VerifyReport, monotonic_recorded_at, plan_append,
    validate_batch,
};
use tokio::sync::{Mutex, mpsc, watch};

use crate::envelope::{self, EnvelopeMetadata};
use crate::lease::{self, LeaseRecord, LeaseRole, Takes};

/// Events read per request when paging through `$all` or a stream.
const READ_PAGE_EVENTS: usize = 512;
/// Items a subscription buffers ahead of its consumer; the reader waits beyond that.
const SUBSCRIPTION_BUFFER_ITEMS: usize = 256;
/// Events read per page when looking backwards for a stream's last event that counts.
const STREAM_PAGE_BACKWARDS: usize = 16;
/// How often an `Any`/`StreamExists` append is planned again after losing a race.
const APPEND_REPLANS_MAX: u32 = 8;

/// How cluster errors are retried.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts of one call, the first included.
    pub attempts_max: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub backoff_initial_ms: u64,
    /// Longest wait between attempts.
    pub backoff_max_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts_max: 6,
            backoff_initial_ms: 50,
            backoff_max_ms: 2_000,
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u64 << attempt.min(16);
        Duration::from_millis(
            self.backoff_initial_ms
                .saturating_mul(factor)
                .min(self.backoff_max_ms),
        )
    }
}

/// Settings of a [`KurrentStore`] beyond the connection string.
#[derive(Clone, Debug, Default)]
pub struct KurrentStoreConfig {
    /// Prefix put before every stream name in KurrentDB, so that several ledgers (or test
    /// runs) can share one database. Empty: stream names map one to one.
    pub namespace: String,
    /// Retries of cluster errors.
    pub retry: RetryPolicy,
    /// The writer lease ([`crate::lease`]): with one, this process appends only while it
    /// holds the lease and follows as a read replica otherwise. Without one it appends
    /// unfenced, which is right only when no other process ever writes the namespace.
    pub lease: Option<LeaseConfig>,
}

/// How this process takes part in the writer lease.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// This process's name in the lease (shown to replicas and operators); unique per process.
    pub holder: String,
    /// How long this process may go without a heartbeat before another may take over; it
    /// renews every quarter of it.
    pub ttl: Duration,
}

/// This process's part in the lease.
#[derive(Debug, Default)]
struct LeaseState {
    held: Option<Held>,
    /// The holder last seen in the lease stream (another process, or nobody).
    holder_seen: Option<String>,
    /// What a would-be taker watches: the lease and heartbeat streams' last revisions, and
    /// since when (on this process's clock) neither moved.
    watched: Option<((u64, Option<u64>), Instant)>,
}

/// The lease as held by this process.
#[derive(Clone, Copy, Debug)]
struct Held {
    epoch: u64,
    /// The revision of this process's take in the lease stream.
    take_revision: u64,
    /// The last instant at which this process may still append.
    valid_until: Instant,
}

/// The store interface on KurrentDB.
pub struct KurrentStore {
    client: Client,
    config: KurrentStoreConfig,
    /// Serializes this process's appends, so that reading the last chain value and appending
    /// after it is one step (see the crate docs on the hash chain).
    append_lock: Mutex<()>,
    /// The lease's takes seen so far (for [`Takes::is_void`]).
    takes: std::sync::Mutex<Takes>,
    lease: std::sync::Mutex<LeaseState>,
}

impl KurrentStore {
    /// Connects to KurrentDB from a connection string: `kurrentdb://`, `kurrentdb+discover://`,
    /// `esdb://` or `esdb+discover://`, with credentials (`user:password@`) and TLS settings
    /// (`?tls=false`, `?tlsVerifyCert=false`, …) as the `eventstore` client supports them.
    ///
    /// The connection is made lazily, on the first call; this must run inside a tokio
    /// runtime, whose tasks carry the connection.
    pub fn connect(
        connection_string: &str,
        config: KurrentStoreConfig,
    ) -> Result<Arc<Self>, StoreError> {
        let normalized = normalize_connection_string(connection_string);
        let settings: ClientSettings = normalized.parse().map_err(|error| {
            StoreError::Invalid(format!("bad KurrentDB connection string: {error}"))
        })?;
        let client = Client::new(settings).map_err(|error| {
            StoreError::Unavailable(format!("cannot create the KurrentDB client: {error}"))
        })?;
        Ok(Arc::new(Self {
            client,
            config,
            append_lock: Mutex::new(()),
            takes: std::sync::Mutex::new(Takes::default()),
            lease: std::sync::Mutex::new(LeaseState::default()),
        }))
    }

    fn stored_name(&self, stream: &StreamName) -> String {
        format!("{}{}", self.config.namespace, stream.as_str())
    }

    /// Runs `call` with the retry policy: cluster errors are retried with backoff, anything
    /// else is returned at once.
    async fn retrying<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, eventstore::Error>>,
    {
        let policy = &self.config.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match call().await {
                Ok(value) => return Ok(value),
                Err(error) if is_transient(&error) && attempt < policy.attempts_max => {
                    tracing::warn!(%error, attempt, "KurrentDB {what} failed, retrying");
                    tokio::time::sleep(policy.backoff(attempt - 1)).await;
                }
                Err(error) => return Err(store_error(what, error)),
            }
        }
    }

    /// Reads up to `limit` ledger events of a stream (by its stored name), void ones left out
    /// (so fewer may come back).
    async fn read_stream_raw(
        &self,
        stored: &str,
        from: StreamPosition<u64>,
        backwards: bool,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let read = self.read_stream_kdb(stored, from, backwards, limit).await?;
        self.refresh_takes().await?;
        let mut out = Vec::with_capacity(read.len());
        for resolved in read {
            if let Some(event) = self.visible(resolved)? {
                out.push(event);
            }
        }
        Ok(out)
    }

    /// Reads up to `limit` events of a stream as KurrentDB has them.
    async fn read_stream_kdb(
        &self,
        stored: &str,
        from: StreamPosition<u64>,
        backwards: bool,
        limit: usize,
    ) -> Result<Vec<eventstore::ResolvedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut options = ReadStreamOptions::default().position(from).max_count(limit);
        options = if backwards {
            options.backwards()
        } else {
            options.forwards()
        };
        self.retrying("stream read", || async {
            let mut read = match self.client.read_stream(stored, &options).await {
                Ok(read) => read,
                Err(eventstore::Error::ResourceNotFound) => return Ok(Vec::new()),
                Err(error) => return Err(error),
            };
            let mut events = Vec::new();
            loop {
                match read.next().await {
                    Ok(Some(resolved)) => events.push(resolved),
                    Ok(None) => return Ok(events),
                    Err(eventstore::Error::ResourceNotFound) => return Ok(Vec::new()),
                    Err(error) => return Err(error),
                }
            }
        })
        .await
    }

    /// One page of `$all`, undecoded.
    async fn read_all_page(
        &self,
        from: StreamPosition<eventstore::Position>,
        backwards: bool,
        count: usize,
    ) -> Result<Vec<eventstore::ResolvedEvent>, StoreError> {
        let mut options = ReadAllOptions::default().position(from).max_count(count);
        options = if backwards {
            options.backwards()
        } else {
            options.forwards()
        };
        self.retrying("$all read", || async {
            let mut read = self.client.read_all(&options).await?;
            let mut events = Vec::new();
            while let Some(resolved) = read.next().await? {
                events.push(resolved);
            }
            Ok(events)
        })
        .await
    }

    /// Reads ledger events of `$all` (skipping system events and other namespaces) from a
    /// KurrentDB position: forwards from it (inclusive), or backwards from before it.
    async fn scan_all(
        &self,
        from: StreamPosition<eventstore::Position>,
        backwards: bool,
        limit: usize,
        mut keep: impl FnMut(&RecordedEvent) -> bool,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut out = Vec::new();
        let mut from = from;
        // Forward pages restart at the last position seen (inclusive), so its event is skipped
        // by position; backward pages restart before it (exclusive) by KurrentDB's rules.
        let mut last_seen: Option<u64> = None;
        while out.len() < limit {
            let page = self
                .read_all_page(from, backwards, READ_PAGE_EVENTS)
                .await?;
            let page_len = page.len();
            let mut advanced = false;
            // Every take before an event of the page is in the lease stream by now.
            self.refresh_takes().await?;
            for resolved in page {
                let Some(recorded) = resolved.event.as_ref() else {
                    continue;
                };
                let position = recorded.position.commit;
                if let Some(last) = last_seen
                    && ((!backwards && position <= last) || (backwards && position >= last))
                {
                    continue;
                }
                last_seen = Some(position);
                advanced = true;
                if let Some(event) = self.visible(resolved)?
                    && keep(&event)
                {
                    out.push(event);
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
            }
            if page_len < READ_PAGE_EVENTS || !advanced {
                break;
            }
            let Some(last) = last_seen else { break };
            from = StreamPosition::Position(kurrent_position(last));
        }
        Ok(out)
    }

    /// The last ledger event of the log, if any.
    async fn last_event(&self) -> Result<Option<RecordedEvent>, StoreError> {
        Ok(self
            .scan_all(StreamPosition::End, true, 1, |_| true)
            .await?
            .pop())
    }

    /// Turns a KurrentDB event into a ledger event, `None` for what is not the ledger's to see
    /// (system streams, other namespaces, the lease's streams) and for void events (see
    /// [`crate::lease`]). The takes before it must be known ([`Self::refresh_takes`] or
    /// [`Self::note_take`]).
    fn visible(
        &self,
        resolved: eventstore::ResolvedEvent,
    ) -> Result<Option<RecordedEvent>, StoreError> {
        let Some((event, epoch)) = self.decode(resolved)? else {
            return Ok(None);
        };
        if self.takes().is_void(epoch, event.position.0) {
            tracing::warn!(
                position = event.position.0,
                stream = %event.stream,
                epoch,
                "void event passed over: appended under writer-lease epoch {epoch} after a newer writer took the lease"
            );
            return Ok(None);
        }
        Ok(Some(event))
    }

    /// A KurrentDB event as a ledger event with the lease epoch it was written under; `None`
    /// for what is not the ledger's to see.
    fn decode(
        &self,
        resolved: eventstore::ResolvedEvent,
    ) -> Result<Option<(RecordedEvent, u64)>, StoreError> {
        let Some(recorded) = resolved.event else {
            return Ok(None);
        };
        let Some(name) = recorded.stream_id.strip_prefix(&self.config.namespace) else {
            return Ok(None);
        };
        if recorded.stream_id.starts_with('$')
            || recorded.event_type.starts_with('$')
            || lease::is_lease_stream(name)
        {
            return Ok(None);
        }
        let position = recorded.position.commit;
        let damage = |reason: String| {
            StoreError::Corrupt(Damage {
                position: Some(position),
                file: None,
                offset: None,
                reason,
            })
        };
        if recorded.position.commit != recorded.position.prepare {
            return Err(damage(format!(
                "event {} has commit position {} and prepare position {}: written by an explicit transaction, which one ledger position cannot address",
                recorded.id, recorded.position.commit, recorded.position.prepare
            )));
        }
        let stream = StreamName::new(name)
            .map_err(|error| damage(format!("stream {:?}: {error}", recorded.stream_id)))?;
        let metadata = match EnvelopeMetadata::from_bytes(&recorded.custom_metadata) {
            Ok(metadata) => metadata,
            Err(error) => {
                // Another program's event among the ledger's streams: at its position, but
                // none of the ledger's records; readers pass over it as a fault.
                tracing::warn!(
                    position,
                    stream = %recorded.stream_id,
                    event_type = %recorded.event_type,
                    %error,
                    "an event without csp-ledger's envelope among the ledger's streams"
                );
                return Ok(Some((unenveloped(recorded, stream), 0)));
            }
        };
        let epoch = metadata.lease_epoch.unwrap_or(0);
        Ok(Some((
            RecordedEvent {
                event_id: recorded.id,
                stream,
                revision: recorded.revision,
                position: Position(position),
                event_type: recorded.event_type,
                schema_version: metadata.schema_version,
                recorded_at: metadata.recorded_at,
                actor: metadata.actor,
                command_id: metadata.command_id,
                correlation_id: metadata.correlation_id,
                causation_id: metadata.causation_id,
                payload: recorded.data.to_vec(),
            },
            epoch,
        )))
    }

    fn takes(&self) -> std::sync::MutexGuard<'_, Takes> {
        // Updates are single calls on a plain vector; a poisoned lock still holds one.
        self.takes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lease_state(&self) -> std::sync::MutexGuard<'_, LeaseState> {
        self.lease
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lease_stream(&self) -> String {
        format!("{}{}", self.config.namespace, lease::LEASE_STREAM)
    }

    fn heartbeat_stream(&self) -> String {
        format!("{}{}", self.config.namespace, lease::HEARTBEAT_STREAM)
    }

    /// Notes a take seen inline in `$all` (a subscription, a forward scan).
    fn note_take(&self, resolved: &eventstore::ResolvedEvent) {
        if let Some(recorded) = resolved.event.as_ref()
            && recorded.stream_id == self.lease_stream()
            && recorded.event_type == lease::TAKEN
            && let Ok(record) = LeaseRecord::from_bytes(&recorded.data)
        {
            let mut takes = self.takes();
            takes.add(recorded.position.commit, record.epoch);
            takes.read_to(recorded.revision);
        }
    }

    /// Reads the lease stream's takes not seen yet.
    async fn refresh_takes(&self) -> Result<(), StoreError> {
        let stream = self.lease_stream();
        loop {
            let next = self.takes().next_revision();
            let page = self
                .read_stream_kdb(
                    &stream,
                    StreamPosition::Position(next),
                    false,
                    READ_PAGE_EVENTS,
                )
                .await?;
            let page_len = page.len();
            for resolved in &page {
                if let Some(recorded) = resolved.event.as_ref() {
                    if recorded.event_type == lease::TAKEN {
                        let record = lease_record(recorded)?;
                        self.takes().add(recorded.position.commit, record.epoch);
                    }
                    self.takes().read_to(recorded.revision);
                }
            }
            if page_len < READ_PAGE_EVENTS {
                return Ok(());
            }
        }
    }

    /// The chain value stored in an event's metadata (read again, since [`RecordedEvent`]
    /// does not carry it).
    async fn stored_chain(&self, event: &RecordedEvent) -> Result<ChainValue, StoreError> {
        let stored = self.stored_name(&event.stream);
        let options = ReadStreamOptions::default()
            .position(StreamPosition::Position(event.revision))
            .max_count(1);
        let custom = self
            .retrying("stream read", || async {
                let mut read = self.client.read_stream(stored.as_str(), &options).await?;
                Ok(read
                    .next()
                    .await?
                    .and_then(|resolved| resolved.event)
                    .map(|recorded| recorded.custom_metadata))
            })
            .await?;
        chain_of(event.position, custom.as_deref())
    }

    /// Reads back the events an append placed at `first..first + count`, checking their ids.
    async fn read_back(
        &self,
        stream: &StreamName,
        first: u64,
        events: &[NewEvent],
    ) -> Result<AppendResult, StoreError> {
        let stored = self.stored_name(stream);
        let mut placed = Vec::with_capacity(events.len());
        for resolved in self
            .read_stream_kdb(
                &stored,
                StreamPosition::Position(first),
                false,
                events.len(),
            )
            .await?
        {
            if let Some((event, _)) = self.decode(resolved)? {
                placed.push(event);
            }
        }
        let ids_match = placed.len() == events.len()
            && placed
                .iter()
                .zip(events)
                .all(|(placed, event)| placed.event_id == event.event_id);
        if !ids_match {
            return Err(StoreError::Unavailable(format!(
                "KurrentDB acknowledged an append to {stream} at revision {first} but reading it back found other events; is another process writing the same streams?"
            )));
        }
        Ok(AppendResult {
            revision: first + events.len() as u64 - 1,
            positions: placed.iter().map(|event| event.position).collect(),
        })
    }

    /// The ids of the stream's events at `first..first + count` (fewer if the stream is
    /// shorter).
    async fn ids_at(
        &self,
        stream: &StreamName,
        first: u64,
        count: usize,
    ) -> Result<Vec<uuid::Uuid>, StoreError> {
        Ok(self
            .read_stream_raw(
                &self.stored_name(stream),
                StreamPosition::Position(first),
                false,
                count,
            )
            .await?
            .into_iter()
            .map(|event| event.event_id)
            .collect())
    }

    /// One attempt at planning and sending an append. `Ok(None)`: lost a race on an
    /// `Any`/`StreamExists` append; plan again.
    async fn try_append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: &[NewEvent],
        epoch: Option<u64>,
    ) -> Result<Option<AppendResult>, StoreError> {
        // The ledger plans on the stream's last event that counts; KurrentDB wants the
        // revision of its last event, void ones included (they differ only after a stale
        // writer's append, see `crate::lease`).
        let current = self.stream_revision(stream).await?;
        let stored_current = self
            .read_stream_kdb(&self.stored_name(stream), StreamPosition::End, true, 1)
            .await?
            .first()
            .and_then(|resolved| resolved.event.as_ref())
            .map(|recorded| recorded.revision);
        let count = events.len() as u64;
        let next = current.map_or(0, |revision| revision + 1);
        // Where a retry of this very append would have put its events.
        let candidate = match expected {
            ExpectedRevision::Exact(revision) => Some(revision + 1),
            ExpectedRevision::NoStream => Some(0),
            ExpectedRevision::Any | ExpectedRevision::StreamExists => next.checked_sub(count),
        };
        let stored_ids = match candidate {
            Some(first) if first < next => self.ids_at(stream, first, events.len()).await?,
            _ => Vec::new(),
        };
        let plan = plan_append(stream, current, expected, events, |revision| {
            let first = candidate?;
            let index = usize::try_from(revision.checked_sub(first)?).ok()?;
            stored_ids.get(index).copied()
        })?;
        let first_revision = match plan {
            AppendPlan::AlreadyAppended { first_revision } => {
                return self
                    .read_back(stream, first_revision, events)
                    .await
                    .map(Some);
            }
            AppendPlan::Append { .. } => stored_current.map_or(0, |revision| revision + 1),
        };

        // Chain and recorded-at continue from the ledger's last event of the whole log
        // (another program's event among its streams carries no chain).
        let last = self
            .scan_all(StreamPosition::End, true, 1, is_enveloped)
            .await?
            .pop();
        let mut chain = match &last {
            Some(event) => self.stored_chain(event).await?,
            None => GENESIS_CHAIN,
        };
        let mut previous_at = last.map(|event| event.recorded_at);
        let mut data = Vec::with_capacity(events.len());
        for (event, revision) in events.iter().zip(first_revision..) {
            let recorded_at = monotonic_recorded_at(event.recorded_at, previous_at);
            previous_at = Some(recorded_at);
            let recorded = RecordedEvent::place(
                event.clone(),
                stream.clone(),
                revision,
                Position(0),
                recorded_at,
            );
            chain = envelope::chain_after(&chain, &recorded);
            let mut metadata = EnvelopeMetadata::of(&recorded, Some(&chain));
            metadata.lease_epoch = epoch;
            data.push(
                EventData::binary(&event.event_type, event.payload.clone().into())
                    .id(event.event_id)
                    .metadata(metadata.to_bytes().into()),
            );
        }
        let exact = match stored_current {
            Some(revision) => eventstore::ExpectedRevision::Exact(revision),
            None => eventstore::ExpectedRevision::NoStream,
        };
        let options = eventstore::AppendToStreamOptions::default().expected_revision(exact);
        let stored = self.stored_name(stream);
        // Retrying the same events at the same exact revision is idempotent in KurrentDB, so
        // a retry after a lost acknowledgement never appends twice.
        let outcome = self
            .retrying("append", || {
                let data = data.clone();
                let stored = stored.as_str();
                let options = &options;
                async move {
                    match self.client.append_to_stream(stored, options, data).await {
                        Ok(_) => Ok(Ok(true)),
                        Err(eventstore::Error::WrongExpectedVersion { .. }) => Ok(Ok(false)),
                        // A server that fences appends by the lease refused a stale writer.
                        Err(eventstore::Error::Grpc {
                            code: tonic::Code::FailedPrecondition,
                            message,
                        }) if message.contains(lease::FENCE_REFUSAL) => Ok(Err(message)),
                        Err(error) => Err(error),
                    }
                }
            })
            .await?;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(refusal) => {
                self.lose_lease();
                return Err(StoreError::NotWriter(format!(
                    "this process lost the writer lease; nothing was appended ({refusal})"
                )));
            }
        };
        if !outcome {
            return match expected {
                ExpectedRevision::Exact(_) | ExpectedRevision::NoStream => {
                    Err(StoreError::WrongExpectedRevision {
                        stream: stream.clone(),
                        expected,
                        actual: self.stream_revision(stream).await?,
                    })
                }
                ExpectedRevision::Any | ExpectedRevision::StreamExists => Ok(None),
            };
        }
        let result = self.read_back(stream, first_revision, events).await?;
        // The fence: appended after a newer take, the events are void for every reader.
        if let (Some(epoch), Some(first)) = (epoch, result.positions.first()) {
            self.refresh_takes().await?;
            if self.takes().is_void(epoch, first.0) {
                self.lose_lease();
                return Err(StoreError::NotWriter(format!(
                    "this process lost the writer lease (epoch {epoch}) before its append to {stream} landed: the append is void and counts as not made"
                )));
            }
        }
        Ok(Some(result))
    }
}

#[async_trait::async_trait]
impl EventStore for KurrentStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        validate_batch(&events)?;
        let _writer = self.append_lock.lock().await;
        let epoch = self.writer_epoch()?;
        for _ in 0..APPEND_REPLANS_MAX {
            if let Some(result) = self.try_append(stream, expected, &events, epoch).await? {
                return Ok(result);
            }
        }
        Err(StoreError::Unavailable(format!(
            "append to {stream} lost the race to other writers {APPEND_REPLANS_MAX} times"
        )))
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: ReadFrom,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let stored = self.stored_name(stream);
        let backwards = direction == Direction::Backwards;
        let from = match (from, direction) {
            (ReadFrom::End, Direction::Forwards) => return Ok(Vec::new()),
            (ReadFrom::Start, _) => StreamPosition::Position(0),
            (ReadFrom::End, Direction::Backwards) => StreamPosition::End,
            (ReadFrom::At(revision), _) => StreamPosition::Position(revision),
        };
        self.read_stream_raw(&stored, from, backwards, limit).await
    }

    async fn read_all(
        &self,
        from: ReadFrom,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        match (from, direction) {
            (ReadFrom::End, Direction::Forwards) => Ok(Vec::new()),
            (ReadFrom::Start, Direction::Forwards) => {
                self.scan_all(StreamPosition::Start, false, limit, |_| true)
                    .await
            }
            (ReadFrom::At(at), Direction::Forwards) => {
                self.scan_all(
                    StreamPosition::Position(kurrent_position(at)),
                    false,
                    limit,
                    |event| event.position.0 >= at,
                )
                .await
            }
            (ReadFrom::Start, Direction::Backwards) => {
                self.scan_all(StreamPosition::Start, false, 1, |_| true)
                    .await
            }
            (ReadFrom::End, Direction::Backwards) => {
                self.scan_all(StreamPosition::End, true, limit, |_| true)
                    .await
            }
            (ReadFrom::At(at), Direction::Backwards) => {
                // KurrentDB reads backwards from *before* a position; the ledger's read is
                // inclusive, so the event at `at` (if one is there) is fetched first.
                let mut out = self
                    .scan_all(
                        StreamPosition::Position(kurrent_position(at)),
                        false,
                        1,
                        |_| true,
                    )
                    .await?;
                out.retain(|event| event.position.0 == at);
                let rest = self
                    .scan_all(
                        StreamPosition::Position(kurrent_position(at)),
                        true,
                        limit - out.len(),
                        |event| event.position.0 < at,
                    )
                    .await?;
                out.extend(rest);
                Ok(out)
            }
        }
    }

    async fn stream_revision(&self, stream: &StreamName) -> Result<Option<u64>, StoreError> {
        // The last event that counts: void ones at the end are passed over.
        let stored = self.stored_name(stream);
        let mut from = StreamPosition::End;
        loop {
            let page = self
                .read_stream_kdb(&stored, from, true, STREAM_PAGE_BACKWARDS)
                .await?;
            let page_len = page.len();
            let lowest = page
                .last()
                .and_then(|resolved| resolved.event.as_ref())
                .map(|recorded| recorded.revision);
            self.refresh_takes().await?;
            for resolved in page {
                if let Some(event) = self.visible(resolved)? {
                    return Ok(Some(event.revision));
                }
            }
            match lowest {
                Some(lowest) if page_len == STREAM_PAGE_BACKWARDS && lowest > 0 => {
                    from = StreamPosition::Position(lowest - 1);
                }
                _ => return Ok(None),
            }
        }
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        Ok(self.last_event().await?.map(|event| event.position))
    }

    fn subscribe_all(self: Arc<Self>, from: SubscribeFrom, filter: EventFilter) -> Subscription {
        let (sender, receiver) = mpsc::channel(SUBSCRIPTION_BUFFER_ITEMS);
        tokio::spawn(async move {
            if let Err(error) = self.follow(from, filter, &sender).await {
                // The consumer may be gone already; then nobody needs the error.
                let _ = sender.send(Err(error)).await;
            }
        });
        Subscription::from_stream(tokio_stream::wrappers::ReceiverStream::new(receiver))
    }

    async fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut chain = GENESIS_CHAIN;
        let mut records_intact = 0;
        let mut last_position: Option<Position> = None;
        let mut from = StreamPosition::Start;
        let mut last_seen: Option<u64> = None;
        loop {
            let page = self.read_all_page(from, false, READ_PAGE_EVENTS).await?;
            let page_len = page.len();
            for resolved in page {
                let Some(recorded) = resolved.event.as_ref() else {
                    continue;
                };
                let position = recorded.position.commit;
                if last_seen.is_some_and(|last| position <= last) {
                    continue;
                }
                last_seen = Some(position);
                let custom = recorded.custom_metadata.clone();
                self.note_take(&resolved);
                let event = match self.decode(resolved) {
                    // Another program's event is not in the chain (the readers report it).
                    Ok(Some((event, _))) if !is_enveloped(&event) => continue,
                    Ok(Some((event, epoch))) if !self.takes().is_void(epoch, position) => event,
                    Ok(Some(_)) => continue,
                    Ok(None) => continue,
                    Err(StoreError::Corrupt(damage)) => {
                        return Ok(report(records_intact, last_position, chain, Some(damage)));
                    }
                    Err(error) => return Err(error),
                };
                let next = envelope::chain_after(&chain, &event);
                let stored = chain_of(event.position, Some(&custom));
                if stored.as_ref().ok() != Some(&next) {
                    let reason = match stored {
                        Err(StoreError::Corrupt(damage)) => damage.reason,
                        _ => "chain value does not match the record: an event was altered, removed or reordered before it".into(),
                    };
                    let damage = Damage {
                        position: Some(event.position.0),
                        file: None,
                        offset: None,
                        reason,
                    };
                    return Ok(report(records_intact, last_position, chain, Some(damage)));
                }
                chain = next;
                records_intact += 1;
                last_position = Some(event.position);
            }
            if page_len < READ_PAGE_EVENTS {
                return Ok(report(records_intact, last_position, chain, None));
            }
            let Some(last) = last_seen else {
                return Ok(report(records_intact, last_position, chain, None));
            };
            from = StreamPosition::Position(kurrent_position(last));
        }
    }
}

impl KurrentStore {
    /// What this process is for the writer lease; `Writer { epoch: 0 }` without one.
    pub fn lease_role(&self) -> LeaseRole {
        if self.config.lease.is_none() {
            return LeaseRole::Writer { epoch: 0 };
        }
        let state = self.lease_state();
        match state.held {
            Some(held) if Instant::now() < held.valid_until => {
                LeaseRole::Writer { epoch: held.epoch }
            }
            _ => LeaseRole::Replica {
                holder: state.holder_seen.clone(),
            },
        }
    }

    /// The epoch to append under, or why this process may not append.
    fn writer_epoch(&self) -> Result<Option<u64>, StoreError> {
        match self.lease_role() {
            LeaseRole::Writer { epoch: 0 } => Ok(None),
            LeaseRole::Writer { epoch } => Ok(Some(epoch)),
            LeaseRole::Replica { holder } => Err(StoreError::NotWriter(match holder {
                Some(holder) => format!(
                    "this ledger process is a read replica: the writer lease is held by {holder}; send commands to it"
                ),
                None => "this ledger process is a read replica: it does not hold the writer lease"
                    .into(),
            })),
        }
    }

    fn lose_lease(&self) {
        let mut state = self.lease_state();
        if let Some(held) = state.held.take() {
            tracing::warn!(
                epoch = held.epoch,
                "lost the writer lease; following as a read replica"
            );
        }
    }

    /// The last event of a lease stream: its revision, type and record.
    async fn last_lease_event(
        &self,
        stream: &str,
    ) -> Result<Option<(u64, String, LeaseRecord)>, StoreError> {
        let last = self
            .read_stream_kdb(stream, StreamPosition::End, true, 1)
            .await?;
        let Some(recorded) = last.into_iter().next().and_then(|resolved| resolved.event) else {
            return Ok(None);
        };
        let record = lease_record(&recorded)?;
        Ok(Some((recorded.revision, recorded.event_type, record)))
    }

    /// Appends one lease event; `Ok(None)` when `expected` no longer holds (another process
    /// moved the stream first), else its revision and position.
    async fn append_lease_event(
        &self,
        stream: &str,
        event_type: &str,
        record: &LeaseRecord,
        expected: eventstore::ExpectedRevision,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let id = uuid::Uuid::now_v7();
        let metadata = EnvelopeMetadata {
            correlation_id: id,
            causation_id: id,
            schema_version: 1,
            actor: lease::LEASE_ACTOR.into(),
            command_id: id,
            recorded_at: chrono::Utc::now(),
            chain: None,
            record_sha256: None,
            lease_epoch: None,
        };
        let data = EventData::binary(event_type, record.to_bytes().into())
            .id(id)
            .metadata(metadata.to_bytes().into());
        let options = eventstore::AppendToStreamOptions::default().expected_revision(expected);
        let written = self
            .retrying("writer-lease append", || {
                let data = data.clone();
                let options = &options;
                async move {
                    match self.client.append_to_stream(stream, options, data).await {
                        Ok(written) => Ok(Some(written)),
                        Err(eventstore::Error::WrongExpectedVersion { .. }) => Ok(None),
                        Err(error) => Err(error),
                    }
                }
            })
            .await?;
        Ok(written.map(|written| (written.next_expected_version, written.position.commit)))
    }

    /// One step of the lease for a process that does not hold it: takes it if it is free,
    /// released, this process's own from before, or its holder went silent for its TTL;
    /// otherwise notes what it watches. Returns the role after the step.
    pub async fn try_take_lease(&self) -> Result<LeaseRole, StoreError> {
        let Some(config) = self.config.lease.clone() else {
            return Ok(self.lease_role());
        };
        if let role @ LeaseRole::Writer { .. } = self.lease_role() {
            return Ok(role);
        }
        let lease_stream = self.lease_stream();
        let last = self.last_lease_event(&lease_stream).await?;
        let (expected, epoch) = match &last {
            None => (eventstore::ExpectedRevision::NoStream, 1),
            Some((revision, event_type, record))
                if event_type == lease::RELEASED || record.holder == config.holder =>
            {
                (
                    eventstore::ExpectedRevision::Exact(*revision),
                    record.epoch + 1,
                )
            }
            Some((revision, _, record)) => {
                let heartbeat = self
                    .read_stream_kdb(&self.heartbeat_stream(), StreamPosition::End, true, 1)
                    .await?
                    .first()
                    .and_then(|resolved| resolved.event.as_ref())
                    .map(|recorded| recorded.revision);
                let seen = (*revision, heartbeat);
                let silent_since = {
                    let mut state = self.lease_state();
                    state.holder_seen = Some(record.holder.clone());
                    match state.watched {
                        Some((watched, since)) if watched == seen => since,
                        _ => {
                            state.watched = Some((seen, Instant::now()));
                            return Ok(self.lease_role_of(&state));
                        }
                    }
                };
                if silent_since.elapsed() < Duration::from_millis(record.ttl_ms) {
                    return Ok(self.lease_role());
                }
                tracing::warn!(
                    holder = %record.holder,
                    epoch = record.epoch,
                    "the writer lease's holder sent no heartbeat for its TTL; taking the lease over"
                );
                (
                    eventstore::ExpectedRevision::Exact(*revision),
                    record.epoch + 1,
                )
            }
        };
        let started = Instant::now();
        let record = LeaseRecord {
            epoch,
            holder: config.holder.clone(),
            ttl_ms: u64::try_from(config.ttl.as_millis()).unwrap_or(u64::MAX),
        };
        let Some((take_revision, _)) = self
            .append_lease_event(&lease_stream, lease::TAKEN, &record, expected)
            .await?
        else {
            // Another process took it first.
            return Ok(self.lease_role());
        };
        self.refresh_takes().await?;
        let mut state = self.lease_state();
        state.held = Some(Held {
            epoch,
            take_revision,
            valid_until: started + config.ttl,
        });
        state.holder_seen = Some(config.holder.clone());
        state.watched = None;
        tracing::info!(epoch, holder = %config.holder, "took the writer lease");
        Ok(self.lease_role_of(&state))
    }

    fn lease_role_of(&self, state: &LeaseState) -> LeaseRole {
        match state.held {
            Some(held) if Instant::now() < held.valid_until => {
                LeaseRole::Writer { epoch: held.epoch }
            }
            _ => LeaseRole::Replica {
                holder: state.holder_seen.clone(),
            },
        }
    }

    /// Renews the lease this process holds: a heartbeat, after checking that nobody took it
    /// meanwhile. Returns the role after the step.
    pub async fn renew_lease(&self) -> Result<LeaseRole, StoreError> {
        let Some(config) = self.config.lease.clone() else {
            return Ok(self.lease_role());
        };
        let Some(held) = self.lease_state().held else {
            return Ok(self.lease_role());
        };
        let started = Instant::now();
        let lease_stream = self.lease_stream();
        let still_ours = |last: &Option<(u64, String, LeaseRecord)>| matches!(last, Some((revision, _, _)) if *revision == held.take_revision);
        let last = self.last_lease_event(&lease_stream).await?;
        if !still_ours(&last) {
            self.lose_lease();
            self.lease_state().holder_seen = last.map(|(_, _, record)| record.holder);
            return Ok(self.lease_role());
        }
        let record = LeaseRecord {
            epoch: held.epoch,
            holder: config.holder.clone(),
            ttl_ms: u64::try_from(config.ttl.as_millis()).unwrap_or(u64::MAX),
        };
        self.append_lease_event(
            &self.heartbeat_stream(),
            lease::RENEWED,
            &record,
            eventstore::ExpectedRevision::Any,
        )
        .await?;
        // A take that came between the check and the heartbeat is seen here.
        let last = self.last_lease_event(&lease_stream).await?;
        if !still_ours(&last) {
            self.lose_lease();
            return Ok(self.lease_role());
        }
        if let Some(held) = self.lease_state().held.as_mut()
            && held.epoch == record.epoch
        {
            held.valid_until = started + config.ttl;
        }
        Ok(self.lease_role())
    }

    /// Gives the lease up (at a clean stop), so that the next process takes it at once.
    pub async fn release_lease(&self) -> Result<(), StoreError> {
        let Some(config) = self.config.lease.clone() else {
            return Ok(());
        };
        // No append may start after this; one in progress finishes first.
        let _writer = self.append_lock.lock().await;
        let Some(held) = self.lease_state().held.take() else {
            return Ok(());
        };
        let record = LeaseRecord {
            epoch: held.epoch,
            holder: config.holder,
            ttl_ms: u64::try_from(config.ttl.as_millis()).unwrap_or(u64::MAX),
        };
        self.append_lease_event(
            &self.lease_stream(),
            lease::RELEASED,
            &record,
            eventstore::ExpectedRevision::Exact(held.take_revision),
        )
        .await?;
        tracing::info!(epoch = held.epoch, "released the writer lease");
        Ok(())
    }

    /// Keeps the lease: renews it while held, tries to take it otherwise, every quarter of
    /// the TTL, until `stop` turns true; then releases it. Errors are logged and retried.
    pub async fn run_lease(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let Some(config) = self.config.lease.clone() else {
            return;
        };
        let interval = (config.ttl / 4).max(Duration::from_millis(10));
        loop {
            let step = match self.lease_role() {
                LeaseRole::Writer { .. } => self.renew_lease().await,
                LeaseRole::Replica { .. } => {
                    // A lease that lapsed while held (a stall) is let go before taking anew.
                    self.lose_lease();
                    self.try_take_lease().await
                }
            };
            if let Err(error) = step {
                tracing::warn!(%error, "writer lease step failed; trying again");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.wait_for(|stopped| *stopped) => break,
            }
        }
        if let Err(error) = self.release_lease().await {
            tracing::warn!(%error, "could not release the writer lease; another process takes it after its TTL");
        }
    }
}

impl KurrentStore {
    /// Runs a subscription until the consumer goes away, resubscribing after transient
    /// errors from right after the last event seen, so nothing is skipped or repeated.
    async fn follow(
        &self,
        from: SubscribeFrom,
        filter: EventFilter,
        sender: &mpsc::Sender<Result<SubscriptionItem, StoreError>>,
    ) -> Result<(), StoreError> {
        let mut resume = match from {
            SubscribeFrom::Start => StreamPosition::Start,
            // From the last event now, so that the takes read below are all before it.
            SubscribeFrom::End => match self
                .read_all_page(StreamPosition::End, true, 1)
                .await?
                .first()
                .and_then(|resolved| resolved.event.as_ref())
            {
                Some(recorded) => StreamPosition::Position(recorded.position),
                None => StreamPosition::Start,
            },
            SubscribeFrom::After(position) => {
                StreamPosition::Position(kurrent_position(position.0))
            }
        };
        // The takes before the start; later ones come inline (the filter lets them through).
        self.refresh_takes().await?;
        let server_filter = self.server_filter(&filter);
        let mut caught_up_sent = false;
        let mut failures = 0;
        loop {
            let options = SubscribeToAllOptions::default()
                .position(resume)
                .filter(server_filter.clone());
            let mut subscription = self.client.subscribe_to_all(&options).await;
            loop {
                let item = match subscription.next_subscription_event().await {
                    Ok(item) => item,
                    Err(error)
                        if is_transient(&error)
                            && failures + 1 < self.config.retry.attempts_max =>
                    {
                        tracing::warn!(%error, "KurrentDB subscription dropped, resubscribing");
                        tokio::time::sleep(self.config.retry.backoff(failures)).await;
                        failures += 1;
                        break;
                    }
                    Err(error) => return Err(store_error("subscription", error)),
                };
                match item {
                    SubscriptionEvent::EventAppeared(resolved) => {
                        failures = 0;
                        if let Some(recorded) = resolved.event.as_ref() {
                            resume = StreamPosition::Position(recorded.position);
                        }
                        self.note_take(&resolved);
                        let Some(event) = self.visible(resolved)? else {
                            continue;
                        };
                        if filter.matches(&event)
                            && sender
                                .send(Ok(SubscriptionItem::Event(event)))
                                .await
                                .is_err()
                        {
                            return Ok(());
                        }
                    }
                    SubscriptionEvent::CaughtUp if !caught_up_sent => {
                        caught_up_sent = true;
                        let head = self.head().await?;
                        if sender
                            .send(Ok(SubscriptionItem::CaughtUp { head }))
                            .await
                            .is_err()
                        {
                            return Ok(());
                        }
                    }
                    _ => {
                        if sender.is_closed() {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    /// The server-side part of a filter: stream prefixes (with the namespace) when there are
    /// any, else event types; the client side re-checks the whole filter.
    fn server_filter(&self, filter: &EventFilter) -> SubscriptionFilter {
        // The lease's takes always pass: readers need them to tell void events.
        let namespace = &self.config.namespace;
        if !filter.stream_prefixes.is_empty() {
            filter.stream_prefixes.iter().fold(
                SubscriptionFilter::on_stream_name().add_prefix(self.lease_stream()),
                |f, prefix| f.add_prefix(format!("{namespace}{prefix}")),
            )
        } else if !namespace.is_empty() {
            SubscriptionFilter::on_stream_name().add_prefix(namespace)
        } else if !filter.event_types.is_empty() {
            let alternatives: Vec<String> = filter
                .event_types
                .iter()
                .map(|event_type| regex::escape(event_type))
                .chain([regex::escape(lease::TAKEN)])
                .collect();
            SubscriptionFilter::on_event_type().regex(format!("^(?:{})$", alternatives.join("|")))
        } else {
            SubscriptionFilter::on_event_type().exclude_system_events()
        }
    }
}

/// Another program's event in the ledger's namespace, as readers see it (see
/// [`store::UNENVELOPED_ACTOR`]).
fn unenveloped(recorded: eventstore::RecordedEvent, stream: StreamName) -> RecordedEvent {
    RecordedEvent {
        event_id: recorded.id,
        stream,
        revision: recorded.revision,
        position: Position(recorded.position.commit),
        event_type: recorded.event_type,
        schema_version: 0,
        recorded_at: recorded.created,
        actor: store::UNENVELOPED_ACTOR.into(),
        command_id: recorded.id,
        correlation_id: recorded.id,
        causation_id: recorded.id,
        payload: recorded.data.to_vec(),
    }
}

/// Whether the ledger wrote `event` (it carries the ledger's envelope and chain value).
/// The lease's bookkeeping in a lease event; one that cannot be read is damage at its position.
fn lease_record(recorded: &eventstore::RecordedEvent) -> Result<LeaseRecord, StoreError> {
    LeaseRecord::from_bytes(&recorded.data).map_err(|reason| {
        StoreError::Corrupt(Damage {
            position: Some(recorded.position.commit),
            file: None,
            offset: None,
            reason,
        })
    })
}

fn is_enveloped(event: &RecordedEvent) -> bool {
    event.actor != store::UNENVELOPED_ACTOR
}

fn report(
    records_intact: u64,
    last_position: Option<Position>,
    chain: ChainValue,
    damage: Option<Damage>,
) -> VerifyReport {
    VerifyReport {
        records_intact,
        last_position,
        chain,
        damage,
    }
}

/// The chain value in an event's custom metadata.
fn chain_of(position: Position, custom: Option<&[u8]>) -> Result<ChainValue, StoreError> {
    let damage = |reason: String| {
        StoreError::Corrupt(Damage {
            position: Some(position.0),
            file: None,
            offset: None,
            reason,
        })
    };
    let metadata = EnvelopeMetadata::from_bytes(custom.unwrap_or_default()).map_err(damage)?;
    metadata
        .chain_value()
        .map_err(damage)?
        .ok_or_else(|| damage("event carries no chain value".into()))
}

/// The KurrentDB position of a ledger position (see the crate docs: commit == prepare).
pub fn kurrent_position(position: u64) -> eventstore::Position {
    eventstore::Position {
        commit: position,
        prepare: position,
    }
}

/// The `eventstore` client parses only `esdb://` and `esdb+discover://`; KurrentDB's newer
/// names for the same thing are accepted and rewritten.
pub fn normalize_connection_string(text: &str) -> String {
    let text = text.trim();
    for (from, to) in [
        ("kurrentdb+discover://", "esdb+discover://"),
        ("kurrentdb://", "esdb://"),
        ("kurrent+discover://", "esdb+discover://"),
        ("kurrent://", "esdb://"),
    ] {
        if let Some(rest) = text.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    text.to_string()
}

/// Whether an error may go away by itself (another node becomes leader, the network comes
/// back, a busy node answers next time).
fn is_transient(error: &eventstore::Error) -> bool {
    matches!(
        error,
        eventstore::Error::ServerError(_)
            | eventstore::Error::NotLeaderException(_)
            | eventstore::Error::ConnectionClosed
            | eventstore::Error::GrpcConnectionError(_)
            | eventstore::Error::DeadlineExceeded
    ) || matches!(
        error,
        eventstore::Error::Grpc { code, .. }
            if matches!(code, tonic::Code::Unavailable | tonic::Code::Cancelled | tonic::Code::Aborted | tonic::Code::ResourceExhausted)
    )
}

fn store_error(what: &str, error: eventstore::Error) -> StoreError {
    match error {
        eventstore::Error::AccessDenied => StoreError::Unavailable(format!(
            "KurrentDB {what}: access denied (check the credentials in the connection string)"
        )),
        eventstore::Error::Grpc {
            code: tonic::Code::InvalidArgument,
            message,
        } => StoreError::Invalid(format!("KurrentDB {what}: {message}")),
        other => StoreError::Unavailable(format!("KurrentDB {what}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kurrentdb_schemes_become_esdb() {
        assert_eq!(
            normalize_connection_string("kurrentdb://admin:changeit@localhost:2113?tls=false"),
            "esdb://admin:changeit@localhost:2113?tls=false"
        );
        assert_eq!(
            normalize_connection_string("kurrentdb+discover://db:2113"),
            "esdb+discover://db:2113"
        );
        assert_eq!(normalize_connection_string("esdb://x:1"), "esdb://x:1");
    }

    #[test]
    fn backoff_is_bounded() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(0), Duration::from_millis(50));
        assert_eq!(policy.backoff(40), Duration::from_millis(2_000));
    }

    fn kurrent_event(stream: &str, custom_metadata: Vec<u8>) -> eventstore::ResolvedEvent {
        eventstore::ResolvedEvent {
            event: Some(eventstore::RecordedEvent {
                stream_id: stream.into(),
                id: uuid::Uuid::now_v7(),
                revision: 3,
                event_type: "ProviderOnboarded".into(),
                data: vec![0x80].into(),
                metadata: Default::default(),
                custom_metadata: custom_metadata.into(),
                is_json: false,
                position: kurrent_position(4_096),
                created: chrono::Utc::now(),
            }),
            link: None,
            commit_position: Some(4_096),
        }
    }

    /// Another program's event among the ledger's streams is handed over, marked, at its
    /// position (the readers report it as a fault); outside the namespace, nothing is.
    #[tokio::test]
    #[allow(clippy::unwrap_used, clippy::expect_used)]
    async fn an_event_without_the_envelope_is_handed_over_marked_and_out_of_the_chain() {
        let config = KurrentStoreConfig {
            namespace: "ledger-".into(),
            ..KurrentStoreConfig::default()
        };
        let store = KurrentStore::connect("esdb://127.0.0.1:1?tls=false", config).unwrap();
        for metadata in [Vec::new(), br#"{"app":"billing"}"#.to_vec()] {
            let (event, epoch) = store
                .decode(kurrent_event("ledger-partner-x", metadata))
                .unwrap()
                .expect("in the namespace");
            assert_eq!(event.actor, store::UNENVELOPED_ACTOR);
            assert_eq!(event.position, Position(4_096));
            assert_eq!(event.stream.as_str(), "partner-x");
            assert_eq!(epoch, 0);
            assert!(!is_enveloped(&event));
        }
        assert!(
            store
                .decode(kurrent_event("billing-2026", Vec::new()))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn positions_round_trip() {
        let position = kurrent_position(12_345);
        assert_eq!((position.commit, position.prepare), (12_345, 12_345));
    }
}
