//! C2SP tlog-checkpoint bodies and C2SP signed notes with Ed25519: the log's signing key (in
//! a file, mode 0600), verifier keys, note signatures, and witness cosignatures
//! (C2SP tlog-cosignature, timestamped Ed25519).

use std::fs;
use std::io;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey as DalekSigningKey, VerifyingKey};
use rand_core::{OsRng, RngCore as _};
use sha2::{Digest, Sha256};

use crate::hash::{HASH_BYTES, Hash};

/// Signature type byte of Ed25519 note signatures (C2SP signed-note).
pub const ALGORITHM_ED25519: u8 = 0x01;

/// Signature type byte of timestamped Ed25519 witness cosignatures (C2SP tlog-cosignature).
pub const ALGORITHM_COSIGNATURE_V1: u8 = 0x04;

/// Signature lines a note may carry; C2SP asks verifiers to accept at least 16.
pub const NOTE_SIGNATURES_MAX: usize = 100;

/// Bytes a note may have (text and signatures).
pub const NOTE_BYTES_MAX: usize = 1 << 20;

/// Why a note, a checkpoint or a key was refused, or a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    /// The note is not a signed note: no blank line before signatures, a malformed
    /// signature line, a control character, too many signatures or bytes.
    #[error("malformed signed note: {0}")]
    MalformedNote(&'static str),
    /// The note text is not a C2SP tlog-checkpoint body.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
    /// A key name is empty or has a space or a `+`.
    #[error("invalid key name {0:?}: names are non-empty, without spaces or '+'")]
    BadKeyName(String),
    /// A verifier or signer key string is malformed, or its key id is not the one its name
    /// and key give.
    #[error("malformed key: {0}")]
    BadKey(&'static str),
    /// The note has no signature by the verifier's key (name and key id).
    #[error("the note has no signature by {0}")]
    Unsigned(String),
    /// A signature by the verifier's key (name and key id) does not verify.
    #[error("the signature by {0} does not verify")]
    BadSignature(String),
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    KeyFile {
        /// The key file.
        path: String,
        /// The failure.
        #[source]
        source: io::Error,
    },
}

/// A C2SP tlog-checkpoint: the log's origin, a tree size and its root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (conventionally a schema-less URL, the signing key's name).
    pub origin: String,
    /// The tree size.
    pub size: u64,
    /// The tree's root hash.
    pub root: Hash,
    /// Extension lines after the root, without their newlines (usually none).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Self {
        Self {
            origin: origin.into(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The note text: `<origin>\n<size>\n<base64 root>\n` then each extension line and `\n`.
    pub fn to_body(&self) -> String {
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        );
        for line in &self.extensions {
            body.push_str(line);
            body.push('\n');
        }
        body
    }

    /// Parses a checkpoint body (the text of a signed note). Refuses an empty origin, a size
    /// with a leading zero or anything but ASCII digits, a root that is not the standard
    /// base64 of 32 bytes, an empty line, and a body not ending in a newline.
    pub fn parse(body: &str) -> Result<Self, NoteError> {
        let bad = NoteError::MalformedCheckpoint;
        let text = body.strip_suffix('\n').ok_or(bad("no final newline"))?;
        check_note_characters(text).map_err(|_| bad("control character"))?;
        let mut lines = text.split('\n');
        let origin = lines.next().filter(|line| !line.is_empty());
        let origin = origin.ok_or(bad("empty origin line"))?;
        let size = lines.next().ok_or(bad("no tree size line"))?;
        let canonical = !size.is_empty()
            && size.bytes().all(|byte| byte.is_ascii_digit())
            && (size == "0" || !size.starts_with('0'));
        if !canonical {
            return Err(bad("tree size is not a decimal without leading zeros"));
        }
        let size: u64 = size.parse().map_err(|_| bad("tree size out of range"))?;
        let root = lines.next().ok_or(bad("no root hash line"))?;
        let root = decode_hash(root).ok_or(bad("root hash is not base64 of 32 bytes"))?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("empty line"));
        }
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }
}

