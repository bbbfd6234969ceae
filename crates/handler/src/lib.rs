//! The command handler: the one place where commands become events.
//!
//! For each command it brings the write model (the domain's [`LedgerState`]) up to the log's
//! head, asks the pure domain to decide, and appends the decided events to the one stream
//! the decision names, expecting the revision the decision was made on. A conflict (another
//! writer got there first) is answered by catching up and deciding again. Rules that span
//! aggregates are therefore checked against the state of the whole log at decision time,
//! and the domain's events record what was checked.
//!
//! On a store that pipelines appends ([`EventStore::pipelines_appends`]: the file log, the
//! in-memory store) commands do not wait for each other's fsync. Each is decided against the
//! write model *including the decisions not yet durable*, its events are evolved into the
//! model at the positions they will take, and its append is queued behind theirs
//! ([`EventStore::submit`]) on the condition that the log then ends with the last event the
//! model assumed. The lock is held only while deciding and queueing; each command is
//! answered when its own events are durable, so concurrent commands share one fsync. If an
//! append fails, every append queued behind it fails its condition (nothing decided on a
//! failed append reaches the log), the model is rebuilt from the log, and those commands
//! are decided again on what the log holds; a storage failure is answered with its error.
//! Other stores append one command at a time, as they always have.
//!
//! Argon2 hashing and credential files are never touched inside the decision: when a
//! decision needs a temporary credential (or a password change must be stored first), the
//! lock is released, the work runs on the blocking pool, and the command is decided again.
//!
//! Command ids make retries idempotent: a command id already in the log returns the
//! original outcome and appends nothing. The decision states its side effects
//! ([`domain::Effect`]); the handler carries out its own (credentials, secrets) and returns
//! the rest in the [`Outcome`] (sessions to end, which the server keeps). Secrets (link
//! tokens, temporary passwords) are generated here, returned once, and never reach the log;
//! the log holds only token hashes, and temporary passwords go to the credential store as
//! Argon2id hashes.

mod clock;
mod envelope;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};

use chrono::{DateTime, Utc};

use credentials::{CredentialError, CredentialStore};
use domain::ids::{PartnerId, SecretHash, UserId};
use domain::{Actor, Command, Context, Decision, Effect, Event, LedgerState, Proof, Rejection};
use store::{
    Direction, EventStore, ExpectedRevision, LogTail, Position, ReadFrom, StoreError, StreamName,
};
use tokio::sync::{Mutex, watch};
use uuid::Uuid;

pub use clock::{Clock, ManualClock, SystemClock};
pub use envelope::{actor_text, admit_asserted, decode, payload_from_json, payload_to_json};

/// Events read per page while catching up the write model.
const CATCH_UP_PAGE_EVENTS: usize = 4096;

/// Tuning of the handler.
#[derive(Clone, Debug)]
pub struct HandlerConfig {
    /// How many times a command is decided again after losing a concurrency race before the
    /// handler gives up.
    pub conflict_retries_max: u32,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        Self {
            conflict_retries_max: 8,
        }
    }
}

/// A command with who issues it and its envelope ids.
#[derive(Clone, Debug)]
pub struct CommandRequest {
    /// Client-chosen; a retry with the same id returns the original outcome.
    pub command_id: Uuid,
    /// Who issues the command (established by the caller: sign-in, link token, operator key).
    pub actor: Actor,
    /// How the caller established the actor; recorded in every event's envelope.
    pub proof: Proof,
    /// The command.
    pub command: Command,
    /// The business conversation; defaults to the command id.
    pub correlation_id: Option<Uuid>,
}

/// A secret created by a command, returned exactly once.
#[derive(Clone, PartialEq, Eq)]
pub enum IssuedSecret {
    /// The token of a link (invitation, verification). The log keeps only its SHA-256.
    LinkToken(String),
    /// A user's temporary password. The credential store keeps only its Argon2id hash.
    TemporaryPassword {
        /// The user it belongs to.
        user_id: UserId,
        /// The password.
        password: String,
    },
}

impl std::fmt::Debug for IssuedSecret {
    // Secrets never reach logs, even debug ones.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LinkToken(_) => f.write_str("LinkToken(…)"),
            Self::TemporaryPassword { user_id, .. } => {
                write!(f, "TemporaryPassword {{ user_id: {user_id:?}, .. }}")
            }
        }
    }
}

/// One recorded event of an outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedSummary {
    /// Its global position.
    pub position: Position,
    /// Its type.
    pub event_type: String,
    /// The event itself.
    pub event: Event,
}

