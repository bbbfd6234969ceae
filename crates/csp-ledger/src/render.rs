//! How recorded events are shown: one JSON object per event for machines, one line per event
//! for people, and CSV rows for spreadsheets.

use serde_json::Value;
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

/// The event as a JSON object (the same as the HTTP API's).
pub fn event_json(event: &RecordedEvent) -> Value {
    server::render::event_json(event)
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