fn decode_hash(text: &str) -> Option<Hash> {
    let bytes = BASE64.decode(text).ok()?;
    let hash: Hash = bytes.try_into().ok()?;
    // Only the canonical encoding: one root, one spelling.
    (BASE64.encode(hash) == text).then_some(hash)
}

fn check_note_characters(text: &str) -> Result<(), NoteError> {
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::MalformedNote("control character"));
    }
    Ok(())
}

fn check_key_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(NoteError::BadKeyName(name.to_string()));
    }
    check_note_characters(name).map_err(|_| NoteError::BadKeyName(name.to_string()))
}

/// The C2SP key id: the first 4 bytes, big-endian, of SHA-256(name ‖ 0x0A ‖ algorithm ‖
/// public key).
pub fn key_id(name: &str, algorithm: u8, public_key: &[u8; 32]) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([0x0A, algorithm]);
    hasher.update(public_key);
    let digest = hasher.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// What a key signs: the log's checkpoints, or a witness's cosignatures of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// Ed25519 note signatures (type 0x01): the log's own.
    Ed25519,
    /// Timestamped Ed25519 cosignatures (type 0x04, C2SP tlog-cosignature): a witness's.
    CosignatureV1,
}

impl KeyKind {
    fn algorithm(self) -> u8 {
        match self {
            Self::Ed25519 => ALGORITHM_ED25519,
            Self::CosignatureV1 => ALGORITHM_COSIGNATURE_V1,
        }
    }

    fn from_algorithm(algorithm: u8) -> Option<Self> {
        match algorithm {
            ALGORITHM_ED25519 => Some(Self::Ed25519),
            ALGORITHM_COSIGNATURE_V1 => Some(Self::CosignatureV1),
            _ => None,
        }
    }
}

/// A public key that checks note signatures: the C2SP verifier key
/// `<name>+<8 hex digits of key id>+<base64(type ‖ 32-byte public key)>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    kind: KeyKind,
    id: u32,
    key: VerifyingKey,
}

impl VerifierKey {
    /// The key from its parts.
    pub fn new(name: &str, kind: KeyKind, public_key: &[u8; 32]) -> Result<Self, NoteError> {
        check_key_name(name)?;
        let key = VerifyingKey::from_bytes(public_key)
            .map_err(|_| NoteError::BadKey("not an Ed25519 public key"))?;
        Ok(Self {
            name: name.to_string(),
            kind,
            id: key_id(name, kind.algorithm(), public_key),
            key,
        })
    }

    /// Parses the verifier key format (trailing whitespace ignored). Refuses a key id that is
    /// not the one the name and key give, as Go's `note.NewVerifier` does.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, id, kind, public_key) = parse_key_text(
            text.trim_end(),
            "not <name>+<key id>+<key>",
            "an Ed25519 key has 32 bytes",
        )?;
        let verifier = Self::new(name, kind, &public_key)?;
        if verifier.id != id {
            return Err(NoteError::BadKey(
                "key id does not match the name and the key",
            ));
        }
        Ok(verifier)
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// What the key signs.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut key = vec![self.kind.algorithm()];
        key.extend_from_slice(&self.key.to_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, BASE64.encode(key))
    }
}

