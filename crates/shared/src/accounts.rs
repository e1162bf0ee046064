//! Dashboard accounts, pure: password hashing (argon2id, PHC strings),
//! what a username and a password must be, and the session settings.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// A session lasts at most this long, however active.
pub const SESSION_MAX_MS: i64 = 7 * 24 * 3_600_000;
/// A session unused for this long ends.
pub const SESSION_IDLE_MS: i64 = 12 * 3_600_000;
/// A session's last use is written at most this often (not on every request).
pub const SESSION_TOUCH_MS: i64 = 60_000;

/// The argon2id hash of `password` (a PHC string with its salt).
pub fn hash_password(password: &str) -> String {
    // 16 random bytes from the OS generator, as argon2's own `generate` takes.
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .expect("16 bytes are a valid salt length");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters hashes any input")
        .to_string()
}

/// Whether `password` matches the stored `hash` (false for a malformed hash).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash to verify against when the account does not exist, so an unknown
/// name costs the same time as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("picket decoy password"))
}

/// A username: 1 to 64 characters, no control characters, no surrounding
/// spaces.
pub fn check_username(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if n == 0 || n > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if name.trim() != name || name.chars().any(char::is_control) {
        return Err("must not start or end with a space or hold control characters".into());
    }
    Ok(())
}

/// A password strong enough for a monitoring admin: at least 10
/// characters, at least three of lower case, upper case, digits and
/// symbols (or 16 characters of any kind), not the username, at most 256.
pub fn check_password(username: &str, password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n > 256 {
        return Err("must be at most 256 characters".into());
    }
    if n < 10 {
        return Err("must be at least 10 characters".into());
    }
    if password.eq_ignore_ascii_case(username) {
        return Err("must not be the username".into());
    }
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    let distinct = password
        .chars()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if (classes < 3 && n < 16) || distinct < 5 {
        return Err(
            "is too weak: use 16 or more characters, or mix three of lower case, upper case, \
             digits and symbols"
                .into(),
        );
    }
    Ok(())
}

/// Failed logins allowed per key (an account name, a client address) in a
/// window, before further attempts are refused until the window ends.
pub const LOGIN_FAILURES: u32 = 5;
pub const LOGIN_WINDOW_MS: i64 = 15 * 60_000;
/// Keys a limiter remembers at most; past it, the stalest are forgotten
/// (an attacker cycling addresses cannot grow a node's memory).
pub const LOGIN_KEYS_MAX: usize = 100_000;

/// Failed-login counts by key, over fixed windows. Pure: the caller gives
/// the time. The login checks the account's key and the client's address
/// both, and counts a failure against both.
/// The same limiter counts failed API authentication and unknown push
/// tokens, with its own allowance ([`LoginLimiter::new`]).
#[derive(Debug)]
pub struct LoginLimiter {
    failures: std::collections::HashMap<String, (i64, u32)>,
    /// Failures a key may have in one window.
    max: u32,
    /// The window, ms.
    window_ms: i64,
}

impl Default for LoginLimiter {
    /// The login's allowance: [`LOGIN_FAILURES`] in [`LOGIN_WINDOW_MS`].
    fn default() -> Self {
        Self::new(LOGIN_FAILURES, LOGIN_WINDOW_MS)
    }
}

impl LoginLimiter {
    /// A limiter allowing `max` failures per key in each `window_ms`.
    pub fn new(max: u32, window_ms: i64) -> Self {
        Self {
            failures: Default::default(),
            max,
            window_ms,
        }
    }

    /// `Err(ms)`: `key` is refused for another `ms`.
    pub fn check(&self, key: &str, now: i64) -> Result<(), i64> {
        match self.failures.get(key) {
            Some(&(start, n)) if n >= self.max && now < start + self.window_ms => {
                Err(start + self.window_ms - now)
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed attempt against `key`.
    pub fn fail(&mut self, key: &str, now: i64) {
        if self.failures.len() >= LOGIN_KEYS_MAX && !self.failures.contains_key(key) {
            self.failures
                .retain(|_, (start, _)| now < *start + self.window_ms);
            if self.failures.len() >= LOGIN_KEYS_MAX
                && let Some(stalest) = self
                    .failures
                    .iter()
                    .min_by_key(|(_, (start, _))| *start)
                    .map(|(k, _)| k.clone())
            {
                self.failures.remove(&stalest);
            }
        }
        let e = self.failures.entry(key.to_owned()).or_insert((now, 0));
        if now >= e.0 + self.window_ms {
            *e = (now, 0);
        }
        e.1 += 1;
    }

    /// A successful login clears `key`'s count.
    pub fn succeed(&mut self, key: &str) {
        self.failures.remove(key);
    }

    pub fn len(&self) -> usize {
        self.failures.len()
    }

    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password() {
        let h = hash_password("Correct-Horse-9");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("Correct-Horse-9", &h));
        assert!(!verify_password("correct-horse-9", &h));
        assert!(!verify_password("Correct-Horse-9", "not a hash"));
        assert_ne!(h, hash_password("Correct-Horse-9"), "salted");
        assert!(!verify_password("anything", decoy_hash()));
    }

    #[test]
    fn failed_logins_are_limited_per_key_for_a_window() {
        let mut l = LoginLimiter::default();
        for i in 0..LOGIN_FAILURES {
            assert_eq!(l.check("admin", 1_000 + i64::from(i)), Ok(()));
            l.fail("admin", 1_000 + i64::from(i));
        }
        assert_eq!(l.check("admin", 2_000), Err(LOGIN_WINDOW_MS - 1_000));
        assert_eq!(l.check("other", 2_000), Ok(()), "per key");
        // The window ends: allowed again, and counting starts over.
        let later = 1_000 + LOGIN_WINDOW_MS;
        assert_eq!(l.check("admin", later), Ok(()));
        l.fail("admin", later);
        assert_eq!(l.check("admin", later + 1), Ok(()));
        // A success clears the count.
        for _ in 0..LOGIN_FAILURES - 1 {
            l.fail("ip:10.0.0.1", 5);
        }
        l.succeed("ip:10.0.0.1");
        l.fail("ip:10.0.0.1", 6);
        assert_eq!(l.check("ip:10.0.0.1", 7), Ok(()));
    }

    #[test]
    fn the_limiter_forgets_the_stalest_keys_past_its_bound() {
        let mut l = LoginLimiter::default();
        for i in 0..LOGIN_KEYS_MAX as i64 {
            l.fail(&format!("ip:{i}"), i);
        }
        assert_eq!(l.len(), LOGIN_KEYS_MAX);
        l.fail("ip:new", LOGIN_KEYS_MAX as i64);
        assert_eq!(l.len(), LOGIN_KEYS_MAX, "bounded");
        assert!(!l.failures.contains_key("ip:0"), "the stalest went");
        assert!(l.failures.contains_key("ip:new"));
    }

    #[test]
    fn weak_passwords_and_bad_names_are_refused() {
        for (pw, ok) in [
            ("short1A!", false),
            ("aaaaaaaaaaaaaaaaaaaa", false),
            ("alllowercaseletters", true),
            ("lowercase123", false),
            ("Lowercase123", true),
            ("Administrator", false),
            ("Tr0ub4dor&3", true),
        ] {
            assert_eq!(check_password("administrator", pw).is_ok(), ok, "{pw}");
        }
        assert!(check_password("x", &"Ab1!".repeat(70)).is_err());
        assert!(check_username("admin").is_ok());
        for bad in ["", " admin", "ad\nmin", &"a".repeat(65)] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
    }
}
