//! The canonical byte encoding of a recorded event, and the hash chain over it.
//!
//! Every backend chains the same bytes, so the chain value of an event does not depend on
//! where it is stored. The body of a record is, in order (integers little-endian):
//!
//! | field            | bytes | notes                                  |
//! |------------------|-------|----------------------------------------|
//! | format version   | 1     | [`BODY_FORMAT_VERSION`]                |
//! | position         | 8     | global position                        |
//! | revision         | 8     | 0-based revision in the stream         |
//! | event id         | 16    | UUID bytes                             |
//! | command id       | 16    |                                        |
//! | correlation id   | 16    |                                        |
//! | causation id     | 16    |                                        |
//! | recorded at      | 8     | signed nanoseconds since the Unix epoch|
//! | schema version   | 2     |                                        |
//! | stream length    | 2     | then the UTF-8 stream name             |
//! | type length      | 2     | then the UTF-8 event type              |
//! | actor length     | 2     | then the UTF-8 actor                   |
//! | payload length   | 4     | then the payload bytes                 |
//!
//! The chain value of record *n* is `SHA-256(chain(n-1) ‖ body(n))`, with 32 zero bytes
//! before the first record. Changing, removing or reordering any record changes every chain
//! value after it.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{Position, RecordedEvent, StreamName};

/// Version of the body layout above. Bumped only with a reader for the old one.
pub const BODY_FORMAT_VERSION: u8 = 1;
/// Bytes of the fixed part of a body, before the variable-length fields.
pub const BODY_FIXED_BYTES: usize = 1 + 8 + 8 + 16 * 4 + 8 + 2 + 2 + 2 + 2 + 4;
/// The chain value before the first record.
pub const GENESIS_CHAIN: ChainValue = [0; 32];

/// A SHA-256 chain value.
pub type ChainValue = [u8; 32];

