//! The bytes on disk: segment headers, record frames and the fields of a body the index needs.
//!
//! The layout is specified in the crate documentation; this module is its only implementation.

use std::path::{Path, PathBuf};

use store::codec::{self, ChainValue};
use store::{ACTOR_BYTES_MAX, EVENT_TYPE_BYTES_MAX, PAYLOAD_BYTES_MAX, STREAM_NAME_BYTES_MAX};

/// The first bytes of every segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"CSPLEDG\0";
/// Version of the segment and record framing. Bumped only with a reader for the old one.
pub(crate) const SEGMENT_FORMAT_VERSION: u32 = 1;
/// Bytes of a segment header.
pub(crate) const HEADER_BYTES: usize = 64;
/// Bytes of a record frame around its body: length, CRC before it, chain value after it.
pub(crate) const FRAME_BYTES: usize = 4 + 4 + 32;
/// Bytes before the body in a record frame.
pub(crate) const FRAME_PREFIX_BYTES: usize = 8;
/// The largest body a valid event can have; a length above it is damage, not data.
pub(crate) const BODY_BYTES_MAX: usize = codec::BODY_FIXED_BYTES
    + STREAM_NAME_BYTES_MAX
    + EVENT_TYPE_BYTES_MAX
    + ACTOR_BYTES_MAX
    + PAYLOAD_BYTES_MAX;
/// The smallest record frame a valid event can have.
pub(crate) const RECORD_BYTES_MIN: usize = FRAME_BYTES + codec::BODY_FIXED_BYTES;

// Offsets of the body fields the index reads at open, so that open does not decode whole
// events. They follow `store::codec`'s table; a unit test checks them against `encode_body`.
const BODY_POSITION: usize = 1;
const BODY_REVISION: usize = 9;
const BODY_EVENT_ID: usize = 17;
const BODY_RECORDED_AT: usize = 81;
const BODY_STREAM_LEN: usize = 91;
const BODY_STREAM: usize = 93;

/// The file name of the segment whose first record has `first_position`.
pub(crate) fn segment_file_name(first_position: u64) -> String {
    format!("{first_position:020}.seg")
}

/// The first position encoded in a segment file name, if `path` names a segment.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<Result<u64, ()>> {
    let stem = name.strip_suffix(".seg")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Err(()));
    }
    Some(stem.parse().map_err(|_| ()))
}

/// The segment directory inside a data directory.
pub(crate) fn log_dir(dir: &Path) -> PathBuf {
    dir.join("log")
}

/// A decoded segment header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct SegmentHeader {
    /// Position of the segment's first record.
    pub first_position: u64,
    /// Chain value after the record before the segment's first one.
    pub carried_chain: ChainValue,
}

impl SegmentHeader {
    /// The header's bytes.
    pub(crate) fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut out = [0; HEADER_BYTES];
        out[0..8].copy_from_slice(&SEGMENT_MAGIC);
        out[8..12].copy_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&self.first_position.to_le_bytes());
        out[24..56].copy_from_slice(&self.carried_chain);
        let crc = crc32c::crc32c(&out[0..56]);
        out[56..60].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks a header; the error says what is wrong.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < HEADER_BYTES {
            return Err(format!(
                "segment header cut short: {} of {HEADER_BYTES} bytes",
                bytes.len()
            ));
        }
        let stored_crc = read_u32(bytes, 56);
        if crc32c::crc32c(&bytes[0..56]) != stored_crc {
            return Err("segment header checksum mismatch".into());
        }
        if bytes[0..8] != SEGMENT_MAGIC {
            return Err("not a csp-ledger segment (bad magic bytes)".into());
        }
        let version = read_u32(bytes, 8);
        if version != SEGMENT_FORMAT_VERSION {
            return Err(format!("unknown segment format version {version}"));
        }
        if bytes[12..16] != [0; 4] || bytes[60..64] != [0; 4] {
            return Err("reserved segment header bytes are not zero".into());
        }
        let mut carried_chain = [0; 32];
        carried_chain.copy_from_slice(&bytes[24..56]);
        Ok(Self {
            first_position: read_u64(bytes, 16),
            carried_chain,
        })
    }
}

/// Appends one record frame holding `event` to `out`, chained after `previous`; returns the
/// record's chain value.
pub(crate) fn encode_record(
    event: &store::RecordedEvent,
    previous: &ChainValue,
    out: &mut Vec<u8>,
) -> ChainValue {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_PREFIX_BYTES]);
    codec::encode_body(event, out);
    let body_len = out.len() - start - FRAME_PREFIX_BYTES;
    assert!(
        body_len <= BODY_BYTES_MAX,
        "validate_batch bounds every field"
    );
    out[start..start + 4].copy_from_slice(&(body_len as u32).to_le_bytes());
    let chain = codec::chain_next(previous, &out[start + FRAME_PREFIX_BYTES..]);
    out.extend_from_slice(&chain);
    let crc = record_crc(&out[start..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    // A checksum is checked right before writing: the frame must read back as it was meant.
    debug_assert_eq!(check_frame(&out[start..]), Ok(out.len() - start));
    chain
}

/// The CRC32C of a whole frame: over the length field, the body and the chain value.
fn record_crc(frame: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&frame[0..4]), &frame[FRAME_PREFIX_BYTES..])
}

