//! The verifier: picks the key by the token's `kid`, checks signature and claims, and
//! swaps in a freshly loaded key set on reload (SIGHUP, key file change) while
//! sessions keep running.

use super::keys::{KeySet, KeySource};
use super::{AuthError, Claims, Identity, KindDescription, algorithm};
use crate::clock::unix_now;
use crate::config::Config;
use crate::protocol::{UserId, clean_name};
use jsonwebtoken::{Algorithm, EncodingKey, Header, Validation};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Verifies tokens against the keys in force.
pub struct Verifier {
    source: KeySource,
    keys: RwLock<Arc<KeySet>>,
    max_name_chars: usize,
    /// Present only in dev mode, where the gateway mints its own tokens.
    dev_signer: Option<EncodingKey>,
    /// Claims dev tokens carry so they pass the configured `iss`/`aud` checks.
    dev_issuer: Option<String>,
    dev_audience: Option<String>,
    alg: Algorithm,
}

impl Verifier {
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let alg = algorithm(config.jwt_alg);
        // Dev mode with no secret: a random one, kept across reloads.
        let secret = match &config.jwt_secret {
            Some(secret) => Some(secret.as_bytes().to_vec()),
            None if config.dev_mode() && config.jwt_public_key_file.is_none() => {
                Some(rand::random::<[u8; 32]>().to_vec())
            }
            None => None,
        };
        let dev_signer = match &secret {
            Some(s) if config.dev_mode() => Some(EncodingKey::from_secret(s)),
            _ => None,
        };
        let mut validation = Validation::new(alg);
        validation.leeway = config.jwt_leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(iss) = &config.jwt_issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".into());
        }
        match &config.jwt_audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        let source = KeySource::new(config, secret, validation)?;
        let keys = source.load()?;
        Ok(Verifier {
            source,
            keys: RwLock::new(Arc::new(keys)),
            max_name_chars: config.max_name_chars,
            dev_signer,
            dev_issuer: config.jwt_issuer.clone(),
            dev_audience: config.jwt_audience.clone(),
            alg,
        })
    }

    fn current(&self) -> Arc<KeySet> {
        match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads every key source and swaps the set in; on failure the old keys stay.
    /// Returns how many keys are in force.
    pub fn reload(&self) -> Result<usize, String> {
        let fresh = Arc::new(self.source.load()?);
        let n = fresh.len();
        match self.keys.write() {
            Ok(mut keys) => *keys = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(n)
    }

    /// Keys in force now.
    pub fn key_count(&self) -> usize {
        self.current().len()
    }

    /// Key files watched for changes.
    pub fn files(&self) -> Vec<PathBuf> {
        self.source.files()
    }

    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::Invalid(e.kind_description()))?;
        let keys = self.current();
        let key = keys
            .select(header.kid.as_deref())
            .ok_or_else(|| AuthError::Invalid("unknown key id".into()))?;
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &key.validation)
            .map_err(|e| AuthError::Invalid(e.kind_description()))?;
        let claims = data.claims;
        let user = UserId::new(&claims.sub).map_err(|_| AuthError::BadSubject)?;
        let name = claims
            .name
            .map(|n| clean_name(&n, self.max_name_chars))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| user.to_string());
        Ok(Identity {
            user,
            name,
            rating: claims.rating.unwrap_or(super::DEFAULT_RATING),
            perms: claims.perms.into(),
            rooms: claims.rooms.map(Into::into),
            expires: claims.exp,
        })
    }

    /// Mints a short-lived token; only in dev mode.
    pub fn dev_token(&self, sub: &str, name: Option<&str>, ttl: Duration) -> Option<String> {
        let key = self.dev_signer.as_ref()?;
        let claims = Claims {
            sub: sub.to_owned(),
            exp: unix_now() + ttl.as_secs(),
            name: name.map(str::to_owned),
            rating: None,
            perms: vec!["broadcast".into()],
            rooms: None,
            iss: self.dev_issuer.clone(),
            aud: self.dev_audience.clone(),
        };
        jsonwebtoken::encode(&Header::new(self.alg), &claims, key).ok()
    }

    pub fn is_dev(&self) -> bool {
        self.dev_signer.is_some()
    }
}
