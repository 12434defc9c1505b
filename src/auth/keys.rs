//! The token keys in force: a default key (no `kid`) and keys named by `kid`, each
//! pinned to the algorithms of its own family, loaded from the settings and key files.

use crate::config::{Config, JwtAlg};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::collections::HashMap;
use std::path::PathBuf;

/// One verification key and the validation (algorithms, claims) tokens must pass with it.
pub(super) struct Key {
    pub(super) decoding: DecodingKey,
    pub(super) validation: Validation,
}

/// Every key in force at one moment; swapped whole on reload.
pub(super) struct KeySet {
    pub(super) default: Option<Key>,
    pub(super) named: HashMap<String, Key>,
}

impl KeySet {
    /// The key for a token's `kid`. A token without `kid` may use only the default key.
    /// A `kid` names a key; with no named keys configured at all, the default key is
    /// used whatever the `kid` (issuers that stamp a `kid` on a single key keep working).
    pub(super) fn select(&self, kid: Option<&str>) -> Option<&Key> {
        match kid {
            Some(kid) if !self.named.is_empty() => self.named.get(kid),
            _ => self.default.as_ref(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.named.len() + usize::from(self.default.is_some())
    }
}

/// Where the keys come from; kept so a reload reads the same sources again.
pub(super) struct KeySource {
    /// The default HMAC secret: configured, or random in dev mode without one.
    pub(super) secret: Option<Vec<u8>>,
    pub(super) public_key_file: Option<PathBuf>,
    pub(super) jwks_file: Option<PathBuf>,
    pub(super) named_secrets: Vec<(String, String)>,
    pub(super) alg: JwtAlg,
    /// Claims rules shared by every key; each key sets its own algorithms.
    pub(super) base: Validation,
}

impl KeySource {
    pub(super) fn new(
        config: &Config,
        secret: Option<Vec<u8>>,
        base: Validation,
    ) -> Result<Self, String> {
        let named_secrets = match config.jwt_secrets.as_deref() {
            Some(list) => parse_named_secrets(list)?,
            None => Vec::new(),
        };
        Ok(KeySource {
            secret,
            public_key_file: config.jwt_public_key_file.clone(),
            jwks_file: config.jwt_jwks_file.clone(),
            named_secrets,
            alg: config.jwt_alg,
            base,
        })
    }

    /// Files whose change should trigger a reload.
    pub(super) fn files(&self) -> Vec<PathBuf> {
        self.public_key_file
            .iter()
            .chain(self.jwks_file.iter())
            .cloned()
            .collect()
    }

    /// Reads every source; any bad key fails the whole load (the caller keeps the old set).
    pub(super) fn load(&self) -> Result<KeySet, String> {
        let alg = super::algorithm(self.alg);
        let default = if let Some(secret) = &self.secret {
            Some(self.key(DecodingKey::from_secret(secret), &[alg]))
        } else if let Some(path) = &self.public_key_file {
            let pem = std::fs::read(path).map_err(|e| {
                format!(
                    "SWITCHBOARD_JWT_PUBLIC_KEY_FILE {}: cannot read: {e}",
                    path.display()
                )
            })?;
            let key = match self.alg {
                JwtAlg::Rs256
                | JwtAlg::Rs384
                | JwtAlg::Rs512
                | JwtAlg::Ps256
                | JwtAlg::Ps384
                | JwtAlg::Ps512 => DecodingKey::from_rsa_pem(&pem),
                JwtAlg::Es256 | JwtAlg::Es384 => DecodingKey::from_ec_pem(&pem),
                JwtAlg::EdDsa => DecodingKey::from_ed_pem(&pem),
                JwtAlg::Hs256 | JwtAlg::Hs384 | JwtAlg::Hs512 => {
                    return Err("SWITCHBOARD_JWT_ALG must be asymmetric with a public key".into());
                }
            }
            .map_err(|e| format!("SWITCHBOARD_JWT_PUBLIC_KEY_FILE: not a usable key: {e}"))?;
            Some(self.key(key, &[alg]))
        } else {
            None
        };
        let mut named = HashMap::new();
        let hs = if self.alg.is_hmac() {
            alg
        } else {
            Algorithm::HS256
        };
        for (kid, secret) in &self.named_secrets {
            let key = self.key(DecodingKey::from_secret(secret.as_bytes()), &[hs]);
            named.insert(kid.clone(), key);
        }
        if let Some(path) = &self.jwks_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "SWITCHBOARD_JWT_JWKS_FILE {}: cannot read: {e}",
                    path.display()
                )
            })?;
            let set: JwkSet = serde_json::from_str(&text).map_err(|e| {
                format!(
                    "SWITCHBOARD_JWT_JWKS_FILE {}: not a JWK set: {e}",
                    path.display()
                )
            })?;
            for jwk in &set.keys {
                let (kid, key) = self
                    .jwk_key(jwk)
                    .map_err(|e| format!("SWITCHBOARD_JWT_JWKS_FILE {}: {e}", path.display()))?;
                if named.insert(kid.clone(), key).is_some() {
                    return Err(format!(
                        "SWITCHBOARD_JWT_JWKS_FILE {}: key id {kid:?} is used twice",
                        path.display()
                    ));
                }
            }
        }
        Ok(KeySet { default, named })
    }

    fn key(&self, decoding: DecodingKey, algorithms: &[Algorithm]) -> Key {
        let mut validation = self.base.clone();
        validation.algorithms = algorithms.to_vec();
        Key {
            decoding,
            validation,
        }
    }

    /// A JWK as a key pinned to its family (or to its `alg` when it names one).
    fn jwk_key(&self, jwk: &Jwk) -> Result<(String, Key), String> {
        let kid = jwk
            .common
            .key_id
            .clone()
            .filter(|k| !k.is_empty())
            .ok_or("every key needs a \"kid\"")?;
        if matches!(
            jwk.common.public_key_use,
            Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
        ) {
            return Err(format!("key {kid:?} is for encryption (\"use\": \"enc\")"));
        }
        let family: Vec<Algorithm> = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => vec![
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => vec![Algorithm::ES256],
                EllipticCurve::P384 => vec![Algorithm::ES384],
                _ => return Err(format!("key {kid:?}: unsupported curve")),
            },
            AlgorithmParameters::OctetKeyPair(p) => match p.curve {
                EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
                _ => return Err(format!("key {kid:?}: unsupported curve")),
            },
            AlgorithmParameters::OctetKey(_) => {
                vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]
            }
            _ => return Err(format!("key {kid:?}: unsupported key type")),
        };
        let algorithms = match jwk.common.key_algorithm {
            None => family,
            Some(named) => {
                let alg = jwk_alg(named)
                    .filter(|a| family.contains(a))
                    .ok_or_else(|| format!("key {kid:?}: \"alg\" does not fit its key type"))?;
                vec![alg]
            }
        };
        let decoding =
            DecodingKey::from_jwk(jwk).map_err(|e| format!("key {kid:?} is not usable: {e}"))?;
        Ok((kid, self.key(decoding, &algorithms)))
    }
}

fn jwk_alg(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::HS256 => Algorithm::HS256,
        KeyAlgorithm::HS384 => Algorithm::HS384,
        KeyAlgorithm::HS512 => Algorithm::HS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Parses SWITCHBOARD_JWT_SECRETS: `kid1:secret1,kid2:secret2`, kids unique and secrets
/// non-empty. Errors name the setting but never echo a secret.
pub fn parse_named_secrets(list: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, entry) in list.split(',').enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let Some((kid, secret)) = entry.split_once(':') else {
            return Err(format!(
                "SWITCHBOARD_JWT_SECRETS entry {} must be kid:secret",
                i + 1
            ));
        };
        let kid = kid.trim();
        if kid.is_empty() || secret.is_empty() {
            return Err(format!(
                "SWITCHBOARD_JWT_SECRETS entry {} needs a kid and a secret",
                i + 1
            ));
        }
        if out.iter().any(|(k, _)| k == kid) {
            return Err(format!(
                "SWITCHBOARD_JWT_SECRETS: kid {kid:?} is used twice"
            ));
        }
        out.push((kid.to_owned(), secret.to_owned()));
    }
    if out.is_empty() {
        return Err("SWITCHBOARD_JWT_SECRETS is empty".into());
    }
    Ok(out)
}
