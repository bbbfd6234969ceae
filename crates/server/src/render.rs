//! How recorded events are shown to machines: one JSON object per event, the same for the
//! HTTP API, the event feed and the command line's `--json` output.

use serde_json::{Value, json};
use store::RecordedEvent;

/// The event as a JSON object: the whole envelope, the payload decoded by the domain (null
/// when this version of the code cannot read it) and the payload's exact bytes in hex, so
/// that an export can be checked against the log byte for byte.
pub fn event_json(event: &RecordedEvent) -> Value {
    let payload = domain::Event::decode(&event.event_type, event.schema_version, &event.payload)
        .ok()
        .and_then(|decoded| serde_json::to_value(decoded).ok())
        .map(|mut value| {
            // The type is already in the envelope.
            if let Some(object) = value.as_object_mut() {
                object.remove("type");
            }
            value
        })
        .unwrap_or(Value::Null);
    let actor = serde_json::from_str::<Value>(&event.actor)
        .unwrap_or_else(|_| Value::String(event.actor.clone()));
    json!({
        "position": event.position.0,
        "stream": event.stream.as_str(),
        "revision": event.revision,
        "event_id": event.event_id,
        "event_type": event.event_type,
        "schema_version": event.schema_version,
        "recorded_at": event.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "actor": actor,
        "command_id": event.command_id,
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "payload": payload,
        "payload_msgpack_hex": crate::auth::hex(&event.payload),
    })
}

/// [`event_json`] with the event's place in the verifiable history: `leaf_index` (its leaf
/// in the Merkle tree, `null` when the tree has not reached it) and `record`, the standard
/// base64 of its canonical bytes (the leaf's bytes, which the hash chain covers too), so that
/// a reader can check it against a checkpoint without trusting the decoded fields.
pub fn event_json_in_tree(event: &RecordedEvent, leaf_index: Option<u64>) -> Value {
    use base64::Engine as _;
    let mut value = event_json(event);
    value["leaf_index"] = json!(leaf_index);
    value["record"] =
        json!(base64::engine::general_purpose::STANDARD.encode(transparency::record_bytes(event)));
    value
}

/// A secret a command created, for a machine reader (shown once; the ledger keeps no copy).
pub fn secret_json(secret: &handler::IssuedSecret) -> Value {
    match secret {
        handler::IssuedSecret::LinkToken(token) => json!({"kind": "link_token", "token": token}),
        handler::IssuedSecret::TemporaryPassword { user_id, password } => {
            json!({"kind": "temporary_password", "user_id": user_id, "password": password})
        }
    }
}

/// What a recorded command did, as JSON.
pub fn outcome_json(name: &str, outcome: &handler::Outcome) -> Value {
    let events: Vec<Value> = outcome
        .events
        .iter()
        .map(|recorded| {
            let mut payload = serde_json::to_value(&recorded.event).unwrap_or(Value::Null);
            if let Some(object) = payload.as_object_mut() {
                object.remove("type");
            }
            json!({
                "position": recorded.position.0,
                "event_type": recorded.event_type,
                "payload": payload,
            })
        })
        .collect();
    json!({
        "command_id": outcome.command_id,
        "command": name,
        "status": if outcome.replayed { "replayed" } else { "recorded" },
        "stream": outcome.stream,
        "revision": outcome.revision,
        "position": outcome.events.last().map(|e| e.position.0),
        "events": events,
        "secrets": outcome.secrets.iter().map(secret_json).collect::<Vec<_>>(),
    })
}
