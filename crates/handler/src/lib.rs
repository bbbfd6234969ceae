//! The command handler: the one place where commands become events.
//!
//! For each command it brings the write model (the domain's [`LedgerState`]) up to the log's
//! head, asks the pure domain to decide, and appends the decided events to the one stream
//! the decision names, expecting the revision the decision was made on. A conflict (another
//! writer got there first) is answered by catching up and deciding again. Rules that span
//! aggregates are therefore checked against the state of the whole log at decision time,
//! and the domain's events record what was checked.
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
use std::sync::Arc;

use credentials::{CredentialError, CredentialStore};
use domain::ids::{PartnerId, SecretHash, UserId};
use domain::{Actor, Command, Context, Decision, Effect, Event, LedgerState, Proof, Rejection};
use store::{Direction, EventStore, ExpectedRevision, Position, ReadFrom, StoreError, StreamName};
use tokio::sync::Mutex;
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
    next: ReadFrom,
    /// The position of the last event applied or passed over.
    head: Option<Position>,
    recorded: HashMap<Uuid, RecordedCommand>,
    /// Events of the ledger's streams that this code cannot read, in log order.
    faults: Vec<Fault>,
    /// Streams holding a fault, with the first: their state is unknown past it.
    unreadable: HashMap<String, usize>,
    /// Events of other streams passed over (another application's, in a shared store).
    foreign: u64,
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
    model: Mutex<WriteModel>,
}

impl<S: EventStore + ?Sized> CommandHandler<S> {
    /// A handler over `store`, its write model caught up with the whole log.
    pub async fn new(
        store: Arc<S>,
        credentials: Arc<CredentialStore>,
        clock: Arc<dyn Clock>,
        config: HandlerConfig,
    ) -> Result<Self, HandleError> {
        let handler = Self {
            store,
            credentials,
            clock,
            config,
            model: Mutex::new(WriteModel {
                state: LedgerState::default(),
                next: ReadFrom::Start,
                head: None,
                recorded: HashMap::new(),
                faults: Vec::new(),
                unreadable: HashMap::new(),
                foreign: 0,
            }),
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

    /// Runs `read` on the write model, caught up with the log first. Returns the position the
    /// answer was computed at.
    pub async fn read_state<R>(
        &self,
        read: impl FnOnce(&LedgerState) -> R,
    ) -> Result<(R, Option<Position>), HandleError> {
        let mut model = self.model.lock().await;
        self.catch_up(&mut model).await?;
        Ok((read(&model.state), model.head))
    }

    /// The unreadable events of the ledger's streams found so far (the whole log is read at
    /// start), and how many events of other streams were passed over.
    pub async fn faults(&self) -> Result<(Vec<Fault>, u64), HandleError> {
        let mut model = self.model.lock().await;
        self.catch_up(&mut model).await?;
        Ok((model.faults.clone(), model.foreign))
    }

    /// Decides and records a command.
    pub async fn handle(&self, request: CommandRequest) -> Result<Outcome, HandleError> {
        self.handle_with(request, |_| Ok(())).await
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
        self.credentials.verify(&subject, current_password)?;
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
        self.handle_with(request, |_| {
            self.credentials
                .change_password(&subject, current_password, new_password, now)
                .map_err(HandleError::from)
        })
        .await
    }

    async fn handle_with(
        &self,
        request: CommandRequest,
        before_append: impl Fn(&Decision) -> Result<(), HandleError>,
    ) -> Result<Outcome, HandleError> {
        let actor = actor_text(&request.actor, &request.proof)?;
        let ids = envelope::Ids {
            command_id: request.command_id,
            correlation_id: request.correlation_id.unwrap_or(request.command_id),
            causation_id: request.command_id,
        };
        let mut model = self.model.lock().await;
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.catch_up(&mut model).await?;
            if let Some(recorded) = model.recorded.get(&request.command_id).cloned() {
                return self.replayed(request.command_id, recorded).await;
            }
            let now = self.clock.now();
            // Which commands issue a link token is the decision's to say: every decision is
            // offered one, and a token its effects do not name is dropped unseen.
            let token = credentials::generate_token();
            let context = Context {
                now,
                actor: request.actor.clone(),
                new_id: Uuid::now_v7(),
                secret_hash: Some(SecretHash::of(token.as_bytes())),
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
            before_append(&decision)?;
            let mut secrets = Vec::new();
            for effect in &decision.effects {
                match *effect {
                    Effect::IssueLinkToken => secrets.push(IssuedSecret::LinkToken(token.clone())),
                    Effect::IssueTemporaryCredential(user_id) => {
                        // Stored before the event is appended: a failed append leaves an
                        // unused credential behind, never a user without one.
                        let password = self
                            .credentials
                            .issue_temporary(&user_id.to_string(), now)?;
                        secrets.push(IssuedSecret::TemporaryPassword { user_id, password });
                    }
                    // After the append: carried out for recorded commands only.
                    Effect::DeleteCredential(_) | Effect::EndSessions(_) => {}
                }
            }
            let stream = StreamName::new(decision.stream.clone())?;
            let expected = decision
                .expected_revision
                .map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact);
            let events = decision
                .events
                .iter()
                .map(|event| envelope::new_event(event, &actor, ids, now))
                .collect::<Result<Vec<_>, _>>()?;
            match self.store.append(&stream, expected, events).await {
                Ok(result) => {
                    self.catch_up(&mut model).await?;
                    let sessions_to_end = self.after_recording(&decision.effects);
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
                    tracing::debug!(command = request.command.name(), stream = %stream, "recorded");
                    return Ok(Outcome {
                        command_id: request.command_id,
                        stream: decision.stream,
                        revision: result.revision,
                        events,
                        replayed: false,
                        secrets,
                        sessions_to_end,
                    });
                }
                Err(StoreError::WrongExpectedRevision { .. })
                    if attempts <= self.config.conflict_retries_max =>
                {
                    tracing::debug!(stream = %stream, attempts, "conflict; deciding again");
                    continue;
                }
                Err(StoreError::WrongExpectedRevision { .. }) => {
                    return Err(HandleError::Contention {
                        stream: decision.stream,
                        attempts,
                    });
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Carries out the effects due once a command is recorded (again on each retry: see
    /// [`Effect::repeated_on_retry`]) and returns the users whose sessions the caller must
    /// end. A removed user's password must stop working at once; the log already says the
    /// user is removed, so a failure here is logged rather than failing the recorded
    /// command.
    fn after_recording(&self, effects: &[Effect]) -> Vec<UserId> {
        let mut sessions_to_end = Vec::new();
        for effect in effects {
            match *effect {
                Effect::DeleteCredential(user_id) => {
                    if let Err(error) = self.credentials.remove(&user_id.to_string()) {
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
        let sessions_to_end = self.after_recording(&repeated);
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
                .read_all(model.next, Direction::Forwards, CATCH_UP_PAGE_EVENTS)
                .await?;
            if page.is_empty() {
                return Ok(());
            }
            for recorded in &page {
                model.apply(recorded);
                model.next = ReadFrom::At(recorded.position.0 + 1);
                model.head = Some(recorded.position);
            }
        }
    }
}

impl WriteModel {
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