/// A private key that signs notes: the log's (kind [`KeyKind::Ed25519`]) or a witness's
/// ([`KeyKind::CosignatureV1`]). Kept in a file in Go's signer key format,
/// `PRIVATE+KEY+<name>+<8 hex key id>+<base64(type ‖ 32-byte seed)>` and a newline.
pub struct SigningKey {
    name: String,
    kind: KeyKind,
    id: u32,
    key: DalekSigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the seed.
        f.debug_struct("SigningKey")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("id", &format_args!("{:08x}", self.id))
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random key from the operating system's generator.
    pub fn generate(name: &str, kind: KeyKind) -> Result<Self, NoteError> {
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut seed);
        Self::from_seed(name, kind, &seed)
    }

    /// The key of a 32-byte Ed25519 seed (RFC 8032 private key).
    pub fn from_seed(name: &str, kind: KeyKind, seed: &[u8; 32]) -> Result<Self, NoteError> {
        check_key_name(name)?;
        let key = DalekSigningKey::from_bytes(seed);
        let id = key_id(name, kind.algorithm(), &key.verifying_key().to_bytes());
        Ok(Self {
            name: name.to_string(),
            kind,
            id,
            key,
        })
    }

    /// Parses the signer key format (trailing whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let rest = text
            .trim_end()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::BadKey("not PRIVATE+KEY+<name>+<key id>+<key>"))?;
        let (name, id, kind, seed) = parse_key_text(
            rest,
            "not PRIVATE+KEY+<name>+<key id>+<key>",
            "an Ed25519 seed has 32 bytes",
        )?;
        let signer = Self::from_seed(name, kind, &seed)?;
        if signer.id != id {
            return Err(NoteError::BadKey(
                "key id does not match the name and the key",
            ));
        }
        Ok(signer)
    }

    /// The signer key string (a secret: write it only to a private file).
    pub fn to_private_string(&self) -> String {
        let mut key = vec![self.kind.algorithm()];
        key.extend_from_slice(&self.key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.id,
            BASE64.encode(key)
        )
    }

    /// Loads the key in `path`, or generates one named `name` there (mode 0600, written to a
    /// temporary file, synced and renamed) when the file does not exist. A key loaded keeps
    /// its own name, which may differ from `name`.
    pub fn load_or_generate(path: &Path, name: &str, kind: KeyKind) -> Result<Self, NoteError> {
        let key_file = |source| NoteError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match fs::read_to_string(path) {
            Ok(text) => Self::parse(&text),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                let key = Self::generate(name, kind)?;
                write_private(path, format!("{}\n", key.to_private_string()).as_bytes())
                    .map_err(key_file)?;
                Ok(key)
            }
            Err(error) => Err(key_file(error)),
        }
    }

    /// Loads the key in `path`.
    pub fn load(path: &Path) -> Result<Self, NoteError> {
        let text = fs::read_to_string(path).map_err(|source| NoteError::KeyFile {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// What the key signs.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The public half, to publish.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            kind: self.kind,
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// Signs `text` (a note text ending in a newline, such as [`Checkpoint::to_body`]) and
    /// returns the signed note: the text, a blank line, this key's signature line. Only an
    /// [`KeyKind::Ed25519`] key signs notes; a witness's cosigns them ([`SigningKey::cosign`]).
    pub fn sign_note(&self, text: &str) -> Result<String, NoteError> {
        if self.kind != KeyKind::Ed25519 {
            return Err(NoteError::BadKey(
                "a cosigner key cosigns, it does not sign",
            ));
        }
        check_note_text(text)?;
        let signature = self.key.sign(text.as_bytes());
        let mut bytes = self.id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&signature.to_bytes());
        Ok(format!(
            "{text}\n\u{2014} {} {}\n",
            self.name,
            BASE64.encode(bytes)
        ))
    }

    /// Signs a checkpoint: [`SigningKey::sign_note`] of its body.
    pub fn sign_checkpoint(&self, checkpoint: &Checkpoint) -> Result<String, NoteError> {
        self.sign_note(&checkpoint.to_body())
    }

    /// A witness's cosignature line of a checkpoint body at `timestamp` (POSIX seconds), to
    /// be added to the signed note ([`SignedNote::add_signature_line`]).
    pub fn cosign(&self, text: &str, timestamp: u64) -> Result<String, NoteError> {
        if self.kind != KeyKind::CosignatureV1 {
            return Err(NoteError::BadKey("only a cosigner key cosigns"));
        }
        check_note_text(text)?;
        if timestamp > i64::MAX as u64 {
            return Err(NoteError::BadKey("cosignature timestamp past 2^63 - 1"));
        }
        let signature = self.key.sign(&cosigned_message(text, timestamp));
        let mut bytes = self.id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&timestamp.to_be_bytes());
        bytes.extend_from_slice(&signature.to_bytes());
        Ok(format!("\u{2014} {} {}\n", self.name, BASE64.encode(bytes)))
    }
}

