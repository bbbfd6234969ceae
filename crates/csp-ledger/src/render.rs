//! How recorded events are shown: one JSON object per event for machines, one line per event
//! for people, and CSV rows for spreadsheets.

use serde_json::{Value, json};
use store::RecordedEvent;

/// The export columns, in order.
pub const CSV_COLUMNS: [&str; 13] = [
    "position",
    "stream",
    "revision",
    "event_id",
    "event_type",
    "schema_version",
    "recorded_at",
    "actor",
    "command_id",
    "correlation_id",
    "causation_id",
    "payload",
    "payload_msgpack_hex",
];

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
        "payload_msgpack_hex": hex(&event.payload),
    })
}

/// The event as a CSV row, in [`CSV_COLUMNS`] order.
pub fn event_row(event: &RecordedEvent) -> Vec<String> {
    let object = event_json(event);
    CSV_COLUMNS
        .iter()
        .map(|column| match &object[*column] {
            Value::String(text) => text.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        })
        .collect()
}

/// One line for a person: position, time, stream@revision, type, actor.
pub fn event_line(event: &RecordedEvent) -> String {
    format!(
        "{:>8}  {}  {}@{}  {}  by {}",
        event.position.0,
        event.recorded_at.format("%Y-%m-%d %H:%M:%S%.3fZ"),
        event.stream,
        event.revision,
        event.event_type,
        actor_short(&event.actor),
    )
}

/// A short form of the envelope's actor JSON, for people.
pub fn actor_short(actor: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(actor) else {
        return actor.to_string();
    };
    let kind = value["kind"].as_str().unwrap_or("?");
    match kind {
        "user" => format!("user {}", value["user_id"].as_str().unwrap_or("?")),
        "tenant_admin" => format!("tenant admin {}", value["email"].as_str().unwrap_or("?")),
        "customer_admin" => format!(
            "customer admin of {}",
            value["tenant_id"].as_str().unwrap_or("?")
        ),
        other => other.replace('_', " "),
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}
