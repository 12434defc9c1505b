//! JWT verification (keys built once at startup) and the `Identity` a token grants.

use crate::clock::unix_now;
use crate::config::{Config, JwtAlg};
use crate::protocol::UserId;
use crate::protocol::clean_name;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Rating given to players whose token carries none.
pub const DEFAULT_RATING: i64 = 1500;

/// Who a session is, as proven by its token.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: UserId,
    pub name: String,
    pub rating: i64,
    pub perms: Vec<String>,
    /// Glob patterns of rooms the user may join; `None` means any room.
    pub rooms: Option<Vec<String>>,
}

impl Identity {
    pub fn may(&self, perm: &str) -> bool {
        self.perms.iter().any(|p| p == perm)
    }

    pub fn may_join(&self, room: &str) -> bool {
        match &self.rooms {
            None => true,
            Some(patterns) => patterns.iter().any(|p| glob_match(p, room)),
        }
    }
}

/// The claims Switchboard reads; `exp` is required by the validation.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub perms: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<String>>,
    /// Written when minting; on verification jsonwebtoken checks `iss`/`aud` itself
    /// (string or array forms), so they are not read back here.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// Why a token was refused. Messages never include the token itself.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token subject is not a valid user id")]
    BadSubject,
}

/// Verifies tokens with the one configured algorithm and key.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
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
        let (key, dev_signer) = if let Some(secret) = &config.jwt_secret {
            let signer = config
                .dev_mode()
                .then(|| EncodingKey::from_secret(secret.as_bytes()));
            (DecodingKey::from_secret(secret.as_bytes()), signer)
        } else if let Some(path) = &config.jwt_public_key_file {
            let pem = std::fs::read(path).map_err(|e| {
                format!(
                    "SWITCHBOARD_JWT_PUBLIC_KEY_FILE {}: cannot read: {e}",
                    path.display()
                )
            })?;
            let key = match config.jwt_alg {
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
            (key, None)
        } else {
            let secret: [u8; 32] = rand::random();
            (
                DecodingKey::from_secret(&secret),
                Some(EncodingKey::from_secret(&secret)),
            )
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
        Ok(Verifier {
            key,
            validation,
            max_name_chars: config.max_name_chars,
            dev_signer,
            dev_issuer: config.jwt_issuer.clone(),
            dev_audience: config.jwt_audience.clone(),
            alg,
        })
    }

    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
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
            rating: claims.rating.unwrap_or(DEFAULT_RATING),
            perms: claims.perms,
            rooms: claims.rooms,
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

trait KindDescription {
    fn kind_description(&self) -> String;
}

impl KindDescription for jsonwebtoken::errors::Error {
    /// A short reason without any token material.
    fn kind_description(&self) -> String {
        use jsonwebtoken::errors::ErrorKind;
        match self.kind() {
            ErrorKind::ExpiredSignature => "expired".into(),
            ErrorKind::InvalidSignature => "bad signature".into(),
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                "algorithm not accepted".into()
            }
            ErrorKind::InvalidIssuer => "wrong issuer".into(),
            ErrorKind::InvalidAudience => "wrong audience".into(),
            ErrorKind::MissingRequiredClaim(c) => format!("missing claim {c}"),
            ErrorKind::ImmatureSignature => "not yet valid".into(),
            _ => "malformed".into(),
        }
    }
}

/// Signs a token with an HMAC secret: the `switchboard token` command and tests.
pub fn sign_hmac(alg: JwtAlg, secret: &[u8], claims: &Claims) -> Result<String, String> {
    if !alg.is_hmac() {
        return Err("only HS256/HS384/HS512 tokens can be minted here".into());
    }
    jsonwebtoken::encode(
        &Header::new(algorithm(alg)),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| e.to_string())
}

fn algorithm(alg: JwtAlg) -> Algorithm {
    match alg {
        JwtAlg::Hs256 => Algorithm::HS256,
        JwtAlg::Hs384 => Algorithm::HS384,
        JwtAlg::Hs512 => Algorithm::HS512,
        JwtAlg::Rs256 => Algorithm::RS256,
        JwtAlg::Rs384 => Algorithm::RS384,
        JwtAlg::Rs512 => Algorithm::RS512,
        JwtAlg::Ps256 => Algorithm::PS256,
        JwtAlg::Ps384 => Algorithm::PS384,
        JwtAlg::Ps512 => Algorithm::PS512,
        JwtAlg::Es256 => Algorithm::ES256,
        JwtAlg::Es384 => Algorithm::ES384,
        JwtAlg::EdDsa => Algorithm::EdDSA,
    }
}

/// Glob match with `*` (any run) and `?` (one character), as used by the `rooms` claim.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", "lobby"));
        assert!(glob_match("team-*", "team-red"));
        assert!(!glob_match("team-*", "lobby"));
        assert!(glob_match("g?me", "game"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("lobby", "lobby"));
        assert!(!glob_match("", "x"));
    }
}
