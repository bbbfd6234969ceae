//! Signed checkpoints: C2SP checkpoint bodies, Ed25519 signed notes, verifier and signer keys,
//! the key file, and witness cosignatures.

use tlog::{
    Checkpoint, KeyKind, NoteError, SignedNote, SigningKey, VerifierKey, key_id, open_checkpoint,
};

const NAME: &str = "ledger.example.com/csp";

fn key() -> Result<SigningKey, NoteError> {
    SigningKey::from_seed(NAME, KeyKind::Ed25519, &[7u8; 32])
}

#[test]
fn a_signed_checkpoint_has_the_c2sp_shape_and_verifies() -> Result<(), NoteError> {
    let key = key()?;
    let checkpoint = Checkpoint::new(NAME, 20852163, [0xAB; 32]);
    let note = key.sign_checkpoint(&checkpoint)?;
    let lines: Vec<&str> = note.split('\n').collect();
    assert_eq!(lines[0], NAME);
    assert_eq!(lines[1], "20852163");
    assert_eq!(lines[2], "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=");
    assert_eq!(lines[3], "");
    assert!(lines[4].starts_with(&format!("\u{2014} {NAME} ")));
    assert_eq!(lines[5], "");
    assert_eq!(open_checkpoint(&note, &key.verifier())?, checkpoint);

    // The key id is SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4], first in the signature bytes.
    let verifier = key.verifier();
    assert_eq!(verifier.id(), key_id(NAME, 0x01, &verifier.public_key()));
    let parsed = SignedNote::parse(&note)?;
    assert_eq!(parsed.signatures[0].id, verifier.id());
    assert_eq!(parsed.signatures[0].signature.len(), 64);
    Ok(())
}

#[test]
fn a_changed_byte_anywhere_is_refused() -> Result<(), NoteError> {
    let key = key()?;
    let note = key.sign_checkpoint(&Checkpoint::new(NAME, 42, [1; 32]))?;
    let verifier = key.verifier();
    for at in 0..note.len() {
        if !note.is_char_boundary(at) || !note.is_char_boundary(at + 1) {
            continue;
        }
        let mut bytes = note.clone().into_bytes();
        bytes[at] ^= 0x01;
        let Ok(changed) = String::from_utf8(bytes) else {
            continue;
        };
        assert!(
            open_checkpoint(&changed, &verifier).is_err(),
            "byte {at} changed and accepted"
        );
    }
    // Another key of the same name is not the log's key.
    let other = SigningKey::from_seed(NAME, KeyKind::Ed25519, &[8u8; 32])?;
    assert!(matches!(
        open_checkpoint(&note, &other.verifier()),
        Err(NoteError::Unsigned(_))
    ));
    Ok(())
}

#[test]
fn checkpoint_bodies_are_parsed_strictly() {
    let root = "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=";
    let ok = format!("o\n5\n{root}\next one\n");
    let parsed = Checkpoint::parse(&ok).map(|c| (c.size, c.extensions));
    assert_eq!(parsed.ok(), Some((5, vec!["ext one".to_string()])));
    for bad in [
        format!("o\n5\n{root}"),
        format!("\n5\n{root}\n"),
        format!("o\n05\n{root}\n"),
        format!("o\n+5\n{root}\n"),
        format!("o\n5\n{root}\n\n"),
        "o\n5\nq6ur\n".to_string(),
        format!("o\n18446744073709551616\n{root}\n"),
        format!("o\t\n5\n{root}\n"),
    ] {
        assert!(Checkpoint::parse(&bad).is_err(), "{bad:?}");
    }
}

#[test]
fn verifier_keys_round_trip_and_a_wrong_id_is_refused() -> Result<(), NoteError> {
    let verifier = key()?.verifier();
    let text = verifier.to_string();
    let parts: Vec<&str> = text.split('+').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0], NAME);
    assert_eq!(parts[1], format!("{:08x}", verifier.id()));
    assert_eq!(VerifierKey::parse(&format!("{text}\n"))?, verifier);
    let wrong_id = format!("{}+{:08x}+{}", parts[0], verifier.id() ^ 1, parts[2]);
    assert!(VerifierKey::parse(&wrong_id).is_err());
    assert!(VerifierKey::parse(&text.replace(NAME, "other.example")).is_err());
    assert!(SigningKey::from_seed("has space", KeyKind::Ed25519, &[1; 32]).is_err());
    assert!(SigningKey::from_seed("has+plus", KeyKind::Ed25519, &[1; 32]).is_err());
    assert!(SigningKey::from_seed("", KeyKind::Ed25519, &[1; 32]).is_err());
    Ok(())
}

#[test]
fn the_key_file_is_generated_once_mode_0600_and_loaded_after()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("keys/checkpoint.key");
    let generated = SigningKey::load_or_generate(&path, NAME, KeyKind::Ed25519)?;
    let loaded = SigningKey::load_or_generate(&path, "ignored.example", KeyKind::Ed25519)?;
    assert_eq!(loaded.verifier(), generated.verifier());
    assert_eq!(SigningKey::load(&path)?.verifier(), generated.verifier());
    let text = std::fs::read_to_string(&path)?;
    assert!(text.starts_with(&format!("PRIVATE+KEY+{NAME}+")));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path)?.permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(!format!("{generated:?}").contains(&text[40..60]));
    std::fs::write(&path, "PRIVATE+KEY+garbage")?;
    assert!(matches!(SigningKey::load(&path), Err(NoteError::BadKey(_))));
    Ok(())
}

#[test]
fn witness_cosignatures_are_verified_and_a_bad_one_refuses_the_note() -> Result<(), NoteError> {
    let log = key()?;
    let witness = SigningKey::from_seed("witness.example/w1", KeyKind::CosignatureV1, &[9; 32])?;
    let body = Checkpoint::new(NAME, 9, [3; 32]).to_body();
    let note = log.sign_note(&body)?;
    let line = witness.cosign(&body, 1_679_315_147)?;
    let cosigned = SignedNote::add_signature_line(&note, &line)?;
    // The witness key is type 0x04: its id differs from an Ed25519 key of the same seed.
    let verifier = witness.verifier();
    assert!(verifier.to_string().contains('+'));
    assert_eq!(VerifierKey::parse(&verifier.to_string())?, verifier);
    assert_eq!(
        verifier.id(),
        key_id("witness.example/w1", 0x04, &verifier.public_key())
    );

    let parsed = SignedNote::parse(&cosigned)?;
    assert_eq!(parsed.verify(&log.verifier())?, body);
    let found = parsed.verify_cosignatures(std::slice::from_ref(&verifier))?;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].timestamp, 1_679_315_147);
    // The log's signature still opens the checkpoint with the witness line present.
    assert!(open_checkpoint(&cosigned, &log.verifier()).is_ok());

    // A cosignature over another body is refused.
    let other = witness.cosign(&Checkpoint::new(NAME, 10, [3; 32]).to_body(), 1)?;
    let forged = SignedNote::add_signature_line(&note, &other)?;
    assert!(
        SignedNote::parse(&forged)?
            .verify_cosignatures(&[verifier])
            .is_err()
    );
    // The log's key does not cosign, and a witness's key does not sign.
    assert!(log.cosign(&body, 1).is_err());
    assert!(witness.sign_note(&body).is_err());
    Ok(())
}
