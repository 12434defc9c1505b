//! JWT verification and the `Identity` a token grants: the claims, the error kinds and
//! the `rooms` glob; keys and their reload live in `keys` and `verifier`.

mod keys;
mod reload;
mod verifier;

pub use keys::parse_named_secrets;
pub use reload::{reload_keys, watch_keys};
pub use verifier::Verifier;

use crate::config::JwtAlg;
use crate::protocol::UserId;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// Rating given to players whose token carries none.
pub const DEFAULT_RATING: i64 = 1500;

/// Who a session is, as proven by its token.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: UserId,
    pub name: String,
    pub rating: i64,
    /// (Boxed slices, not `Vec`s: an identity lives in every session, and is never
    /// grown.)
    pub perms: Box<[String]>,
    /// Glob patterns of rooms the user may join; `None` means any room.
    pub rooms: Option<Box<[String]>>,
    /// The token's `exp` (Unix seconds): the session ends then unless refreshed.
    pub expires: u64,
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
