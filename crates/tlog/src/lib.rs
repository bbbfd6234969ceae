//! Verifiable history for csp-ledger: an RFC 9162 Merkle tree over the log's records, kept
//! as C2SP tlog-tiles, with inclusion and consistency proofs, C2SP signed checkpoints and an
//! offline audit.
//!
//! This crate knows nothing of HTTP, the command line or the log's backends: it is given
//! each record's canonical bytes (the bytes `store::codec` encodes and the hash chain
//! covers) in log order, and a place to keep tiles.
//!
//! # Wiring
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use tlog::{Checkpoint, DirTileStore, KeyKind, SigningKey, Tree};
//! # let data_dir = std::path::Path::new("data");
//! # let log_size = 0u64;
//! # let log_records = || Vec::<Vec<u8>>::new();
//! # let last_checkpoint_root: Option<tlog::Hash> = None;
//! // At start: the log's key (generated into the data directory the first time, mode 0600),
//! let key = SigningKey::load_or_generate(
//!     &data_dir.join("checkpoint.key"),
//!     "ledger.example.com/csp",
//!     KeyKind::Ed25519,
//! )?;
//! println!("verifier key: {}", key.verifier()); // name+id+key, for auditors
//! // and the tree at the log's size, from its tiles, or rebuilt from the log when they are
//! // missing, damaged or do not give the last checkpoint's root.
//! let store = DirTileStore::new(data_dir.join("tlog"));
//! let opened = match last_checkpoint_root {
//!     Some(root) => Tree::open_verified(store, log_size, &root),
//!     None => Tree::open(store, log_size),
//! };
//! let mut tree = match opened {
//!     Ok(tree) => tree,
//!     Err(_) => Tree::rebuild(DirTileStore::new(data_dir.join("tlog")), log_records())?,
//! };
//! // After each durable append, per record, in log order (the leaf index is the position):
//! let leaf_index = tree.append(b"record canonical bytes");
//! // Every N ms while appends happen: write the tiles, sign a checkpoint, keep it.
//! tree.flush()?;
//! let checkpoint = Checkpoint::new(key.name(), tree.size(), tree.root());
//! let signed = key.sign_checkpoint(&checkpoint)?; // text/plain for GET /v1/checkpoint
//! // Proofs, for the sizes of checkpoints kept:
//! let inclusion = tree.inclusion_proof(leaf_index, checkpoint.size)?;
//! let consistency = tree.consistency_proof(1, checkpoint.size)?;
//! // Tiles at their C2SP paths (GET /tile/...):
//! let bytes = tree.tile(tlog::TileId::parse("tile/0/000.p/1")?)?;
//! # let _ = (signed, inclusion, consistency, bytes);
//! # Ok(()) }
//! ```
//!
//! The auditor's side needs no tree: [`open_checkpoint`] verifies a signed checkpoint,
//! [`audit`] checks an export's `(leaf_index, record bytes)` against it (and
//! [`audit_with_proofs`] names the first changed record when records carry proofs),
//! [`verify_inclusion`] checks one proof, and [`check_consistency`] (or
//! [`check_signed_consistency`]) checks that a newer checkpoint extends an older one.
//! [`verify_tiles`] (for `verify`) compares the stored tiles with the log.
//!
//! A [`Tree`] is `Send + Sync` when its store is: proofs take `&self` (a read lock),
//! appends and flushes `&mut self`. Appends touch only memory; [`Tree::flush`] does the
//! writing, so the tiles lag the log until the next flush, and the log stays the source of
//! truth (the tree is rebuilt from it).
//!
//! # Hashes (RFC 9162 §2.1)
//!
//! | what | bytes hashed with SHA-256 |
//! |---|---|
//! | leaf of a record | `0x00` ‖ the record's canonical bytes |
//! | interior node | `0x01` ‖ left child's 32 bytes ‖ right child's 32 bytes |
//! | empty tree | nothing (`e3b0c442…b855`) |
//!
//! Leaf `i` is the record at log position `i`. A tree of `n > 1` leaves is split at `k`, the
//! largest power of two below `n`: root = node(MTH(leaves 0..k), MTH(leaves k..n)).
//!
//! # Proofs
//!
//! An inclusion proof of leaf `i` in the tree of `n` leaves is the RFC 9162 §2.1.3.1 audit
//! path, leaf to root, 0 to 64 hashes of 32 bytes; a consistency proof from size `m` to
//! size `n` (`0 < m < n`) is the §2.1.4.1 proof; equal sizes have an empty proof. Both are
//! verified by the §2.1.3.2 and §2.1.4.2 algorithms, step by step ([`verify_inclusion`],
//! [`verify_consistency`]). In JSON (the issue's shapes; this crate does not serialize)
//! hashes are standard padded base64 ([`encode_hash`], [`parse_hash`]).
//!
//! # Tiles (C2SP tlog-tiles, height 8)
//!
//! Tile level `L` holds the hashes of tree level `8L` (level 0 the leaf hashes, level 1 the
//! roots of the 256-leaf subtrees, …). Tile `N` of a level holds that level's hashes
//! `256N .. 256N + W`, back to back, 32 bytes each, nothing else: a full tile is 8192 bytes
//! (`W = 256`), a partial tile `32W` bytes for `1 <= W < 256`. Paths:
//!
//! ```text
//! tile/<L>/<N>          full tile
//! tile/<L>/<N>.p/<W>    partial tile of W hashes
//! ```
//!
//! `<L>` and `<W>` are decimal without leading zeros; `<N>` is decimal split into groups of
//! three digits, zero-padded, every group but the last prefixed with `x`: tile 1234067 is
//! `x001/x234/067`, tile 5 is `005`. A tree of size `s` has, at each level with `h = s >>
//! 8L > 0` hashes, `h / 256` full tiles and, when `h % 256 > 0`, one partial tile of `h %
//! 256` ([`tiles_for_size`]). A partial tile of a smaller size is the prefix of the wider
//! one, so a store keeps one version per tile ([`TileStore`]); [`DirTileStore`] keeps the
//! files at these paths under its directory (`<dir>/tile/…`, so it can be served as it is),
//! each written to a temporary name, synced and renamed (or, for
//! [`DirTileStore::deferred`], renamed at once and synced later, all together), and removes
//! narrower partial versions once a wider one is written.
//!
//! Beside the tiles (not under `tile/`, and not part of C2SP), a store may keep each full
//! tile's upper nodes ([`UpperNodes`]: the 16, 8, 4 and 2 roots of its levels 4 to 7, 960
//! bytes, computed free by the appends); [`DirTileStore`] keeps them at `<dir>/nodes/<L>/<N>`
//! (`<N>` as in tile paths). A proof from a tree reopened from its store then reads them
//! instead of hashing the tile's 256 hashes again; [`verify_tiles`] checks them too.
//!
//! # Checkpoints (C2SP tlog-checkpoint)
//!
//! ```text
//! <origin>\n                  the log's name, non-empty (by convention the key name)
//! <tree size>\n               decimal, no leading zeros
//! <base64 root>\n             standard padded base64 of the 32-byte root
//! [<extension line>\n]...     optional, non-empty (the ledger writes none)
//! ```
//!
//! # Signed notes (C2SP signed-note, Ed25519)
//!
//! A signed checkpoint is the body above, a blank line (`\n`), then one line per signature:
//! `— <key name> <base64(key id ‖ signature)>\n` (U+2014 em dash, space, name, space). The
//! key id is 4 bytes, big-endian: the first 4 bytes of SHA-256(key name ‖ `0x0A` ‖ `0x01`
//! ‖ 32-byte public key); the signature is Ed25519 (RFC 8032, 64 bytes) over the body. A
//! note is UTF-8 without control characters other than newline; key names are non-empty,
//! without spaces or `+`.
//!
//! Verifier key (public, given to auditors): `<name>+<key id, 8 lowercase hex>+<base64(0x01 ‖
//! 32-byte public key)>`. Signing key file (mode 0600, Go's `note` signer format): one line
//! `PRIVATE+KEY+<name>+<key id, 8 hex>+<base64(0x01 ‖ 32-byte Ed25519 seed)>\n`.
//!
//! Witness cosignatures (C2SP tlog-cosignature/v1) are further signature lines of the same
//! note, by keys of type `0x04`: key id from SHA-256(name ‖ `0x0A` ‖ `0x04` ‖ public key),
//! signature bytes = timestamp (8 bytes, big-endian POSIX seconds, at most 2^63 − 1) ‖
//! Ed25519 signature over `cosignature/v1\ntime <timestamp decimal>\n` ‖ the body. A
//! witness's verifier key is `<name>+<id>+<base64(0x04 ‖ public key)>`
//! ([`SignedNote::verify_cosignatures`]).
//!
//! # What is not here
//!
//! The subtree consistency proofs of the Merkle Tree Certificates draft (the
//! `subtreeconsistency` vectors) are not implemented: the ledger proves whole trees only.
//! Subtree inclusion proofs are ([`verify_subtree_inclusion`]): inside a subtree they are
//! inclusion proofs of the subtree as a tree.