/// What a recorded command did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The command.
    pub command_id: Uuid,
    /// The stream it wrote.
    pub stream: String,
    /// The stream's revision after the command.
    pub revision: u64,
    /// The events it recorded.
    pub events: Vec<RecordedSummary>,
    /// True when this is a retry: the command had already been recorded and nothing new was
    /// appended (secrets are not returned again).
    pub replayed: bool,
    /// Secrets the command created; empty on a replay.
    pub secrets: Vec<IssuedSecret>,
    /// Users whose every session must end (a temporary password reset, a removal). Given
    /// on a replay too, so that a retry ends them even if the first attempt's caller
    /// stopped before it did.
    pub sessions_to_end: Vec<UserId>,
}

/// Why a command was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// A rule of the domain refused it; nothing was appended.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The credential store failed or refused (wrong current password, weak new one).
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// The log holds an event this code cannot read.
    #[error("event at position {position} cannot be read: {reason}")]
    Undecodable {
        /// Where.
        position: u64,
        /// Why.
        reason: String,
    },
    /// The command's stream holds an event this code cannot read, so its state is unknown:
    /// deciding on it would be a guess.
    #[error(
        "stream {stream} holds an event this ledger cannot read (position {position}: {reason}); commands on it are refused"
    )]
    StreamUnreadable {
        /// The stream.
        stream: String,
        /// The first unreadable event's position.
        position: u64,
        /// Why it cannot be read.
        reason: String,
    },
    /// Work on the blocking pool (password hashing, credential files) did not finish.
    #[error("a blocking task failed: {0}")]
    Blocking(String),
    /// An event or actor could not be encoded.
    #[error("encoding failed: {0}")]
    Encoding(String),
    /// Other writers kept winning the race for the stream.
    #[error("gave up after {attempts} concurrency conflicts on stream {stream}")]
    Contention {
        /// The contested stream.
        stream: String,
        /// How many times the command was decided.
        attempts: u32,
    },
}

/// The write model: the domain state of the whole log, and the commands already recorded.
struct WriteModel {
    state: LedgerState,
    /// The next position to read.
    next: u64,
    /// The position of the last event applied or passed over.
    head: Option<Position>,
    recorded: HashMap<Uuid, RecordedCommand>,
    /// Events of the ledger's streams that this code cannot read, in log order.
    faults: Vec<Fault>,
    /// Streams holding a fault, with the first: their state is unknown past it.
    unreadable: HashMap<String, usize>,
    /// Events of other streams passed over (another application's, in a shared store).
    foreign: u64,
    /// What the log ends with once every queued append is made.
    tail: LogTail,
    /// The recorded-at of `tail`'s event: the store keeps recorded-at non-decreasing, and
    /// the model must hold the time the store will record.
    last_recorded_at: Option<DateTime<Utc>>,
}

/// An event in one of the ledger's streams that this code cannot read (an unknown type, a
/// payload or actor that does not decode, a schema version newer than this binary's). The
/// write model passes over it explicitly and refuses commands on its stream; the read models
/// pass over it too. Never skipped silently, never a stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Where it is in the log.
    pub position: Position,
    /// Its stream.
    pub stream: String,
    /// The type it claims.
    pub event_type: String,
    /// The schema version it claims.
    pub schema_version: u16,
    /// Written by a newer csp-ledger (a known type at a version above this binary's).
    pub newer_schema: bool,
    /// What the decoder said.
    pub reason: String,
}

impl Fault {
    /// The fault as `/v1/verify` and `csp-ledger verify --json` report it to operators and
    /// auditors (`/readyz`, open to anyone, shows neither the stream nor the reason).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "position": self.position.0,
            "stream": self.stream,
            "event_type": self.event_type,
            "schema_version": self.schema_version,
            "newer_schema": self.newer_schema,
            "reason": self.reason,
        })
    }
}

/// Where a recorded command's events are; the events themselves stay in the log.
#[derive(Clone)]
struct RecordedCommand {
    stream: String,
    first_revision: u64,
    revision: u64,
}

/// The command handler over a store.
pub struct CommandHandler<S: EventStore + ?Sized> {
    store: Arc<S>,
    credentials: Arc<CredentialStore>,
    clock: Arc<dyn Clock>,
    config: HandlerConfig,
    /// The store pipelines appends: decide on what is queued, answer when durable.
    pipelined: bool,
    model: Mutex<WriteModel>,
    /// What the queued appends share with the handler.
    pipeline: Arc<Pipeline>,
    /// How many times the model was rebuilt (changed under the model's lock only).
    rebuilds: AtomicU64,
}