/// The message a cosignature/v1 signs: `cosignature/v1\ntime <timestamp>\n` and the note text.
fn cosigned_message(text: &str, timestamp: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{text}").into_bytes()
}

fn check_note_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::MalformedNote("text does not end in a newline"));
    }
    check_note_characters(text)
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key id (first 4 bytes of the signature).
    pub id: u32,
    /// The signature bytes after the key id.
    pub signature: Vec<u8>,
}

/// A signed note taken apart: the text (with its final newline) and the signature lines.
/// Nothing here is verified yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedNote {
    /// The note text, ending in a newline.
    pub text: String,
    /// The signature lines, in order.
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// Parses a signed note: the text ends at the last blank line; every line after it is
    /// `— <name> <base64(key id ‖ signature)>`.
    pub fn parse(note: &str) -> Result<Self, NoteError> {
        if note.len() > NOTE_BYTES_MAX {
            return Err(NoteError::MalformedNote("too large"));
        }
        check_note_characters(note)?;
        let split = note.rfind("\n\n").ok_or(NoteError::MalformedNote(
            "no blank line before the signatures",
        ))?;
        let text = &note[..=split];
        let lines = &note[split + 2..];
        let lines = lines.strip_suffix('\n').ok_or(NoteError::MalformedNote(
            "no signature, or no final newline",
        ))?;
        let mut signatures = Vec::new();
        for line in lines.split('\n') {
            if signatures.len() == NOTE_SIGNATURES_MAX {
                return Err(NoteError::MalformedNote("too many signatures"));
            }
            let rest = line
                .strip_prefix("\u{2014} ")
                .ok_or(NoteError::MalformedNote(
                    "a signature line must start with '— '",
                ))?;
            let (name, signature) = rest.split_once(' ').ok_or(NoteError::MalformedNote(
                "signature line without a signature",
            ))?;
            check_key_name(name)
                .map_err(|_| NoteError::MalformedNote("bad key name in a signature line"))?;
            let bytes = BASE64
                .decode(signature)
                .map_err(|_| NoteError::MalformedNote("signature is not base64"))?;
            if bytes.len() < 5 {
                return Err(NoteError::MalformedNote("signature too short"));
            }
            signatures.push(NoteSignature {
                name: name.to_string(),
                id: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
                signature: bytes[4..].to_vec(),
            });
        }
        Ok(Self {
            text: text.to_string(),
            signatures,
        })
    }

    /// Adds a signature line (as [`SigningKey::cosign`] returns it) to a signed note.
    pub fn add_signature_line(note: &str, line: &str) -> Result<String, NoteError> {
        let mut with_line = String::with_capacity(note.len() + line.len());
        with_line.push_str(note);
        with_line.push_str(line);
        Self::parse(&with_line)?;
        Ok(with_line)
    }

    /// Verifies the note's signature by `key` (a [`KeyKind::Ed25519`] key) and returns the
    /// text. Signatures of other keys are ignored (they may be witnesses'); every signature
    /// with this key's name and id must verify, and there must be one.
    pub fn verify(&self, key: &VerifierKey) -> Result<&str, NoteError> {
        if key.kind != KeyKind::Ed25519 {
            return Err(NoteError::BadKey("a cosigner key verifies cosignatures"));
        }
        let mut found = false;
        for line in self.matching(key) {
            let signature = Signature::from_slice(&line.signature)
                .map_err(|_| NoteError::BadSignature(key.name.clone()))?;
            key.key
                .verify_strict(self.text.as_bytes(), &signature)
                .map_err(|_| NoteError::BadSignature(key.name.clone()))?;
            found = true;
        }
        if found {
            Ok(&self.text)
        } else {
            Err(NoteError::Unsigned(key.name.clone()))
        }
    }

    /// Verifies the cosignatures of the witnesses in `witnesses` (keys of kind
    /// [`KeyKind::CosignatureV1`]) and returns those found, in the order of `witnesses`.
    /// A witness without a line is left out; a line of a listed witness that does not verify
    /// refuses the note.
    pub fn verify_cosignatures(
        &self,
        witnesses: &[VerifierKey],
    ) -> Result<Vec<Cosignature>, NoteError> {
        let mut found = Vec::new();
        for witness in witnesses {
            if witness.kind != KeyKind::CosignatureV1 {
                return Err(NoteError::BadKey("not a cosignature/v1 key"));
            }
            for line in self.matching(witness) {
                let bad = || NoteError::BadSignature(witness.name.clone());
                let (timestamp, signature) = line.signature.split_at_checked(8).ok_or_else(bad)?;
                let timestamp = u64::from_be_bytes(timestamp.try_into().map_err(|_| bad())?);
                if timestamp > i64::MAX as u64 {
                    return Err(bad());
                }
                let signature = Signature::from_slice(signature).map_err(|_| bad())?;
                witness
                    .key
                    .verify_strict(&cosigned_message(&self.text, timestamp), &signature)
                    .map_err(|_| bad())?;
                found.push(Cosignature {
                    name: witness.name.clone(),
                    timestamp,
                });
            }
        }
        Ok(found)
    }

    fn matching<'a>(&'a self, key: &'a VerifierKey) -> impl Iterator<Item = &'a NoteSignature> {
        self.signatures
            .iter()
            .filter(move |line| line.name == key.name && line.id == key.id)
    }
}

