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

/// What an API key may do; each scope includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Reads (GET and HEAD).
    Read,
    /// Reads, and changes to monitors, channels and tags.
    Write,
    /// Everything: also the cluster's nodes and the API keys themselves.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Self::ALL.into_iter().find(|x| x.as_str() == s.trim())
    }

    /// The scope a request needs: the node registry's changes and the API
    /// keys need `admin`, other changes `write`, reads `read`.
    pub fn needed(method: &str, path: &str) -> Scope {
        let read = matches!(method, "GET" | "HEAD" | "OPTIONS");
        if path.starts_with("/api/v1/api-keys") || (!read && path.starts_with("/api/v1/nodes")) {
            Scope::Admin
        } else if read {
            Scope::Read
        } else {
            Scope::Write
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
    fn scopes_needed_by_requests() {
        for (method, path, want) in [
            ("GET", "/api/v1/monitors", Scope::Read),
            ("HEAD", "/api/v1/monitors/3", Scope::Read),
            ("POST", "/api/v1/monitors", Scope::Write),
            ("DELETE", "/api/v1/tags/1", Scope::Write),
            ("GET", "/api/v1/nodes", Scope::Read),
            ("POST", "/api/v1/nodes", Scope::Admin),
            ("GET", "/api/v1/api-keys", Scope::Admin),
            ("DELETE", "/api/v1/api-keys/2", Scope::Admin),
        ] {
            assert_eq!(Scope::needed(method, path), want, "{method} {path}");
        }
        assert!(Scope::Admin > Scope::Write && Scope::Write > Scope::Read);
        assert_eq!(Scope::parse("write"), Some(Scope::Write));
        assert_eq!(Scope::parse("root"), None);
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