/// Checks the frame at the start of `bytes`: a plausible length that fits, and a matching
/// CRC. Returns the frame's length. Errors here are what a torn write looks like.
pub(crate) fn check_frame(bytes: &[u8]) -> Result<usize, String> {
    if bytes.len() < FRAME_PREFIX_BYTES {
        return Err(format!(
            "record frame cut short: {} bytes left in the file",
            bytes.len()
        ));
    }
    let body_len = read_u32(bytes, 0) as usize;
    if !(codec::BODY_FIXED_BYTES..=BODY_BYTES_MAX).contains(&body_len) {
        return Err(format!("implausible record body length {body_len}"));
    }
    let frame_len = FRAME_BYTES + body_len;
    if frame_len > bytes.len() {
        return Err(format!(
            "record of {frame_len} bytes runs past the end of the file ({} bytes left)",
            bytes.len()
        ));
    }
    let frame = &bytes[..frame_len];
    if record_crc(frame) != read_u32(frame, 4) {
        return Err("record checksum mismatch".into());
    }
    Ok(frame_len)
}

/// A checked frame's parts.
pub(crate) struct Frame<'a> {
    /// The canonical body (`store::codec`).
    pub body: &'a [u8],
    /// The chain value stored after the body.
    pub chain: ChainValue,
}

/// Splits a frame that [`check_frame`] accepted.
pub(crate) fn split_frame(frame: &[u8]) -> Frame<'_> {
    let body = &frame[FRAME_PREFIX_BYTES..frame.len() - 32];
    let mut chain = [0; 32];
    chain.copy_from_slice(&frame[frame.len() - 32..]);
    Frame { body, chain }
}

/// The header fields of a body that the index needs, read without decoding the whole event.
pub(crate) struct BodyFields<'a> {
    pub position: u64,
    pub revision: u64,
    pub event_id: uuid::Uuid,
    pub recorded_at_nanos: i64,
    pub stream: &'a str,
}

/// Reads [`BodyFields`] from a body whose frame was checked (so its length is at least the
/// fixed part). The error is a reason for a `Damage`.
pub(crate) fn body_fields(body: &[u8]) -> Result<BodyFields<'_>, String> {
    assert!(body.len() >= codec::BODY_FIXED_BYTES);
    if body[0] != codec::BODY_FORMAT_VERSION {
        return Err(format!("unknown record format version {}", body[0]));
    }
    let stream_len = usize::from(u16::from_le_bytes([
        body[BODY_STREAM_LEN],
        body[BODY_STREAM_LEN + 1],
    ]));
    let stream = body
        .get(BODY_STREAM..BODY_STREAM + stream_len)
        .ok_or_else(|| "stream name runs past the record body".to_string())?;
    let stream = std::str::from_utf8(stream).map_err(|_| "stream name is not UTF-8".to_string())?;
    let mut event_id = [0; 16];
    event_id.copy_from_slice(&body[BODY_EVENT_ID..BODY_EVENT_ID + 16]);
    Ok(BodyFields {
        position: read_u64(body, BODY_POSITION),
        revision: read_u64(body, BODY_REVISION),
        event_id: uuid::Uuid::from_bytes(event_id),
        recorded_at_nanos: read_u64(body, BODY_RECORDED_AT) as i64,
        stream,
    })
}

/// Whether `bytes` holds a frame that could be a record at or after `position` anywhere from
/// its start. Used to tell a torn tail (nothing valid follows) from damage in the middle.
pub(crate) fn valid_frame_follows(bytes: &[u8], position: u64) -> bool {
    if bytes.len() < RECORD_BYTES_MIN {
        return false;
    }
    (0..=bytes.len() - RECORD_BYTES_MIN).any(|at| {
        let candidate = &bytes[at..];
        // Cheap filters first, so that the CRC runs only on plausible frames.
        candidate[FRAME_PREFIX_BYTES] == codec::BODY_FORMAT_VERSION
            && read_u64(candidate, FRAME_PREFIX_BYTES + BODY_POSITION) >= position
            && check_frame(candidate).is_ok()
    })
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut out = [0; 4];
    out.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(out)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut out = [0; 8];
    out.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use store::{Position, RecordedEvent, StreamName};
    use uuid::Uuid;

    fn event() -> RecordedEvent {
        RecordedEvent {
            event_id: Uuid::from_u128(7),
            stream: StreamName::new("partner-9").unwrap_or_else(|e| panic!("{e}")),
            revision: 5,
            position: Position(12),
            event_type: "EnrollmentSubmitted".into(),
            schema_version: 1,
            recorded_at: DateTime::<Utc>::from_timestamp_nanos(1_234_567),
            actor: "operator".into(),
            command_id: Uuid::from_u128(1),
            correlation_id: Uuid::from_u128(2),
            causation_id: Uuid::from_u128(3),
            payload: vec![1, 2, 3],
        }
    }

    #[test]
    fn body_field_offsets_follow_the_codec() {
        let event = event();
        let mut out = Vec::new();
        let chain = encode_record(&event, &codec::GENESIS_CHAIN, &mut out);
        assert_eq!(check_frame(&out), Ok(out.len()));
        let frame = split_frame(&out);
        assert_eq!(frame.chain, chain);
        let fields = body_fields(frame.body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fields.position, 12);
        assert_eq!(fields.revision, 5);
        assert_eq!(fields.event_id, event.event_id);
        assert_eq!(fields.recorded_at_nanos, 1_234_567);
        assert_eq!(fields.stream, "partner-9");
        assert_eq!(codec::decode_body(frame.body), Ok(event));
    }

    #[test]
    fn header_round_trips() {
        let header = SegmentHeader {
            first_position: 42,
            carried_chain: [9; 32],
        };
        assert_eq!(SegmentHeader::decode(&header.encode()), Ok(header));
        let mut bytes = header.encode();
        bytes[20] ^= 1;
        assert!(SegmentHeader::decode(&bytes).is_err());
    }

    #[test]
    fn segment_names_round_trip() {
        let name = segment_file_name(123);
        assert_eq!(parse_segment_file_name(&name), Some(Ok(123)));
        assert_eq!(parse_segment_file_name("12.seg"), Some(Err(())));
        assert_eq!(parse_segment_file_name("LOCK"), None);
    }
}