/// What stays fixed across the attempts at one command.
struct Attempts {
    request: CommandRequest,
    actor: String,
    ids: envelope::Ids,
    /// Fixed across attempts, so that a credential prepared for the user a decision creates
    /// belongs to the user it creates when decided again.
    new_id: Uuid,
    /// Which commands issue a link token is the decision's to say: every decision is offered
    /// one, and a token its effects do not name is dropped unseen.
    token: String,
    /// The temporary credential stored for the user the decision creates or resets.
    temporary: Option<(UserId, String)>,
    prepare: Option<Preparation>,
    /// Decisions appended or queued so far.
    count: u32,
}

impl Attempts {
    /// The secrets the decision hands out (its link token, its temporary password).
    fn secrets(&self, decision: &Decision) -> Vec<IssuedSecret> {
        let mut secrets = Vec::new();
        for effect in &decision.effects {
            match *effect {
                Effect::IssueLinkToken => secrets.push(IssuedSecret::LinkToken(self.token.clone())),
                Effect::IssueTemporaryCredential(user_id) => {
                    if let Some((issued, password)) = &self.temporary
                        && *issued == user_id
                    {
                        secrets.push(IssuedSecret::TemporaryPassword {
                            user_id,
                            password: password.clone(),
                        });
                    }
                }
                // After the append: carried out for recorded commands only.
                Effect::DeleteCredential(_) | Effect::EndSessions(_) => {}
            }
        }
        secrets
    }
}

/// Where one attempt at a command got to.
enum Step {
    /// Answered without waiting: a replay, or an append made one command at a time.
    Answered(Outcome),
    /// Decided and queued; durable once `pending` resolves.
    Queued(Queued),
}

/// A decision queued for a pipelining store.
struct Queued {
    in_flight: InFlight,
    decision: Decision,
    secrets: Vec<IssuedSecret>,
    /// The model's rebuild count when it was decided.
    rebuilds: u64,
    /// The positions its events will take.
    predicted: Vec<Position>,
}

/// What the handler shares with its queued appends.
#[derive(Default)]
struct Pipeline {
    /// Commands whose appends are queued and not yet settled (durable or refused), each with
    /// a receiver that closes when it settles: a retry of one waits for its outcome.
    in_flight: std::sync::Mutex<HashMap<Uuid, watch::Receiver<()>>>,
    /// A pipelined append failed: the model holds decisions the log never will, and is
    /// rebuilt before anything else is decided on it. Set before the failed command
    /// settles, so that whoever looks next (its retry included) finds it.
    needs_rebuild: AtomicBool,
}

impl Pipeline {
    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, watch::Receiver<()>>> {
        // Entries are inserted and removed whole: a panic elsewhere leaves the map usable.
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A queued append, settled exactly once: by the command's caller, or, if the caller drops
/// its future first, by a task of its own, so that a retry never finds a command neither
/// in flight nor in the log while its append is still on its way.
struct InFlight {
    pipeline: Arc<Pipeline>,
    command_id: Uuid,
    /// Until settled. Kept here rather than on the caller's stack, so that a future dropped
    /// mid-wait leaves it to `drop`.
    pending: Option<store::PendingAppend>,
    /// Dropped once settled, which releases the retries waiting for it.
    settle: Option<watch::Sender<()>>,
}

impl InFlight {
    async fn wait(&mut self) -> Result<store::AppendResult, StoreError> {
        match self.pending.as_mut() {
            Some(pending) => pending.await,
            None => unreachable!("an append is waited for once"),
        }
    }

    /// Marks the append settled: first the model marked for rebuild if it failed, then the
    /// retries waiting for it released.
    fn settle(&mut self, failed: bool) {
        self.pending = None;
        if failed {
            self.pipeline.needs_rebuild.store(true, Ordering::Release);
        }
        self.pipeline.in_flight().remove(&self.command_id);
        self.settle = None;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let mut orphan = InFlight {
            pipeline: self.pipeline.clone(),
            command_id: self.command_id,
            pending: Some(pending),
            settle: self.settle.take(),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let failed = orphan.wait().await.is_err();
                    orphan.settle(failed);
                });
            }
            // No runtime is left to finish it (the process is ending): assume the worst.
            Err(_) => orphan.settle(true),
        }
    }
}

/// Work done off the decision path before a command is decided again (a password change
/// stored before its event is appended).
type Preparation = Box<dyn FnOnce() -> Result<(), HandleError> + Send + Sync>;

