//! TLS for the protocol server: the server identity (certificate chain and key, PEM), the
//! rustls configuration it serves with, and a local certificate authority generated for a
//! door on a loopback address.
//!
//! Official clients send credentials only over TLS (Python's and Node's refuse to over plain
//! text), so the door serves TLS whenever it authenticates anyone. For loopback use the
//! program need not be handed a certificate: [`LocalTls::load_or_generate`] makes a
//! certificate authority and a server certificate it signs, once, into a directory, and
//! discards the authority's key, so that nothing can ever be signed with it again. Clients
//! trust the authority's certificate (`tlsCaFile=…`), or skip verification on loopback
//! (`tlsVerifyCert=false`).
//!
//! The rustls configuration names its crypto provider (ring) itself rather than installing a
//! process-wide default: the `eventstore` client installs its own (aws-lc-rs) and panics
//! when one is already installed, and a program may hold both a client and this server.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use atomic_file::Access;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A TLS server identity in PEM.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The certificate chain, leaf first.
    pub certificate_pem: Vec<u8>,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    // The private key never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("certificate_pem_bytes", &self.certificate_pem.len())
            .finish_non_exhaustive()
    }
}

/// TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// The certificate chain holds no certificate, or one that does not parse.
    #[error("no usable certificate in the certificate PEM: {0}")]
    Certificate(String),
    /// The private key PEM holds no key, or one that does not parse.
    #[error("no usable private key in the key PEM: {0}")]
    PrivateKey(String),
    /// rustls refused the identity (a key that does not match the certificate, say).
    #[error("TLS configuration refused: {0}")]
    Config(#[from] rustls::Error),
    /// Generating the local certificates failed.
    #[error("generating the door's certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

impl TlsIdentity {
    /// Reads a certificate chain and its private key from PEM files, and checks that they
    /// make a usable server configuration.
    pub fn from_files(certificate: &Path, private_key: &Path) -> Result<Self, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::File {
                path: path.to_path_buf(),
                source,
            })
        };
        let identity = Self {
            certificate_pem: read(certificate)?,
            private_key_pem: read(private_key)?,
        };
        server_config(&identity)?;
        Ok(identity)
    }
}

