//! Between the domain's events and the store's envelopes: encoding on the way in, decoding
//! (with upcasting) on the way out.

use domain::{Actor, ActorRecord, Event, EventMeta, Proof};
use store::{NewEvent, RecordedEvent};
use uuid::Uuid;

use crate::HandleError;

/// Envelope ids shared by the events of one command.
#[derive(Clone, Copy, Debug)]
pub struct Ids {
    /// The command that produced the events.
    pub command_id: Uuid,
    /// The business conversation they belong to.
    pub correlation_id: Uuid,
    /// What directly caused them (the command).
    pub causation_id: Uuid,
}

/// The envelope text of an actor and how it was proven: JSON ([`ActorRecord`]), so auditors
/// and downstream services read it without the domain's code.
pub fn actor_text(actor: &Actor, proof: &Proof) -> Result<String, HandleError> {
    let record = ActorRecord {
        actor: actor.clone(),
        proven_by: Some(proof.clone()),
    };
    serde_json::to_string(&record).map_err(|error| HandleError::Encoding(error.to_string()))
}

/// Builds the envelope of a domain event.
pub fn new_event(
    event: &Event,
    actor: &str,
    ids: Ids,
    recorded_at: chrono::DateTime<chrono::Utc>,
) -> Result<NewEvent, HandleError> {
    let payload = event
        .encode()
        .map_err(|error| HandleError::Encoding(error.to_string()))?;
    Ok(NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event.event_type().to_string(),
        schema_version: event.schema_version(),
        recorded_at,
        actor: actor.to_string(),
        command_id: ids.command_id,
        correlation_id: ids.correlation_id,
        causation_id: ids.causation_id,
        payload,
    })
}

/// Decodes a recorded event into the domain's terms. An event the domain cannot read is
/// reported with its position: the write model must never skip a fact.
pub fn decode(recorded: &RecordedEvent) -> Result<(EventMeta, Event), HandleError> {
    let corrupt = |reason: String| HandleError::Undecodable {
        position: recorded.position.0,
        reason,
    };
    let event = Event::decode(
        &recorded.event_type,
        recorded.schema_version,
        &recorded.payload,
    )
    .map_err(|error| corrupt(error.to_string()))?;
    let actor: Actor = serde_json::from_str(&recorded.actor)
        .map_err(|error| corrupt(format!("actor {:?}: {error}", recorded.actor)))?;
    let meta = EventMeta {
        stream: recorded.stream.as_str().to_string(),
        stream_revision: recorded.revision,
        global_position: recorded.position.0,
        recorded_at: recorded.recorded_at,
        actor,
    };
    Ok((meta, event))
}

/// Checks an event proposed outside the command path (the KurrentDB door's store-admin
/// appends) before anything is written, and returns it as it is to be recorded. Refused:
/// a stream that is not the ledger's, an unknown type, a version other than the current
/// one, a payload that does not decode, an actor that is not the ledger's actor JSON.
/// The actor is recorded as asserted `by` the path it came in by (`enveloped` false: the
/// proposer named none, so it is the operator, who holds the store-admin key), since
/// nothing here proves who it names.
pub fn admit_asserted(
    stream: &str,
    mut event: NewEvent,
    enveloped: bool,
    by: &str,
) -> Result<NewEvent, String> {
    if !domain::streams::is_ledger_stream(stream) {
        return Err(format!(
            "stream {stream:?} is not one of the ledger's (their names start with {})",
            domain::streams::PREFIXES.join(", ")
        ));
    }
    let current = domain::current_version(&event.event_type)
        .ok_or_else(|| format!("unknown event type {:?}", event.event_type))?;
    if event.schema_version != current {
        return Err(format!(
            "{} is at version {current} here, not {}",
            event.event_type, event.schema_version
        ));
    }
    Event::decode(&event.event_type, event.schema_version, &event.payload)
        .map_err(|error| format!("{}: {error}", event.event_type))?;
    let actor = if enveloped {
        serde_json::from_str::<ActorRecord>(&event.actor)
            .map_err(|error| format!("actor {:?} is not the ledger's actor: {error}", event.actor))?
            .actor
    } else {
        Actor::Operator
    };
    event.actor = actor_text(&actor, &Proof::Asserted { by: by.to_string() })
        .map_err(|error| error.to_string())?;
    Ok(event)
}