impl<S: EventStore + ?Sized> CommandHandler<S> {
    /// A handler over `store`, its write model caught up with the whole log.
    pub async fn new(
        store: Arc<S>,
        credentials: Arc<CredentialStore>,
        clock: Arc<dyn Clock>,
        config: HandlerConfig,
    ) -> Result<Self, HandleError> {
        let handler = Self {
            pipelined: store.pipelines_appends(),
            store,
            credentials,
            clock,
            config,
            model: Mutex::new(WriteModel::empty()),
            pipeline: Arc::new(Pipeline::default()),
            rebuilds: AtomicU64::new(0),
        };
        {
            let mut model = handler.model.lock().await;
            handler.catch_up(&mut model).await?;
        }
        Ok(handler)
    }

    /// The store under the handler.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The credential store.
    pub fn credentials(&self) -> &Arc<CredentialStore> {
        &self.credentials
    }

    /// The handler's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Runs `read` on the write model, caught up with the log first, and answers once
    /// everything the answer may rest on is durable (a command decided but not yet durable
    /// could still fail). Returns the position the answer was computed at.
    pub async fn read_state<R>(
        &self,
        read: impl Fn(&LedgerState) -> R,
    ) -> Result<(R, Option<Position>), HandleError> {
        loop {
            let mut model = self.lock_model().await?;
            self.catch_up(&mut model).await?;
            let answer = read(&model.state);
            let head = model.head;
            let rebuilds = self.rebuilds.load(Ordering::Acquire);
            drop(model);
            let unsettled: Vec<watch::Receiver<()>> =
                self.pipeline.in_flight().values().cloned().collect();
            for settled in unsettled {
                wait_settled(settled).await;
            }
            // Otherwise an append the answer saw failed: read again.
            if !self.pipeline.needs_rebuild.load(Ordering::Acquire)
                && self.rebuilds.load(Ordering::Acquire) == rebuilds
            {
                return Ok((answer, head));
            }
        }
    }

    /// The unreadable events of the ledger's streams found so far (the whole log is read at
    /// start), and how many events of other streams were passed over.
    pub async fn faults(&self) -> Result<(Vec<Fault>, u64), HandleError> {
        let mut model = self.lock_model().await?;
        self.catch_up(&mut model).await?;
        Ok((model.faults.clone(), model.foreign))
    }

    /// Decides and records a command.
    pub async fn handle(&self, request: CommandRequest) -> Result<Outcome, HandleError> {
        refuse_password_change(&request)?;
        self.handle_with(request, None).await
    }

    /// Records a partner user's first password change: checks the temporary password, stores
    /// the new one, and records `TemporaryPasswordChanged`. Passwords never reach the log.
    pub async fn change_temporary_password(
        &self,
        command_id: Uuid,
        user_id: UserId,
        partner_id: PartnerId,
        current_password: &str,
        new_password: &str,
    ) -> Result<Outcome, HandleError> {
        let subject = user_id.to_string();
        let credentials = self.credentials.clone();
        let (checked_subject, current) = (subject.clone(), current_password.to_string());
        // Argon2 is slow by design: on the blocking pool, never on the runtime's threads.
        run_blocking(move || {
            credentials
                .verify(&checked_subject, &current)
                .map(drop)
                .map_err(HandleError::from)
        })
        .await?;
        let request = CommandRequest {
            command_id,
            actor: Actor::user(user_id),
            proof: Proof::SignIn,
            command: Command::ChangeTemporaryPassword(domain::commands::ChangeTemporaryPassword {
                partner_id,
            }),
            correlation_id: None,
        };
        let now = self.clock.now();
        // The credential changes only once the domain has accepted the command, and before
        // the event is appended: if the append then fails, the user holds a new password
        // and can retry the command; the reverse order could record a change that did not
        // happen.
        let credentials = self.credentials.clone();
        let (current, new) = (current_password.to_string(), new_password.to_string());
        let change: Preparation = Box::new(move || {
            credentials
                .change_password(&subject, &current, &new, now)
                .map_err(HandleError::from)
        });
        self.handle_with(request, Some(change)).await
    }

