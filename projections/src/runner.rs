//! Keeping the read models live: rebuild with progress, resume from a checkpoint, follow
//! the log by subscription, and let readers wait for a position.
//!
//! One task owns the subscription and is the only writer. It applies events in batches
//! under a write lock held for the batch only, then publishes the position reached on a
//! `watch` channel; readers take the read lock ([`ProjectionsHandle::read`]) or first wait
//! until a position is reached ([`ProjectionsHandle::wait_for`]).

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use futures::FutureExt;
use store::{
    Direction, EventFilter, EventStore, Position, ReadFrom, RecordedEvent, StoreError,
    SubscribeFrom, SubscriptionItem,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::checkpoint::{self, CheckpointError};
use crate::model::{ApplyError, Projections};

/// Events read per page during a rebuild.
pub const REBUILD_PAGE_EVENTS: usize = 4096;

/// The most events a catch-up makes room for in advance (a head position far beyond the
/// events, on a backend with large gaps, must not reserve without bound).
const RESERVE_EVENTS_MAX: usize = 1 << 26;

/// Why the runner or a rebuild stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The store failed.
    #[error("event store: {0}")]
    Store(#[from] StoreError),
    /// An event could not be applied; the read models stop rather than skip a fact.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// A checkpoint could not be written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A blocking task (checkpoint writing) panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

/// Why [`ProjectionsHandle::wait_for`] gave no view.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// The position was not reached in time.
    #[error("position {requested} not reached within {timeout_ms} ms (at {reached:?})")]
    Timeout {
        /// The position asked for.
        requested: u64,
        /// The position reached.
        reached: Option<u64>,
        /// The time waited.
        timeout_ms: u64,
    },
    /// The runner stopped (store closed or an error); it will not get there.
    #[error("the projections runner stopped at {reached:?}: {reason}")]
    Stopped {
        /// The position reached.
        reached: Option<u64>,
        /// Why it stopped.
        reason: String,
    },
}

/// Progress of a rebuild or catch-up, for a progress bar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// Events applied so far.
    pub events_done: u64,
    /// Events expected in all, estimated from the log's head when the run started (exact on
    /// a log without position gaps).
    pub events_total: Option<u64>,
    /// Time since the start.
    pub elapsed: Duration,
    /// Events applied per second so far.
    pub events_per_second: f64,
    /// Estimated time left.
    pub remaining: Option<Duration>,
}

impl Progress {
    fn new(events_done: u64, events_total: Option<u64>, started: Instant) -> Self {
        let elapsed = started.elapsed();
        let seconds = elapsed.as_secs_f64();
        let events_per_second = if seconds > 0.0 {
            events_done as f64 / seconds
        } else {
            0.0
        };
        let remaining = events_total.and_then(|total| {
            (events_per_second > 0.0).then(|| {
                Duration::from_secs_f64(
                    total.saturating_sub(events_done) as f64 / events_per_second,
                )
            })
        });
        Progress {
            events_done,
            events_total,
            elapsed,
            events_per_second,
            remaining,
        }
    }
}

