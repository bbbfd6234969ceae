//! Verifying directory tokens against their issuer's published keys.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::{DirectoryConfig, DirectoryError, DirectoryIdentity, IssuerConfig};

/// Verifies bearer JWTs of the configured issuers. Cheap to share (`Arc`); keys are fetched
/// lazily, at the first token of an issuer, so that an issuer served by the ledger itself
/// (the development directory) can be configured before it listens.
pub struct Verifier {
    config: DirectoryConfig,
    client: reqwest::Client,
    issuers: Vec<IssuerKeys>,
}

/// One issuer and what was last fetched from it.
struct IssuerKeys {
    config: IssuerConfig,
    fetched: Mutex<Fetched>,
}

#[derive(Default)]
struct Fetched {
    /// Keys by key id ("" for a key published without one).
    keys: HashMap<String, Jwk>,
    /// When the keys were last fetched (successfully or not).
    at: Option<Instant>,
}

impl Verifier {
    /// A verifier of `config`'s issuers.
    pub fn new(config: DirectoryConfig) -> Result<Self, DirectoryError> {
        let client = reqwest::Client::builder()
            .timeout(config.fetch_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| DirectoryError::IssuerUnavailable(error.to_string()))?;
        let issuers = config
            .issuers
            .iter()
            .map(|issuer| IssuerKeys {
                config: issuer.clone(),
                fetched: Mutex::new(Fetched::default()),
            })
            .collect();
        Ok(Self {
            config,
            client,
            issuers,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DirectoryConfig {
        &self.config
    }

    /// Verifies `token` at `now` and reads the identity it proves.
    pub async fn verify(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<DirectoryIdentity, DirectoryError> {
        if token.len() > self.config.token_bytes_max {
            return Err(DirectoryError::Malformed("too long".into()));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|error| DirectoryError::Malformed(error.to_string()))?;
        if !self.config.algorithms.contains(&header.alg) {
            return Err(DirectoryError::AlgorithmRefused(format!(
                "{:?}",
                header.alg
            )));
        }
        // The claims are read unverified only to choose the issuer whose keys then verify
        // them; nothing read here is trusted before the signature check below.
        let unverified: Value = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|error| DirectoryError::Malformed(error.to_string()))?;
        let iss = unverified
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| DirectoryError::Claim("iss".into()))?;
        let tenant_claim = unverified
            .get(&self.config.claims.tenant)
            .and_then(Value::as_str);
        let issuer = self
            .issuers
            .iter()
            .find(|issuer| issuer.config.names(iss, tenant_claim))
            .ok_or_else(|| DirectoryError::UntrustedIssuer(iss.to_string()))?;
        let kid = header.kid.clone().unwrap_or_default();
        let jwk = self.key(issuer, &kid).await?;
        if let Some(alg) = jwk.common.key_algorithm
            && alg.to_string() != format!("{:?}", header.alg)
        {
            return Err(DirectoryError::AlgorithmRefused(format!(
                "{:?} with a key for {alg}",
                header.alg
            )));
        }
        if matches!(jwk.common.public_key_use, Some(ref usage) if *usage != PublicKeyUse::Signature)
        {
            return Err(DirectoryError::UnknownKey(kid));
        }
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|error| DirectoryError::Refused(format!("key {kid:?}: {error}")))?;
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&issuer.config.audiences);
        validation.set_issuer(&[iss]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        // Time is checked below against the ledger's clock, not the library's.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|error| DirectoryError::Refused(error.to_string()))?
            .claims;
        self.check_time(&claims, now)?;
        self.identity(iss, &claims)
    }

    fn check_time(&self, claims: &Value, now: DateTime<Utc>) -> Result<(), DirectoryError> {
        let leeway = i64::try_from(self.config.leeway.as_secs()).unwrap_or(i64::MAX);
        let now = now.timestamp();
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| DirectoryError::Claim("exp".into()))?;
        if exp.saturating_add(leeway) <= now {
            return Err(DirectoryError::Expired);
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = nbf
                .as_i64()
                .ok_or_else(|| DirectoryError::Claim("nbf".into()))?;
            if nbf.saturating_sub(leeway) > now {
                return Err(DirectoryError::NotYetValid);
            }
        }
        Ok(())
    }