    /// Decides `request` and queues its append behind those before it, then returns: a
    /// refusal (or a replay of a recorded command) at once, otherwise a future that resolves
    /// with the outcome once the command's events are durable. Commands queued one after
    /// another are decided in that order, each seeing the ones before it, without waiting
    /// for their fsync: the bulk import keeps a window of them in flight. Should the append
    /// fail because one queued before it failed, the command is decided again when the
    /// future is polled.
    pub async fn queue(
        &self,
        request: CommandRequest,
    ) -> Result<impl Future<Output = Result<Outcome, HandleError>> + '_, HandleError> {
        refuse_password_change(&request)?;
        self.queue_with(request, None).await
    }

    async fn handle_with(
        &self,
        request: CommandRequest,
        prepare: Option<Preparation>,
    ) -> Result<Outcome, HandleError> {
        self.queue_with(request, prepare).await?.await
    }

    async fn queue_with(
        &self,
        request: CommandRequest,
        prepare: Option<Preparation>,
    ) -> Result<impl Future<Output = Result<Outcome, HandleError>> + '_, HandleError> {
        let mut attempts = Attempts {
            actor: actor_text(&request.actor, &request.proof)?,
            ids: envelope::Ids {
                command_id: request.command_id,
                correlation_id: request.correlation_id.unwrap_or(request.command_id),
                causation_id: request.command_id,
            },
            request,
            new_id: Uuid::now_v7(),
            token: credentials::generate_token(),
            temporary: None,
            prepare,
            count: 0,
        };
        let first = self.step(&mut attempts).await?;
        Ok(async move {
            let mut step = first;
            loop {
                match step {
                    Step::Answered(outcome) => return Ok(outcome),
                    Step::Queued(queued) => {
                        if let Some(outcome) = self.settle(&mut attempts, queued).await? {
                            return Ok(outcome);
                        }
                    }
                }
                step = self.step(&mut attempts).await?;
            }
        })
    }

    /// Decides the command and queues its append (or, on a store that does not pipeline,
    /// makes it), deciding again after a conflict, a credential prepared off the lock, or a
    /// wait for the same command in flight.
    async fn step(&self, attempts: &mut Attempts) -> Result<Step, HandleError> {
        let request = &attempts.request;
        loop {
            let mut model = self.lock_model().await?;
            self.catch_up(&mut model).await?;
            let unsettled = self.pipeline.in_flight().get(&request.command_id).cloned();
            if let Some(settled) = unsettled {
                // A retry of a command still in flight: its outcome, never a second decision.
                drop(model);
                wait_settled(settled).await;
                continue;
            }
            if let Some(recorded) = model.recorded.get(&request.command_id).cloned() {
                drop(model);
                return Ok(Step::Answered(
                    self.replayed(request.command_id, recorded).await?,
                ));
            }
            let now = self.clock.now();
            let context = Context {
                now,
                actor: request.actor.clone(),
                new_id: attempts.new_id,
                secret_hash: Some(SecretHash::of(attempts.token.as_bytes())),
            };
            let decision = domain::decide(&model.state, &request.command, &context)?;
            if let Some(&index) = model.unreadable.get(&decision.stream) {
                let fault = &model.faults[index];
                return Err(HandleError::StreamUnreadable {
                    stream: decision.stream,
                    position: fault.position.0,
                    reason: fault.reason.clone(),
                });
            }
            if let Some(preparation) = attempts.prepare.take() {
                drop(model);
                run_blocking(preparation).await?;
                continue;
            }
            let credential_for = decision.effects.iter().find_map(|effect| match *effect {
                Effect::IssueTemporaryCredential(user_id) => Some(user_id),
                _ => None,
            });
            if let Some(user_id) = credential_for
                && attempts
                    .temporary
                    .as_ref()
                    .is_none_or(|(issued, _)| *issued != user_id)
            {
                // Stored before the event is appended: a failed append leaves an unused
                // credential behind, never a user without one.
                drop(model);
                let credentials = self.credentials.clone();
                let password = run_blocking(move || {
                    credentials
                        .issue_temporary(&user_id.to_string(), now)
                        .map_err(HandleError::from)
                })
                .await?;
                attempts.temporary = Some((user_id, password));
                continue;
            }
            let secrets = attempts.secrets(&decision);
            let stream = StreamName::new(decision.stream.clone())?;
            let expected = decision
                .expected_revision
                .map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact);
            // The time the store will record (it never lets recorded-at go backwards), so
            // that the model evolved now holds what the log will.
            let recorded_at = store::monotonic_recorded_at(now, model.last_recorded_at);
            let events = decision
                .events
                .iter()
                .map(|event| envelope::new_event(event, &attempts.actor, attempts.ids, recorded_at))
                .collect::<Result<Vec<_>, _>>()?;
            attempts.count += 1;
            if self.pipelined {
                let last_event_id = events.last().map(|event| event.event_id);
                let pending = self
                    .store
                    .submit(&stream, expected, events, model.tail)
                    .await?;
                let (settle, settled) = watch::channel(());
                self.pipeline
                    .in_flight()
                    .insert(request.command_id, settled);
                let in_flight = InFlight {
                    pipeline: self.pipeline.clone(),
                    command_id: request.command_id,
                    pending: Some(pending),
                    settle: Some(settle),
                };
                let rebuilds = self.rebuilds.load(Ordering::Acquire);
                let predicted = model.speculate(
                    &decision,
                    request.command_id,
                    &request.actor,
                    recorded_at,
                    last_event_id,
                );
                return Ok(Step::Queued(Queued {
                    in_flight,
                    decision,
                    secrets,
                    rebuilds,
                    predicted,
                }));
            }
            match self.store.append(&stream, expected, events).await {
                Ok(result) => {
                    self.catch_up(&mut model).await?;
                    drop(model);
                    return Ok(Step::Answered(
                        self.recorded(attempts, decision, result, secrets).await,
                    ));
                }
                Err(error) => {
                    if !self.conflict_allows_retry(&error, attempts, &decision)? {
                        return Err(error.into());
                    }
                }
            }
        }
    }

    /// Waits for a queued append. `None`: decide the command again.
    async fn settle(
        &self,
        attempts: &mut Attempts,
        queued: Queued,
    ) -> Result<Option<Outcome>, HandleError> {
        let mut queued = queued;
        let appended = queued.in_flight.wait().await;
        if let Err(StoreError::TailMoved { .. }) = &appended
            && (self.pipeline.needs_rebuild.load(Ordering::Acquire)
                || self.rebuilds.load(Ordering::Acquire) != queued.rebuilds)
        {
            // Refused because an append before it failed (or a model rebuilt since): the
            // log did not move under us, so it is no conflict.
            attempts.count -= 1;
        }
        if let Ok(result) = &appended {
            assert_eq!(
                result.positions, queued.predicted,
                "a pipelining store appends at the positions its tail implies"
            );
        }
        queued.in_flight.settle(appended.is_err());
        match appended {
            Ok(result) => Ok(Some(
                self.recorded(attempts, queued.decision, result, queued.secrets)
                    .await,
            )),
            Err(error) => {
                if self.conflict_allows_retry(&error, attempts, &queued.decision)? {
                    Ok(None)
                } else {
                    Err(error.into())
                }
            }
        }
    }

    /// Whether a failed append is a conflict to decide again on (another writer, or an
    /// append queued before this one failed); `Err` when conflicts kept coming.
    fn conflict_allows_retry(
        &self,
        error: &StoreError,
        attempts: &Attempts,
        decision: &Decision,
    ) -> Result<bool, HandleError> {
        if !matches!(
            error,
            StoreError::WrongExpectedRevision { .. } | StoreError::TailMoved { .. }
        ) {
            return Ok(false);
        }
        if attempts.count > self.config.conflict_retries_max {
            return Err(HandleError::Contention {
                stream: decision.stream.clone(),
                attempts: attempts.count,
            });
        }
        tracing::debug!(stream = %decision.stream, attempts = attempts.count, "conflict; deciding again");
        Ok(true)
    }

    /// The outcome of a command whose events are durable, its effects carried out.
    async fn recorded(
        &self,
        attempts: &Attempts,
        decision: Decision,
        result: store::AppendResult,
        secrets: Vec<IssuedSecret>,
    ) -> Outcome {
        let sessions_to_end = self.after_recording(&decision.effects).await;
        let events = result
            .positions
            .iter()
            .zip(&decision.events)
            .map(|(position, event)| RecordedSummary {
                position: *position,
                event_type: event.event_type().to_string(),
                event: event.clone(),
            })
            .collect();
        tracing::debug!(command = attempts.request.command.name(), stream = %decision.stream, "recorded");
        Outcome {
            command_id: attempts.request.command_id,
            stream: decision.stream,
            revision: result.revision,
            events,
            replayed: false,
            secrets,
            sessions_to_end,
        }
    }

    /// The write model's lock, the model first rebuilt from the log if an append failed.
    async fn lock_model(&self) -> Result<tokio::sync::MutexGuard<'_, WriteModel>, HandleError> {
        let mut model = self.model.lock().await;
        if self.pipeline.needs_rebuild.load(Ordering::Acquire) {
            // Every append queued so far settles first (none needs this lock to), so that
            // the log read holds everything that will ever be made of them; no new one is
            // queued meanwhile, since deciding takes this lock.
            tracing::warn!("an append failed; rebuilding the write model from the log");
            let unsettled: Vec<watch::Receiver<()>> =
                self.pipeline.in_flight().values().cloned().collect();
            for settled in unsettled {
                wait_settled(settled).await;
            }
            *model = WriteModel::empty();
            self.rebuilds.fetch_add(1, Ordering::AcqRel);
            self.catch_up(&mut model).await?;
            self.pipeline.needs_rebuild.store(false, Ordering::Release);
        }
        Ok(model)
    }

    /// Carries out the effects due once a command is recorded (again on each retry: see
    /// [`Effect::repeated_on_retry`]) and returns the users whose sessions the caller must
    /// end. A removed user's password must stop working at once; the log already says the
    /// user is removed, so a failure here is logged rather than failing the recorded
    /// command.
    async fn after_recording(&self, effects: &[Effect]) -> Vec<UserId> {
        let mut sessions_to_end = Vec::new();
        for effect in effects {
            match *effect {
                Effect::DeleteCredential(user_id) => {
                    let credentials = self.credentials.clone();
                    let removed = run_blocking(move || {
                        credentials
                            .remove(&user_id.to_string())
                            .map_err(HandleError::from)
                    })
                    .await;
                    if let Err(error) = removed {
                        tracing::error!(user = %user_id, %error, "removed user's credential not deleted");
                    }
                }
                Effect::EndSessions(user_id) => sessions_to_end.push(user_id),
                Effect::IssueLinkToken | Effect::IssueTemporaryCredential(_) => {}
            }
        }
        sessions_to_end
    }

    /// The outcome of a command recorded earlier, read back from its stream.
    async fn replayed(
        &self,
        command_id: Uuid,
        recorded: RecordedCommand,
    ) -> Result<Outcome, HandleError> {
        let stream = StreamName::new(recorded.stream.clone())?;
        let count = (recorded.revision - recorded.first_revision + 1) as usize;
        let events = self
            .store
            .read_stream(
                &stream,
                ReadFrom::At(recorded.first_revision),
                Direction::Forwards,
                count,
            )
            .await?
            .iter()
            .map(|stored| {
                let (_, event) = envelope::decode(stored)?;
                Ok(RecordedSummary {
                    position: stored.position,
                    event_type: stored.event_type.clone(),
                    event,
                })
            })
            .collect::<Result<Vec<RecordedSummary>, HandleError>>()?;
        let repeated: Vec<Effect> = Effect::of(events.iter().map(|recorded| &recorded.event))
            .into_iter()
            .filter(Effect::repeated_on_retry)
            .collect();
        let sessions_to_end = self.after_recording(&repeated).await;
        Ok(Outcome {
            command_id,
            stream: recorded.stream,
            revision: recorded.revision,
            events,
            replayed: true,
            secrets: Vec::new(),
            sessions_to_end,
        })
    }

    /// Applies the log's new events. Each event moves the model's position only once it is
    /// applied, or passed over as foreign or as a [`Fault`]: nothing is skipped unseen.
    async fn catch_up(&self, model: &mut WriteModel) -> Result<(), HandleError> {
        loop {
            let page = self
                .store
                .read_all(
                    ReadFrom::At(model.next),
                    Direction::Forwards,
                    CATCH_UP_PAGE_EVENTS,
                )
                .await?;
            if page.is_empty() {
                return Ok(());
            }
            for recorded in &page {
                model.apply(recorded);
                model.next = recorded.position.0 + 1;
                model.head = Some(recorded.position);
                model.tail = LogTail::Last {
                    position: recorded.position,
                    event_id: recorded.event_id,
                };
                model.last_recorded_at = Some(recorded.recorded_at);
            }
        }
    }
}