/// Applies the log to `projections` from just after its position up to the head as read,
/// page by page, reporting progress after each page. Foreign and unreadable events are
/// passed over (and logged), as [`PassedOver::apply`] does.
pub async fn catch_up(
    store: &dyn EventStore,
    projections: &mut Projections,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(), RunnerError> {
    let started = Instant::now();
    let head = store.head().await?;
    let mut from = match projections.position() {
        Some(position) => ReadFrom::At(position + 1),
        None => ReadFrom::Start,
    };
    let first = match from {
        ReadFrom::At(position) => position,
        _ => 0,
    };
    let total = head.map(|head| (head.0 + 1).saturating_sub(first));
    // Room for the events expected, at once (an estimate: positions may have gaps, so this
    // may be more than needed, which costs address space, not memory).
    if let Some(total) = total {
        projections.reserve(usize::try_from(total).unwrap_or(0).min(RESERVE_EVENTS_MAX));
    }
    let mut done = 0u64;
    let mut passed_over = PassedOver::default();
    loop {
        let page = store
            .read_all(from, Direction::Forwards, REBUILD_PAGE_EVENTS)
            .await?;
        let Some(last) = page.last() else {
            break;
        };
        from = ReadFrom::At(last.position.0 + 1);
        passed_over.apply(projections, &page)?;
        done += page.len() as u64;
        progress(&Progress::new(done, total, started));
    }
    Ok(())
}

/// Rebuilds the read models from the first event of the log, with progress.
pub async fn rebuild(
    store: &dyn EventStore,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Projections, RunnerError> {
    let mut projections = Projections::new();
    catch_up(store, &mut projections, progress).await?;
    Ok(projections)
}

/// Whether a checkpoint belongs to this log: the event at its position has its id.
async fn belongs_to(store: &dyn EventStore, projections: &Projections) -> Result<bool, StoreError> {
    let Some(position) = projections.position() else {
        return Ok(true);
    };
    let found = store
        .read_all(ReadFrom::At(position), Direction::Forwards, 1)
        .await?;
    Ok(found.first().is_some_and(|event| {
        event.position.0 == position && Some(event.event_id) == projections.last_event_id()
    }))
}

/// Loads the checkpoint at `path` if it is usable and belongs to this log; otherwise warns
/// and starts empty (the caller then catches up from the start: a rebuild).
pub async fn resume(
    store: &dyn EventStore,
    path: &std::path::Path,
) -> Result<Projections, RunnerError> {
    let path_owned = path.to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || checkpoint::load_or_discard(&path_owned))
        .await
        .map_err(|error| RunnerError::Task(error.to_string()))?;
    match loaded {
        Some(projections) if belongs_to(store, &projections).await? => Ok(projections),
        Some(_) => {
            tracing::warn!(
                path = %path.display(),
                "discarding the projections checkpoint: it does not match the log; rebuilding"
            );
            Ok(Projections::new())
        }
        None => Ok(Projections::new()),
    }
}

/// How the runner runs.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Where to save checkpoints (and resume from), if anywhere.
    pub checkpoint_path: Option<PathBuf>,
    /// Save a checkpoint after this many events applied since the last one (and once on
    /// catching up).
    pub checkpoint_every_events: u64,
    /// Most events applied under one write lock, so readers never wait long.
    pub batch_events_max: usize,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            checkpoint_path: None,
            checkpoint_every_events: 100_000,
            batch_events_max: 1024,
        }
    }
}

/// What readers see of the runner's progress.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Reached {
    /// The last position applied or passed over.
    position: Option<u64>,
    stopped: Option<String>,
    passed_over: PassedOver,
}

/// Events the read models passed over instead of applying, since this process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassedOver {
    /// Events of streams that are not the ledger's (another application's, in a shared
    /// store).
    pub foreign: u64,
    /// Events of the ledger's streams that this code cannot read; each is logged with its
    /// position (and reported by the write model and `verify`).
    pub unreadable: u64,
    /// The position of the last event passed over.
    pub last: Option<u64>,
}