/// A verified witness cosignature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cosignature {
    /// The witness's key name.
    pub name: String,
    /// When the witness cosigned (POSIX seconds).
    pub timestamp: u64,
}

/// Verifies a signed checkpoint with the log's key and parses its body. The origin is not
/// compared with anything: a caller that knows the log's origin compares it.
pub fn open_checkpoint(note: &str, key: &VerifierKey) -> Result<Checkpoint, NoteError> {
    let note = SignedNote::parse(note)?;
    Checkpoint::parse(note.verify(key)?)
}

/// Reads `<name>+<key id>+<base64(algorithm ‖ 32 key bytes)>`, the shape verifier and signer
/// keys share (the base64 key may itself contain '+': it is everything after the second
/// one). `shape` and `length` say what was expected when the text or the key is not so.
fn parse_key_text<'a>(
    text: &'a str,
    shape: &'static str,
    length: &'static str,
) -> Result<(&'a str, u32, KeyKind, [u8; 32]), NoteError> {
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::BadKey(shape));
    };
    if id.len() != 8 || !id.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(NoteError::BadKey("key id is not 8 hex digits"));
    }
    let id = u32::from_str_radix(id, 16).map_err(|_| NoteError::BadKey("key id"))?;
    let key = BASE64
        .decode(key)
        .map_err(|_| NoteError::BadKey("key is not base64"))?;
    let (&algorithm, bytes) = key.split_first().ok_or(NoteError::BadKey("empty key"))?;
    let kind = KeyKind::from_algorithm(algorithm)
        .ok_or(NoteError::BadKey("not an Ed25519 or cosignature/v1 key"))?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| NoteError::BadKey(length))?;
    Ok((name, id, kind, bytes))
}

/// Writes a secret file (mode 0600), durably and all at once, making its directory.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    atomic_file::replace(path, bytes, atomic_file::Access::Private)
}

/// Hashes in base64, as proofs carry them in JSON (standard alphabet, padded).
pub fn encode_hash(hash: &Hash) -> String {
    BASE64.encode(hash)
}

/// Decodes a base64 hash (standard alphabet, padded, exactly 32 bytes).
pub fn parse_hash(text: &str) -> Option<Hash> {
    let bytes = BASE64.decode(text).ok()?;
    (bytes.len() == HASH_BYTES).then(|| {
        let mut hash = [0u8; HASH_BYTES];
        hash.copy_from_slice(&bytes);
        hash
    })
}