mod audit;
mod hash;
mod note;
mod proof;
mod tile;
mod tree;

pub use audit::{
    AuditError, AuditReport, audit, audit_with_proofs, check_consistency, check_signed_consistency,
};
pub use hash::{CompactRange, EMPTY_ROOT, HASH_BYTES, Hash, leaf_hash, node_hash};
pub use note::{
    ALGORITHM_COSIGNATURE_V1, ALGORITHM_ED25519, Checkpoint, Cosignature, KeyKind, NOTE_BYTES_MAX,
    NOTE_SIGNATURES_MAX, NoteError, NoteSignature, SignedNote, SigningKey, VerifierKey,
    encode_hash, key_id, open_checkpoint, parse_hash,
};
pub use proof::{
    ProofError, is_subtree, root_from_inclusion, verify_consistency, verify_inclusion,
    verify_subtree_inclusion,
};
pub use tile::{
    DirTileStore, MemoryTileStore, TILE_HEIGHT, TILE_WIDTH, Tile, TileId, TilePathError, TileStore,
    TileStoreError, UPPER_NODES, UpperNodes, tile_bytes, tile_from_bytes, tiles_for_size,
};
pub use tree::{BadTile, TileCheck, TileProblem, TlogError, Tree, TreeConfig, verify_tiles};
