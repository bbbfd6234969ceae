//! What a decision is given from outside (clock, actor, fresh ids, token hashes) and what it
//! gives back, plus the envelope facts that evolving needs.
//!
//! The domain does no I/O: everything that varies between runs comes in through [`Context`],
//! so the same state, command and context always give the same decision.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::effects::Effect;
use crate::events::Event;
use crate::ids::{Email, SecretHash, TenantId, UserId};

/// Who issues a command. The command handler establishes it (sign-in, directory claims, a
/// link's token); the domain decides what each actor may do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// The program operator (the vendor).
    Operator,
    /// A signed-in partner user.
    User {
        /// The user.
        user_id: UserId,
    },
    /// The global admin of a work-account tenant that is not yet a partner, as asserted by
    /// the directory; starts and completes an enrollment.
    TenantAdmin {
        /// The tenant.
        tenant_id: TenantId,
        /// The admin's sign-in email.
        email: Email,
        /// The admin's display name.
        name: String,
    },
    /// A customer tenant's global admin, as asserted by the directory.
    CustomerAdmin {
        /// The customer's tenant.
        tenant_id: TenantId,
        /// The SHA-256 of the invitation link's token, when acting through a link (accepting
        /// an invitation needs it; other customer actions do not).
        token: Option<SecretHash>,
    },
    /// Whoever opened a primary-contact verification link.
    PrimaryContact {
        /// The SHA-256 of the link's token.
        token: SecretHash,
    },
    /// The ledger itself, recording facts observed elsewhere (MPN profiles).
    System,
}

impl Actor {
    /// A partner user actor.
    pub fn user(user_id: UserId) -> Self {
        Actor::User { user_id }
    }

    /// A short word naming the kind of actor, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::Operator => "operator",
            Actor::User { .. } => "partner user",
            Actor::TenantAdmin { .. } => "tenant admin",
            Actor::CustomerAdmin { .. } => "customer admin",
            Actor::PrimaryContact { .. } => "primary contact",
            Actor::System => "system",
        }
    }
}

/// How an actor was established, recorded beside it in every event's envelope so that an
/// auditor can tell a proven actor from an asserted one. The domain never reads it: what an
/// actor may do depends on who it is, and the edges decide what proves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Proof {
    /// A directory token (OpenID Connect JWT) verified against its issuer's keys.
    DirectoryToken {
        /// The token's issuer.
        issuer: String,
        /// The directory user (`oid` or `sub`).
        subject: String,
    },
    /// A session of the ledger's own sign-in (email and password in the credential store).
    SignIn,
    /// The operator key configured at start.
    OperatorKey,
    /// The token of a link the ledger issued (a primary contact's verification link).
    LinkToken,
    /// The ledger itself, recording what it observed.
    Ledger,
    /// Named by whoever submitted the event, not proven: the `apply` import path, the demo,
    /// the KurrentDB door's store-admin appends.
    Asserted {
        /// The path it came in by.
        by: String,
    },
}

/// An actor as the envelope records it: who, and how that was established. Encoded as the
/// actor's own JSON with a `proven_by` field beside its `kind`, so that readers of the actor
/// alone (and envelopes written before proofs were recorded) still read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorRecord {
    /// Who.
    #[serde(flatten)]
    pub actor: Actor,
    /// How it was established; absent in envelopes written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proven_by: Option<Proof>,
}

/// Everything a decision needs from outside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// The ledger's clock at decision time.
    pub now: DateTime<Utc>,
    /// Who issues the command.
    pub actor: Actor,
    /// One fresh UUIDv7 for the entity a command creates. Commands that create several
    /// entities derive the others with [`Context::derived_id`].
    pub new_id: Uuid,
    /// The SHA-256 of a fresh link token the handler generated, for a decision that issues
    /// one: such a decision records it and says so ([`Effect::IssueLinkToken`]), and the
    /// handler then returns the token once and keeps nothing else.
    pub secret_hash: Option<SecretHash>,
}

impl Context {
    /// The `index`-th extra id for a command that creates several entities (the first user
    /// of an onboarded provider, the subscriptions of an order). Index 0 is `new_id` itself.
    ///
    /// Derived rather than passed in so that a context stays one value: the result keeps
    /// `new_id`'s 48-bit millisecond timestamp (it still sorts as a UUIDv7 made at the same
    /// instant) and fills the 74 random bits from SHA-256(`new_id` ‖ `index`), which is as
    /// unpredictable and collision-free as the random bits of `new_id` itself.
    pub fn derived_id(&self, index: u32) -> Uuid {
        if index == 0 {
            return self.new_id;
        }
        let mut hasher = Sha256::new();
        hasher.update(self.new_id.as_bytes());
        hasher.update(index.to_be_bytes());
        let digest = hasher.finalize();
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&self.new_id.as_bytes()[..6]);
        bytes[6..].copy_from_slice(&digest[..10]);
        bytes[6] = (bytes[6] & 0x0f) | 0x70; // version 7
        bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 9562 variant
        Uuid::from_bytes(bytes)
    }
}

/// The envelope facts that evolving the state needs for one recorded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventMeta {
    /// The stream the event is in.
    pub stream: String,
    /// Its revision in that stream (0 for the first event).
    pub stream_revision: u64,
    /// Its position in the whole log; strictly increasing.
    pub global_position: u64,
    /// When the ledger recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Who caused it.
    pub actor: Actor,
}

/// What a command decided: append these events to this one stream, if its revision is still
/// the expected one, and carry out these effects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The one stream the command writes.
    pub stream: String,
    /// The stream's last revision the decision was made on; `None` means the stream must not
    /// exist yet.
    pub expected_revision: Option<u64>,
    /// The events to append, in order; never empty, at most [`Decision::EVENTS_MAX`].
    pub events: Vec<Event>,
    /// What the shell must do besides appending: secrets to hand out, credentials to
    /// delete, sessions to end.
    pub effects: Vec<Effect>,
}

impl Decision {
    /// The most events one command appends (an order of the most lines is one event).
    pub const EVENTS_MAX: usize = 4;

    /// The decision to append `events` to `stream`, made on the stream's revision
    /// `expected_revision`, with the effects those events cause.
    pub(crate) fn new(stream: String, expected_revision: Option<u64>, events: Vec<Event>) -> Self {
        Decision {
            effects: Effect::of(&events),
            stream,
            expected_revision,
            events,
        }
    }
}