impl PassedOver {
    /// Applies `events` in log order, passing over foreign and unreadable ones (logged);
    /// any other error stops, with every event before it applied.
    pub fn apply(
        &mut self,
        projections: &mut Projections,
        events: &[RecordedEvent],
    ) -> Result<(), ApplyError> {
        let mut rest = events;
        while !rest.is_empty() {
            let run = rest
                .iter()
                .position(|event| !domain::streams::is_ledger_stream(event.stream.as_str()))
                .unwrap_or(rest.len());
            match projections.apply_all(&rest[..run]) {
                Ok(()) => {
                    let Some(foreign) = rest.get(run) else {
                        return Ok(());
                    };
                    self.foreign += 1;
                    self.last = Some(foreign.position.0);
                    rest = &rest[run + 1..];
                }
                Err(ApplyError::Undecodable { position, reason }) => {
                    let index = rest
                        .iter()
                        .position(|event| event.position.0 == position)
                        .ok_or(ApplyError::Undecodable {
                            position,
                            reason: reason.clone(),
                        })?;
                    tracing::warn!(
                        position,
                        stream = rest[index].stream.as_str(),
                        event_type = %rest[index].event_type,
                        %reason,
                        "the read models pass over an event they cannot read"
                    );
                    self.unreadable += 1;
                    self.last = Some(position);
                    rest = &rest[index + 1..];
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    /// The position reached: the later of the last applied and the last passed over.
    pub fn reached(&self, projections: &Projections) -> Option<u64> {
        projections.position().max(self.last)
    }
}

struct Shared {
    projections: RwLock<Projections>,
    reached: watch::Sender<Reached>,
}

/// A shared read handle on live read models. Cheap to clone.
#[derive(Clone)]
pub struct ProjectionsHandle {
    shared: Arc<Shared>,
}

impl ProjectionsHandle {
    /// A handle on fixed read models (no runner): for tests and one-shot tools.
    pub fn new(projections: Projections) -> Self {
        let position = projections.position();
        let (reached, _) = watch::channel(Reached {
            position,
            stopped: None,
            passed_over: PassedOver::default(),
        });
        ProjectionsHandle {
            shared: Arc::new(Shared {
                projections: RwLock::new(projections),
                reached,
            }),
        }
    }

    /// The read models as they are now. Hold the guard briefly: the runner waits for it.
    pub fn read(&self) -> RwLockReadGuard<'_, Projections> {
        // The writer cannot panic halfway through an event (applying cannot fail after the
        // checks), so a poisoned lock still guards consistent read models.
        self.shared
            .projections
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The last position applied or passed over.
    pub fn position(&self) -> Option<u64> {
        self.shared.reached.borrow().position
    }

    /// What the runner passed over instead of applying.
    pub fn passed_over(&self) -> PassedOver {
        self.shared.reached.borrow().passed_over
    }

    /// Waits until the read models have applied `min_position` (the consistency token of
    /// an earlier write), then returns them; gives up after `timeout`.
    pub async fn wait_for(
        &self,
        min_position: u64,
        timeout: Duration,
    ) -> Result<RwLockReadGuard<'_, Projections>, WaitError> {
        let mut receiver = self.shared.reached.subscribe();
        let waited = tokio::time::timeout(
            timeout,
            receiver.wait_for(|reached| {
                reached.position.is_some_and(|p| p >= min_position) || reached.stopped.is_some()
            }),
        )
        .await;
        let reached = self.shared.reached.borrow().clone();
        match waited {
            Ok(Ok(_)) if reached.position.is_some_and(|p| p >= min_position) => Ok(self.read()),
            Ok(_) => Err(WaitError::Stopped {
                reached: reached.position,
                reason: reached.stopped.unwrap_or_else(|| "closed".into()),
            }),
            Err(_) => Err(WaitError::Timeout {
                requested: min_position,
                reached: reached.position,
                timeout_ms: timeout.as_millis() as u64,
            }),
        }
    }

    fn publish(&self, position: Option<u64>, passed_over: PassedOver) {
        self.shared.reached.send_modify(|reached| {
            reached.position = position;
            reached.passed_over = passed_over;
        });
    }

    fn stop(&self, reason: String) {
        self.shared
            .reached
            .send_modify(|reached| reached.stopped = Some(reason));
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Projections> {
        self.shared
            .projections
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Saves a checkpoint of the read models now (encoded under the read lock, written
    /// without it).
    pub async fn save_checkpoint(&self, path: PathBuf) -> Result<(), RunnerError> {
        let image = checkpoint::encode(&self.read())?;
        tokio::task::spawn_blocking(move || checkpoint::write_image(&path, &image))
            .await
            .map_err(|error| RunnerError::Task(error.to_string()))??;
        Ok(())
    }
}

/// The live runner: a task following the log into shared read models.
pub struct Runner {
    handle: ProjectionsHandle,
    task: JoinHandle<Result<(), RunnerError>>,
}

impl Runner {
    /// Resumes from the configured checkpoint (or starts empty), then subscribes after its
    /// position and applies every event as it comes. Returns at once; the handle answers
    /// from the checkpoint's position and moves forward as the task catches up.
    pub async fn start(
        store: Arc<dyn EventStore>,
        config: RunnerConfig,
    ) -> Result<Runner, RunnerError> {
        let projections = match &config.checkpoint_path {
            Some(path) => resume(store.as_ref(), path).await?,
            None => Projections::new(),
        };
        Ok(Self::start_from(store, projections, config))
    }

    /// Follows the log from read models already built (a rebuild or a loaded checkpoint).
    pub fn start_from(
        store: Arc<dyn EventStore>,
        projections: Projections,
        config: RunnerConfig,
    ) -> Runner {
        let from = match projections.position() {
            Some(position) => SubscribeFrom::After(Position(position)),
            None => SubscribeFrom::Start,
        };
        let handle = ProjectionsHandle::new(projections);
        let subscription = store.subscribe_all(from, EventFilter::all());
        let task_handle = handle.clone();
        let task = tokio::spawn(async move {
            let result = follow(subscription, &task_handle, &config).await;
            let reason = match &result {
                Ok(()) => "the store closed".to_string(),
                Err(error) => error.to_string(),
            };
            if let Err(error) = &result {
                tracing::error!(%error, "the projections runner stopped");
            }
            task_handle.stop(reason);
            result
        });
        Runner { handle, task }
    }

    /// The shared read handle.
    pub fn handle(&self) -> ProjectionsHandle {
        self.handle.clone()
    }

    /// Stops following the log (the read models stay readable through the handles).
    pub fn stop(self) {
        self.task.abort();
        self.handle.stop("stopped".into());
    }

    /// Waits for the task to end (it ends when the store closes or on an error).
    pub async fn join(self) -> Result<(), RunnerError> {
        self.task
            .await
            .map_err(|error| RunnerError::Task(error.to_string()))?
    }
}

async fn follow(
    mut subscription: store::Subscription,
    handle: &ProjectionsHandle,
    config: &RunnerConfig,
) -> Result<(), RunnerError> {
    let batch_max = config.batch_events_max.max(1);
    let mut since_checkpoint = 0u64;
    let mut passed_over = handle.passed_over();
    let mut batch = Vec::with_capacity(batch_max);
    let mut events = Vec::with_capacity(batch_max);
    loop {
        let Some(first) = subscription.next().await else {
            return Ok(());
        };
        batch.push(first?);
        // Take what is already there without waiting, to apply it under one lock.
        while batch.len() < batch_max {
            match subscription.next().now_or_never() {
                Some(Some(item)) => batch.push(item?),
                _ => break,
            }
        }
        let mut caught_up = false;
        let position = {
            let mut projections = handle.write();
            events.clear();
            for item in batch.drain(..) {
                match item {
                    SubscriptionItem::Event(recorded) => events.push(recorded),
                    SubscriptionItem::CaughtUp { .. } => caught_up = true,
                }
            }
            since_checkpoint += events.len() as u64;
            passed_over.apply(&mut projections, &events)?;
            passed_over.reached(&projections)
        };
        handle.publish(position, passed_over);
        if let Some(path) = &config.checkpoint_path
            && since_checkpoint > 0
            && (caught_up || since_checkpoint >= config.checkpoint_every_events)
        {
            handle.save_checkpoint(path.clone()).await?;
            since_checkpoint = 0;
        }
    }
}