/// The rustls server configuration for `identity`, offering HTTP/2 (gRPC) by ALPN, which
/// gRPC clients require.
pub fn server_config(identity: &TlsIdentity) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(&identity.certificate_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Certificate(error.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::Certificate("no CERTIFICATE block".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&identity.private_key_pem)
        .map_err(|error| TlsError::PrivateKey(error.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Certificates generated for a loopback door: a server identity and the certificate of the
/// authority that signed it (whose key was discarded).
#[derive(Clone, Debug)]
pub struct GeneratedTls {
    /// The server's certificate chain and key.
    pub identity: TlsIdentity,
    /// The authority's certificate, for clients' `tlsCaFile`.
    pub authority_pem: Vec<u8>,
}

/// Years a generated certificate is valid: long, since it names loopback addresses only and
/// an expired one would stop a long-running door's clients for no gain.
const GENERATED_VALIDITY_YEARS: i32 = 10;

impl GeneratedTls {
    /// Generates an authority and a server certificate for `names` (DNS names or IP
    /// addresses, each a subject alternative name), both ECDSA P-256.
    pub fn generate(names: &[String]) -> Result<Self, TlsError> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        // From the start of today (UTC), so that a client's clock a few hours behind still
        // accepts it.
        let today = chrono::Utc::now().date_naive();
        let (not_before, not_after) = {
            use chrono::Datelike as _;
            let day = |year: i32| {
                // Month and day come from a valid date; the 29th of February moves to the
                // 28th in a year without it.
                let month = u8::try_from(today.month()).unwrap_or(1);
                let day = u8::try_from(today.day().min(28)).unwrap_or(1);
                rcgen::date_time_ymd(year, month, day)
            };
            (
                day(today.year()),
                day(today.year() + GENERATED_VALIDITY_YEARS),
            )
        };

        let authority_key = KeyPair::generate()?;
        let mut authority = CertificateParams::new(Vec::<String>::new())?;
        authority.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        authority.distinguished_name.push(
            DnType::CommonName,
            "csp-ledger KurrentDB door local authority",
        );
        authority.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        authority.not_before = not_before;
        authority.not_after = not_after;
        let authority = rcgen::CertifiedIssuer::self_signed(authority, authority_key)?;

        let server_key = KeyPair::generate()?;
        let mut server = CertificateParams::new(names.to_vec())?;
        server
            .distinguished_name
            .push(DnType::CommonName, "csp-ledger KurrentDB door");
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.not_before = not_before;
        server.not_after = not_after;
        let server = server.signed_by(&server_key, &authority)?;

        let authority_pem = authority.pem();
        Ok(Self {
            identity: TlsIdentity {
                certificate_pem: format!("{}{}", server.pem(), authority_pem).into_bytes(),
                private_key_pem: server_key.serialize_pem().into_bytes(),
            },
            authority_pem: authority_pem.into_bytes(),
        })
    }
}

/// The loopback names a generated certificate covers, besides the address listened on.
pub fn loopback_names(listen: IpAddr) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let listen = listen.to_string();
    if !names.contains(&listen) {
        names.push(listen);
    }
    names
}

/// A door's certificates kept in a directory of their own: `authority.pem` (for clients),
/// `certificate.pem` (the server's chain) and `key.pem` (owner-only).
#[derive(Clone, Debug)]
pub struct LocalTls {
    /// The server identity read from the directory.
    pub identity: TlsIdentity,
    /// Where the authority's certificate is, for clients' `tlsCaFile`.
    pub authority_path: PathBuf,
    /// Where the server's certificate chain is.
    pub certificate_path: PathBuf,
    /// Where the server's private key is.
    pub private_key_path: PathBuf,
    /// Whether this call generated them (rather than finding them from an earlier run).
    pub generated: bool,
}

impl LocalTls {
    /// Reads the certificates in `directory`, or generates them for `names` when there are
    /// none yet. They are kept across restarts, so that clients given the authority once
    /// keep trusting the door. The certificate is written last, after the key and the
    /// authority: its presence means the set is whole, so an interrupted generation is
    /// simply done again.
    pub fn load_or_generate(directory: &Path, names: &[String]) -> Result<Self, TlsError> {
        let file_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TlsError::File { path, source }
        };
        let authority_path = directory.join("authority.pem");
        let certificate_path = directory.join("certificate.pem");
        let private_key_path = directory.join("key.pem");
        if certificate_path.exists() {
            let identity = TlsIdentity::from_files(&certificate_path, &private_key_path)?;
            return Ok(Self {
                identity,
                authority_path,
                certificate_path,
                private_key_path,
                generated: false,
            });
        }
        create_private_dir(directory).map_err(file_error(directory))?;
        let generated = GeneratedTls::generate(names)?;
        atomic_file::replace(
            &private_key_path,
            &generated.identity.private_key_pem,
            Access::Private,
        )
        .map_err(file_error(&private_key_path))?;
        atomic_file::replace(&authority_path, &generated.authority_pem, Access::Public)
            .map_err(file_error(&authority_path))?;
        atomic_file::replace(
            &certificate_path,
            &generated.identity.certificate_pem,
            Access::Public,
        )
        .map_err(file_error(&certificate_path))?;
        Ok(Self {
            identity: generated.identity,
            authority_path,
            certificate_path,
            private_key_path,
            generated: true,
        })
    }
}

fn create_private_dir(directory: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(directory)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn generated_certificates_make_a_server_configuration_and_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let tls_dir = dir.path().join("tls");
        let names = loopback_names("127.0.0.1".parse().unwrap());
        let first = LocalTls::load_or_generate(&tls_dir, &names).unwrap();
        assert!(first.generated);
        server_config(&first.identity).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&first.private_key_path)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(&tls_dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let again = LocalTls::load_or_generate(&tls_dir, &names).unwrap();
        assert!(!again.generated);
        assert_eq!(
            again.identity.certificate_pem,
            first.identity.certificate_pem
        );
        let authority = std::fs::read(&again.authority_path).unwrap();
        assert!(
            String::from_utf8(first.identity.certificate_pem)
                .unwrap()
                .ends_with(std::str::from_utf8(&authority).unwrap()),
            "the chain ends with the authority"
        );
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let one = GeneratedTls::generate(&["localhost".into()]).unwrap();
        let other = GeneratedTls::generate(&["localhost".into()]).unwrap();
        let mixed = TlsIdentity {
            certificate_pem: one.identity.certificate_pem,
            private_key_pem: other.identity.private_key_pem,
        };
        assert!(server_config(&mixed).is_err());
        let empty = TlsIdentity {
            certificate_pem: Vec::new(),
            private_key_pem: Vec::new(),
        };
        assert!(matches!(
            server_config(&empty),
            Err(TlsError::Certificate(_))
        ));
    }
}
