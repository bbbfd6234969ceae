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

/// An event's payload as JSON: the fields of its MessagePack form, ids and times as the
/// strings the HTTP API shows (the domain's JSON form, less its `type` tag, which the
/// envelope carries). For readers of the KurrentDB door that ask for JSON.
pub fn payload_to_json(event: &Event) -> Result<Vec<u8>, String> {
    let mut value = serde_json::to_value(event).map_err(|error| error.to_string())?;
    if let Some(fields) = value.as_object_mut() {
        fields.remove("type");
    }
    serde_json::to_vec(&value).map_err(|error| error.to_string())
}

/// Reads a JSON payload of `event_type` at its current version (the inverse of
/// [`payload_to_json`]), checked as the MessagePack form is.
pub fn payload_from_json(event_type: &str, json: &[u8]) -> Result<Event, String> {
    if domain::current_version(event_type).is_none() {
        return Err(format!("unknown event type {event_type:?}"));
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(json).map_err(|error| format!("{event_type}: {error}"))?;
    let fields = value
        .as_object_mut()
        .ok_or_else(|| format!("{event_type}: a payload is a JSON object"))?;
    if fields.contains_key("type") {
        return Err(format!(
            "{event_type}: the payload names no type of its own (the event's type is its type)"
        ));
    }
    fields.insert("type".into(), serde_json::Value::String(event_type.into()));
    serde_json::from_value(value).map_err(|error| format!("{event_type}: {error}"))
}

#[cfg(test)]
mod json_tests {
    use super::*;

    #[test]
    fn every_sample_reads_back_from_its_json_as_the_same_payload() {
        for sample in domain::sample_events() {
            let json = payload_to_json(&sample).unwrap_or_else(|e| panic!("{e}"));
            let back = payload_from_json(sample.event_type(), &json)
                .unwrap_or_else(|e| panic!("{}: {e}", sample.event_type()));
            assert_eq!(back, sample);
            assert_eq!(back.encode().ok(), sample.encode().ok());
        }
        assert!(payload_from_json("Happened", b"{}").is_err());
        assert!(payload_from_json("EnrollmentStarted", b"{}").is_err());
        assert!(payload_from_json("EnrollmentStarted", b"[]").is_err());
        let other = payload_to_json(&domain::sample_events()[1]).unwrap_or_default();
        assert!(
            payload_from_json("EnrollmentStarted", &other).is_err(),
            "another type's payload"
        );
    }
}
