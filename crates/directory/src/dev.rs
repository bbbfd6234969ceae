//! The development directory: a small OpenID issuer for the demo and for trying the API on
//! one machine. It signs with its own Ed25519 key (kept in the data directory, mode 0600),
//! publishes discovery and JWKS documents, and mints tokens for a named tenant and user.
//! The ledger verifies its tokens exactly as it verifies a real issuer's.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand_core::{OsRng, RngCore};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{GLOBAL_ADMIN_ROLE, IssuerConfig};

/// Longest lifetime of a minted token.
pub const DEV_TOKEN_SECONDS_MAX: u64 = 24 * 3600;

/// Why the development directory could not start or mint.
#[derive(Debug, thiserror::Error)]
pub enum DevDirectoryError {
    /// The key file could not be read or written.
    #[error("development directory key {path}: {source}")]
    Io {
        /// The key file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The key file holds no Ed25519 key.
    #[error("development directory key {0} is not an Ed25519 PKCS#8 key")]
    BadKey(String),
    /// Signing failed.
    #[error("signing a development token: {0}")]
    Signing(String),
    /// The request asks for what the directory does not mint.
    #[error("{0}")]
    Refused(String),
}

/// What a minted token says.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevTokenRequest {
    /// The tenant (`tid`).
    pub tenant_id: Uuid,
    /// The directory user's id (`oid`); by default one derived from the tenant and email, so
    /// that the same person gets the same id every time.
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// The sign-in email (`email`, `preferred_username`).
    #[serde(default)]
    pub email: Option<String>,
    /// The display name (`name`).
    #[serde(default)]
    pub name: Option<String>,
    /// Whether the user is the tenant's global admin (`wids`); true unless said otherwise.
    #[serde(default = "yes")]
    pub global_admin: bool,
    /// Lifetime in seconds, at most [`DEV_TOKEN_SECONDS_MAX`]; one hour by default.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

fn yes() -> bool {
    true
}

/// The development issuer.
pub struct DevDirectory {
    issuer: String,
    audience: String,
    key_id: String,
    encoding: EncodingKey,
    public_key: [u8; 32],
}

impl DevDirectory {
    /// Loads the key at `key_path`, or generates one there (mode 0600) when the file does not
    /// exist. `issuer` is the directory's own URL (where its documents are served).
    pub fn load_or_create(
        key_path: &Path,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<Self, DevDirectoryError> {
        let io = |source| DevDirectoryError::Io {
            path: key_path.display().to_string(),
            source,
        };
        let signing = match std::fs::read_to_string(key_path) {
            Ok(pem) => SigningKey::from_pkcs8_pem(&pem)
                .map_err(|_| DevDirectoryError::BadKey(key_path.display().to_string()))?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                OsRng.fill_bytes(&mut seed);
                let signing = SigningKey::from_bytes(&seed);
                let pem = signing
                    .to_pkcs8_pem(Default::default())
                    .map_err(|error| DevDirectoryError::Signing(error.to_string()))?;
                write_private(key_path, pem.as_bytes()).map_err(io)?;
                signing
            }
            Err(error) => return Err(io(error)),
        };
        let der = signing
            .to_pkcs8_der()
            .map_err(|error| DevDirectoryError::Signing(error.to_string()))?;
        let public_key = signing.verifying_key().to_bytes();
        let digest = Sha256::digest(public_key);
        Ok(Self {
            issuer: issuer.into().trim_end_matches('/').to_string(),
            audience: audience.into(),
            key_id: digest[..8].iter().map(|b| format!("{b:02x}")).collect(),
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            public_key,
        })
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// How the ledger's verifier trusts this directory.
    pub fn issuer_config(&self) -> IssuerConfig {
        IssuerConfig::new(self.issuer.clone(), self.audience.clone())
    }

    /// The OpenID discovery document.
    pub fn discovery(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/jwks", self.issuer),
            "token_endpoint": format!("{}/token", self.issuer),
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["EdDSA"],
        })
    }

    /// The JWKS document: the one public key.
    pub fn jwks(&self) -> Value {
        json!({"keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(self.public_key),
            "kid": self.key_id,
            "alg": "EdDSA",
            "use": "sig",
        }]})
    }

    /// Mints an access token for the ledger's audience.
    pub fn mint(
        &self,
        request: &DevTokenRequest,
        now: DateTime<Utc>,
    ) -> Result<String, DevDirectoryError> {
        let lifetime = request.expires_in.unwrap_or(3600);
        if lifetime == 0 || lifetime > DEV_TOKEN_SECONDS_MAX {
            return Err(DevDirectoryError::Refused(format!(
                "expires_in is 1 to {DEV_TOKEN_SECONDS_MAX} seconds"
            )));
        }
        let user = request.user_id.unwrap_or_else(|| {
            let seed = format!(
                "{}/{}",
                request.tenant_id,
                request.email.as_deref().unwrap_or("")
            );
            Uuid::new_v5(&Uuid::NAMESPACE_OID, seed.as_bytes())
        });
        let issued = now.timestamp();
        let mut claims = json!({
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user,
            "oid": user,
            "tid": request.tenant_id,
            "iat": issued,
            "nbf": issued,
            "exp": issued + lifetime as i64,
            "wids": if request.global_admin { vec![GLOBAL_ADMIN_ROLE] } else { Vec::new() },
        });
        if let Some(email) = &request.email {
            claims["email"] = json!(email);
            claims["preferred_username"] = json!(email);
        }
        if let Some(name) = &request.name {
            claims["name"] = json!(name);
        }
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|error| DevDirectoryError::Signing(error.to_string()))
    }
}

/// Writes a new private file readable by its owner alone.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