impl WriteModel {
    fn empty() -> Self {
        Self {
            state: LedgerState::default(),
            next: 0,
            head: None,
            recorded: HashMap::new(),
            faults: Vec::new(),
            unreadable: HashMap::new(),
            foreign: 0,
            tail: LogTail::Empty,
            last_recorded_at: None,
        }
    }

    /// Evolves a decision queued for a pipelining store into the model, at the positions
    /// it will take (positions have no gaps there), as the log will hold it once durable.
    /// Returns those positions.
    fn speculate(
        &mut self,
        decision: &Decision,
        command_id: Uuid,
        actor: &Actor,
        recorded_at: DateTime<Utc>,
        last_event_id: Option<Uuid>,
    ) -> Vec<Position> {
        let first_position = self.next;
        let first_revision = decision
            .expected_revision
            .map_or(0, |revision| revision + 1);
        let mut positions = Vec::with_capacity(decision.events.len());
        for (offset, event) in (0u64..).zip(&decision.events) {
            let meta = domain::EventMeta {
                stream: decision.stream.clone(),
                stream_revision: first_revision + offset,
                global_position: first_position + offset,
                recorded_at,
                actor: actor.clone(),
            };
            self.state.evolve(&meta, event);
            positions.push(Position(first_position + offset));
        }
        let (Some(&last), Some(event_id)) = (positions.last(), last_event_id) else {
            unreachable!("a decision has at least one event");
        };
        self.next = last.0 + 1;
        self.head = Some(last);
        self.tail = LogTail::Last {
            position: last,
            event_id,
        };
        self.last_recorded_at = Some(recorded_at);
        self.recorded.insert(
            command_id,
            RecordedCommand {
                stream: decision.stream.clone(),
                first_revision,
                revision: first_revision + decision.events.len() as u64 - 1,
            },
        );
        positions
    }