    fn identity(&self, iss: &str, claims: &Value) -> Result<DirectoryIdentity, DirectoryError> {
        let names = &self.config.claims;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let tenant_id = text(&names.tenant)
            .and_then(|tid| uuid::Uuid::parse_str(tid).ok())
            .map(domain::TenantId)
            .ok_or_else(|| DirectoryError::Claim(names.tenant.clone()))?;
        let subject = text(&names.user)
            .or_else(|| text(&names.user_fallback))
            .filter(|subject| !subject.is_empty())
            .ok_or_else(|| DirectoryError::Claim(names.user.clone()))?
            .to_string();
        let global_admin = claims
            .get(&names.roles)
            .and_then(Value::as_array)
            .is_some_and(|roles| {
                roles
                    .iter()
                    .any(|role| role.as_str() == Some(self.config.global_admin_role.as_str()))
            });
        let email = names
            .email
            .iter()
            .find_map(|name| text(name))
            .map(str::to_string);
        Ok(DirectoryIdentity {
            issuer: iss.to_string(),
            subject,
            tenant_id,
            global_admin,
            email,
            name: text(&names.name).map(str::to_string),
        })
    }

    /// The issuer's key `kid`, fetching the keys when none are known yet or the id is new
    /// (key rotation), at most once per `keys_refetch_min`.
    async fn key(&self, issuer: &IssuerKeys, kid: &str) -> Result<Jwk, DirectoryError> {
        let mut fetched = issuer.fetched.lock().await;
        if let Some(jwk) = find(&fetched.keys, kid) {
            return Ok(jwk);
        }
        let may_fetch = fetched
            .at
            .is_none_or(|at| at.elapsed() >= self.config.keys_refetch_min);
        if !may_fetch {
            return Err(DirectoryError::UnknownKey(kid.to_string()));
        }
        fetched.at = Some(Instant::now());
        let keys = self.fetch_keys(&issuer.config).await?;
        tracing::info!(issuer = %issuer.config.issuer, keys = keys.len(), "directory keys fetched");
        fetched.keys = keys;
        find(&fetched.keys, kid).ok_or_else(|| DirectoryError::UnknownKey(kid.to_string()))
    }

    async fn fetch_keys(
        &self,
        issuer: &IssuerConfig,
    ) -> Result<HashMap<String, Jwk>, DirectoryError> {
        let discovery = self.fetch_json(&issuer.discovery_url()).await?;
        let stated = discovery.get("issuer").and_then(Value::as_str);
        if stated != Some(issuer.issuer.as_str()) {
            return Err(DirectoryError::IssuerUnavailable(format!(
                "the discovery document names issuer {stated:?}, not {:?}",
                issuer.issuer
            )));
        }
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| DirectoryError::IssuerUnavailable("no jwks_uri".into()))?;
        let set = self.fetch_json(jwks_uri).await?;
        let listed = set
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| DirectoryError::IssuerUnavailable("the JWKS has no keys".into()))?;
        // Keys of kinds this library does not know are skipped, not fatal: an issuer may
        // publish encryption keys or new key types beside its signing keys.
        let keys = listed
            .iter()
            .filter_map(|key| serde_json::from_value::<Jwk>(key.clone()).ok())
            .take(self.config.keys_max)
            .map(|jwk| (jwk.common.key_id.clone().unwrap_or_default(), jwk))
            .collect();
        Ok(keys)
    }

    async fn fetch_json(&self, url: &str) -> Result<Value, DirectoryError> {
        let unavailable =
            |error: reqwest::Error| DirectoryError::IssuerUnavailable(error.to_string());
        self.client
            .get(url)
            .send()
            .await
            .map_err(unavailable)?
            .error_for_status()
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)
    }
}

/// The key with id `kid`; a token without a key id may use the issuer's only key.
fn find(keys: &HashMap<String, Jwk>, kid: &str) -> Option<Jwk> {
    match keys.get(kid) {
        Some(jwk) => Some(jwk.clone()),
        None if kid.is_empty() && keys.len() == 1 => keys.values().next().cloned(),
        None => None,
    }
}
