//! The ledger's envelope fields that a KurrentDB event lacks, carried as the event's custom
//! metadata (one JSON object), and the chained body used on KurrentDB.
//!
//! ```json
//! {"$correlationId":"…","$causationId":"…","schemaVersion":1,"actor":"operator",
//!  "commandId":"…","recordedAt":"2026-09-21T10:00:00.123456789Z","chain":"…64 hex…",
//!  "leaseEpoch":2}
//! ```
//!
//! Both sides of this crate use it: the backend writes and reads it, and the protocol server
//! reads it from appends and writes it into read responses.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use store::codec::{self, ChainValue};
use store::{Position, RecordedEvent};
use uuid::Uuid;

/// The content type of every ledger payload (MessagePack, opaque to the store).
pub const CONTENT_TYPE: &str = "application/octet-stream";

/// The custom metadata of a ledger event.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeMetadata {
    /// Groups the events of one business conversation (KurrentDB's name).
    #[serde(rename = "$correlationId")]
    pub correlation_id: Uuid,
    /// The command or event that directly caused this one (KurrentDB's name).
    #[serde(rename = "$causationId")]
    pub causation_id: Uuid,
    /// Version of the payload's schema.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u16,
    /// Who caused the event.
    pub actor: String,
    /// The command that produced the event.
    #[serde(rename = "commandId")]
    pub command_id: Uuid,
    /// When the ledger recorded the fact.
    #[serde(rename = "recordedAt")]
    pub recorded_at: DateTime<Utc>,
    /// The chain value after this event, as 64 lowercase hex digits (absent on events that
    /// were appended by a client that does not compute it; the protocol server fills it in
    /// when serving).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    /// SHA-256 of the record's canonical bytes ([`store::codec::encode_body`], the leaf of
    /// the ledger's Merkle tree), as 64 lowercase hex digits: served to readers that read
    /// events as JSON, whose data is then not the bytes the ledger hashed, so that they can
    /// still tie an event to the log.
    #[serde(
        rename = "recordSha256",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub record_sha256: Option<String>,
    /// The writer lease's epoch under which the event was appended (see [`crate::lease`]):
    /// an event with an epoch below that of the last take before it is void. Absent on
    /// events written without a lease (epoch 0).
    #[serde(
        rename = "leaseEpoch",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub lease_epoch: Option<u64>,
}

impl EnvelopeMetadata {
    /// The metadata of a recorded event, with its chain value.
    pub fn of(event: &RecordedEvent, chain: Option<&ChainValue>) -> Self {
        Self {
            correlation_id: event.correlation_id,
            causation_id: event.causation_id,
            schema_version: event.schema_version,
            actor: event.actor.clone(),
            command_id: event.command_id,
            recorded_at: event.recorded_at,
            chain: chain.map(codec::chain_hex),
            record_sha256: None,
            lease_epoch: None,
        }
    }

    /// Encodes as JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing a struct of strings, numbers and UUIDs to a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes JSON bytes; the error says what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|error| format!("bad envelope metadata: {error}"))
    }

    /// SHA-256 of `event`'s canonical bytes in hex (see [`EnvelopeMetadata::record_sha256`]).
    pub fn record_sha256_of(event: &RecordedEvent) -> String {
        use sha2::Digest as _;
        let mut body = Vec::with_capacity(codec::body_len(event));
        codec::encode_body(event, &mut body);
        codec::chain_hex(&sha2::Sha256::digest(&body).into())
    }

    /// The chain value, decoded from hex.
    pub fn chain_value(&self) -> Result<Option<ChainValue>, String> {
        let Some(hex) = &self.chain else {
            return Ok(None);
        };
        parse_chain_hex(hex).map(Some)
    }
}

/// Parses 64 hex digits into a chain value.
pub fn parse_chain_hex(hex: &str) -> Result<ChainValue, String> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return Err(format!(
            "chain value must be 64 hex digits, got {}",
            bytes.len()
        ));
    }
    let mut out = [0u8; 32];
    for (index, pair) in bytes.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).map_err(|_| "chain value is not hex".to_string())?;
        out[index] =
            u8::from_str_radix(text, 16).map_err(|_| format!("chain value {hex:?} is not hex"))?;
    }
    Ok(out)
}

/// The chain value after `event`, given the one before it, as chained on KurrentDB: the
/// canonical body with the position field set to 0, because KurrentDB assigns positions only
/// when it commits (see the crate docs).
pub fn chain_after(previous: &ChainValue, event: &RecordedEvent) -> ChainValue {
    let mut body = Vec::new();
    chain_body(event, &mut body);
    codec::chain_next(previous, &body)
}

/// Writes the chained body of `event` into `out`: [`codec::encode_body`] with position 0.
pub fn chain_body(event: &RecordedEvent, out: &mut Vec<u8>) {
    out.clear();
    let unplaced = RecordedEvent {
        position: Position(0),
        ..event.clone()
    };
    codec::encode_body(&unplaced, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_with_kurrentdb_names() {
        let metadata = EnvelopeMetadata {
            correlation_id: Uuid::from_u128(1),
            causation_id: Uuid::from_u128(2),
            schema_version: 3,
            actor: "user:1".into(),
            command_id: Uuid::from_u128(4),
            recorded_at: DateTime::<Utc>::from_timestamp_nanos(1_790_000_000_123_456_789),
            chain: Some(codec::chain_hex(&[7; 32])),
            record_sha256: None,
            lease_epoch: Some(2),
        };
        let bytes = metadata.to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("\"$correlationId\""), "{text}");
        assert!(text.contains("\"$causationId\""), "{text}");
        assert_eq!(EnvelopeMetadata::from_bytes(&bytes), Ok(metadata.clone()));
        assert_eq!(metadata.chain_value(), Ok(Some([7; 32])));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let refused = EnvelopeMetadata::from_bytes(br#"{"surprise":1}"#);
        assert!(refused.is_err());
    }
}