    fn apply(&mut self, recorded: &store::RecordedEvent) {
        let stream = recorded.stream.as_str();
        match read_event(recorded) {
            LogEntry::Foreign => {
                self.foreign += 1;
                return;
            }
            LogEntry::Event(meta, event) => self.state.evolve(&meta, &event),
            LogEntry::Fault(fault) => {
                tracing::warn!(
                    position = fault.position.0,
                    stream,
                    event_type = %fault.event_type,
                    reason = %fault.reason,
                    "passing over an event this ledger cannot read; commands on its stream are refused"
                );
                self.unreadable
                    .entry(stream.to_string())
                    .or_insert(self.faults.len());
                self.faults.push(fault);
            }
        }
        // A retry of the command gets its events back, or the fault: never a second
        // decision.
        self.recorded
            .entry(recorded.command_id)
            .or_insert_with(|| RecordedCommand {
                stream: stream.to_string(),
                first_revision: recorded.revision,
                revision: recorded.revision,
            })
            .revision = recorded.revision;
    }
}

/// One record of the log as the ledger reads it.
#[derive(Debug)]
// Read one at a time and matched at once: boxing the common case would cost an allocation
// per event of every catch-up.
#[allow(clippy::large_enum_variant)]
pub enum LogEntry {
    /// In a stream that is not the ledger's: someone else's, passed over.
    Foreign,
    /// One of the ledger's events.
    Event(domain::EventMeta, Event),
    /// In one of the ledger's streams, but not readable by this code.
    Fault(Fault),
}