/// Appends the body of `event` to `out`.
///
/// The lengths were checked by [`crate::validate_batch`] before the event was placed; an event
/// that breaks them here is a bug, hence the assertions.
pub fn encode_body(event: &RecordedEvent, out: &mut Vec<u8>) {
    let stream = event.stream.as_str().as_bytes();
    let event_type = event.event_type.as_bytes();
    let actor = event.actor.as_bytes();
    assert!(stream.len() <= usize::from(u16::MAX));
    assert!(event_type.len() <= usize::from(u16::MAX));
    assert!(actor.len() <= usize::from(u16::MAX));
    assert!(event.payload.len() <= u32::MAX as usize);
    out.reserve(body_len(event));
    out.push(BODY_FORMAT_VERSION);
    out.extend_from_slice(&event.position.0.to_le_bytes());
    out.extend_from_slice(&event.revision.to_le_bytes());
    out.extend_from_slice(event.event_id.as_bytes());
    out.extend_from_slice(event.command_id.as_bytes());
    out.extend_from_slice(event.correlation_id.as_bytes());
    out.extend_from_slice(event.causation_id.as_bytes());
    let nanos = event.recorded_at.timestamp_nanos_opt();
    assert!(nanos.is_some(), "recorded-at was validated on append");
    out.extend_from_slice(&nanos.unwrap_or_default().to_le_bytes());
    out.extend_from_slice(&event.schema_version.to_le_bytes());
    out.extend_from_slice(&(stream.len() as u16).to_le_bytes());
    out.extend_from_slice(stream);
    out.extend_from_slice(&(event_type.len() as u16).to_le_bytes());
    out.extend_from_slice(event_type);
    out.extend_from_slice(&(actor.len() as u16).to_le_bytes());
    out.extend_from_slice(actor);
    out.extend_from_slice(&(event.payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&event.payload);
}

/// The number of bytes [`encode_body`] writes for `event`.
pub fn body_len(event: &RecordedEvent) -> usize {
    BODY_FIXED_BYTES
        + event.stream.as_str().len()
        + event.event_type.len()
        + event.actor.len()
        + event.payload.len()
}

/// Decodes a body written by [`encode_body`]. The error is a plain reason: the caller knows
/// where the bytes came from and wraps it into a [`crate::Damage`].
pub fn decode_body(bytes: &[u8]) -> Result<RecordedEvent, String> {
    let mut reader = Reader { bytes, at: 0 };
    let version = reader.u8()?;
    if version != BODY_FORMAT_VERSION {
        return Err(format!("unknown record format version {version}"));
    }
    let position = Position(reader.u64()?);
    let revision = reader.u64()?;
    let event_id = reader.uuid()?;
    let command_id = reader.uuid()?;
    let correlation_id = reader.uuid()?;
    let causation_id = reader.uuid()?;
    let recorded_at = DateTime::<Utc>::from_timestamp_nanos(reader.u64()? as i64);
    let schema_version = reader.u16()?;
    let stream_len = usize::from(reader.u16()?);
    let stream = StreamName::new(reader.text(stream_len)?)
        .map_err(|error| format!("bad stream name: {error}"))?;
    let type_len = usize::from(reader.u16()?);
    let event_type = reader.text(type_len)?;
    let actor_len = usize::from(reader.u16()?);
    let actor = reader.text(actor_len)?;
    let payload_len = reader.u32()? as usize;
    let payload = reader.take(payload_len)?.to_vec();
    if reader.at != bytes.len() {
        return Err(format!(
            "{} unexpected bytes after the payload",
            bytes.len() - reader.at
        ));
    }
    Ok(RecordedEvent {
        event_id,
        stream,
        revision,
        position,
        event_type,
        schema_version,
        recorded_at,
        actor,
        command_id,
        correlation_id,
        causation_id,
        payload,
    })
}

/// The next chain value: `SHA-256(previous ‖ body)`.
pub fn chain_next(previous: &ChainValue, body: &[u8]) -> ChainValue {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(body);
    hasher.finalize().into()
}

/// Formats a chain value as lowercase hex, for reports.
pub fn chain_hex(chain: &ChainValue) -> String {
    chain.iter().map(|byte| format!("{byte:02x}")).collect()
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "record body ends early: needs {len} bytes at {}, has {}",
                    self.at,
                    self.bytes.len()
                )
            })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn uuid(&mut self) -> Result<Uuid, String> {
        Ok(Uuid::from_bytes(self.array()?))
    }

    fn text(&mut self, len: usize) -> Result<String, String> {
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "text field is not UTF-8".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(payload: Vec<u8>, nanos: i64, actor: String) -> RecordedEvent {
        RecordedEvent {
            event_id: Uuid::from_u128(1),
            stream: StreamName::new("partner-1").unwrap_or_else(|e| panic!("{e}")),
            revision: 3,
            position: Position(42),
            event_type: "EnrollmentStarted".into(),
            schema_version: 2,
            recorded_at: DateTime::<Utc>::from_timestamp_nanos(nanos),
            actor,
            command_id: Uuid::from_u128(2),
            correlation_id: Uuid::from_u128(3),
            causation_id: Uuid::from_u128(4),
            payload,
        }
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(payload in proptest::collection::vec(any::<u8>(), 0..512), nanos in any::<i64>(), actor in "[a-z:0-9-]{0,40}") {
            let original = event(payload, nanos, actor);
            let mut bytes = Vec::new();
            encode_body(&original, &mut bytes);
            prop_assert_eq!(bytes.len(), body_len(&original));
            prop_assert_eq!(decode_body(&bytes), Ok(original));
        }

        #[test]
        fn truncated_bodies_are_refused(cut in 0usize..100) {
            let original = event(vec![7; 20], 0, "operator".into());
            let mut bytes = Vec::new();
            encode_body(&original, &mut bytes);
            let cut = cut.min(bytes.len() - 1);
            prop_assert!(decode_body(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn chain_depends_on_order() {
        let a = chain_next(&GENESIS_CHAIN, b"a");
        let ab = chain_next(&a, b"b");
        let b = chain_next(&GENESIS_CHAIN, b"b");
        let ba = chain_next(&b, b"a");
        assert_ne!(ab, ba);
    }
}
