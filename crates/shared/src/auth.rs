//! API key format, hashing and constant-time comparison. Keys look like
//! `pk<id>_<secret>`; only the SHA-256 of the secret is stored.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Hex SHA-256 of a secret. The secrets are 256 random bits, so a fast hash is
/// enough (there is nothing to brute-force, unlike a password).
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh random secret: 32 bytes, hex.
pub fn generate_secret() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// The full token shown once to the user.
pub fn format_token(id: i64, secret: &str) -> String {
    format!("pk{id}_{secret}")
}

/// Splits `pk<id>_<secret>` into its id and secret.
pub fn split_token(token: &str) -> Option<(i64, &str)> {
    let rest = token.strip_prefix("pk")?;
    let (id, secret) = rest.split_once('_')?;
    Some((id.parse().ok()?, secret))
}

/// Constant-time equality of two strings (length is not secret).
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The token in an `Authorization` header value: `Bearer <t>` or the bare token,
/// as Uptime Kuma's cluster API accepts both.
pub fn token_from_header(value: &str) -> &str {
    let v = value.trim();
    match v.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
        _ => v,
    }
}

/// The bootstrap token (`PICKET_API_TOKEN`), held only as its hash.
#[derive(Clone, Default)]
pub struct Bootstrap(Option<String>);

impl Bootstrap {
    pub fn new(token: Option<&str>) -> Self {
        Self(token.filter(|t| !t.is_empty()).map(hash_secret))
    }
    /// Whether a bootstrap token was configured.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }
    pub fn matches(&self, token: &str) -> bool {
        self.0
            .as_deref()
            .is_some_and(|h| ct_eq(h, &hash_secret(token)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip() {
        let s = generate_secret();
        let t = format_token(42, &s);
        assert_eq!(split_token(&t), Some((42, s.as_str())));
        assert_eq!(split_token("pkx_abc"), None);
        assert_eq!(split_token("nope"), None);
    }

    #[test]
    fn header_forms() {
        assert_eq!(token_from_header("Bearer abc"), "abc");
        assert_eq!(token_from_header("bearer  abc "), "abc");
        assert_eq!(token_from_header("abc"), "abc");
    }

    #[test]
    fn bootstrap_matches_only_its_token() {
        let b = Bootstrap::new(Some("s3cret"));
        assert!(b.matches("s3cret"));
        assert!(!b.matches("s3cre"));
        assert!(!Bootstrap::new(None).matches(""));
        assert!(!Bootstrap::new(Some("")).matches(""));
    }
}