/// Reads one record as the write model does: foreign, an event, or a [`Fault`].
pub fn read_event(recorded: &store::RecordedEvent) -> LogEntry {
    if !domain::streams::is_ledger_stream(recorded.stream.as_str()) {
        return LogEntry::Foreign;
    }
    if recorded.actor == store::UNENVELOPED_ACTOR {
        return LogEntry::Fault(Fault {
            position: recorded.position,
            stream: recorded.stream.as_str().to_string(),
            event_type: recorded.event_type.clone(),
            schema_version: recorded.schema_version,
            newer_schema: false,
            reason: "not written by csp-ledger: the event carries no csp-ledger envelope".into(),
        });
    }
    match envelope::decode(recorded) {
        Ok((meta, event)) => LogEntry::Event(meta, event),
        Err(error) => {
            let newer_schema = domain::current_version(&recorded.event_type)
                .is_some_and(|current| recorded.schema_version > current);
            let reason = match error {
                HandleError::Undecodable { reason, .. } => reason,
                other => other.to_string(),
            };
            let reason = if newer_schema {
                format!("written by a newer csp-ledger ({reason})")
            } else {
                reason
            };
            LogEntry::Fault(Fault {
                position: recorded.position,
                stream: recorded.stream.as_str().to_string(),
                event_type: recorded.event_type.clone(),
                schema_version: recorded.schema_version,
                newer_schema,
                reason,
            })
        }
    }
}

/// Runs `work` on the blocking pool (Argon2, credential files): never on the runtime's
/// threads, never under the write model's lock.
async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, HandleError> + Send + 'static,
) -> Result<T, HandleError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| HandleError::Blocking(error.to_string()))?
}

/// Waits until an in-flight command's append is settled (its sender dropped).
async fn wait_settled(mut settled: watch::Receiver<()>) {
    while settled.changed().await.is_ok() {}
}

/// The password change is recorded only by [`CommandHandler::change_temporary_password`],
/// which stores the new password first: the log and the credential store never disagree.
fn refuse_password_change(request: &CommandRequest) -> Result<(), HandleError> {
    match request.command {
        Command::ChangeTemporaryPassword(_) => Err(Rejection::PasswordChangeNeedsSignIn.into()),
        _ => Ok(()),
    }
}
