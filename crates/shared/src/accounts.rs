//! Dashboard accounts, pure: password hashing (argon2id, PHC strings),
//! what a username and a password must be, and the session settings.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, password_hash::rand_core::OsRng};

/// A session lasts at most this long, however active.
pub const SESSION_MAX_MS: i64 = 7 * 24 * 3_600_000;
/// A session unused for this long ends.
pub const SESSION_IDLE_MS: i64 = 12 * 3_600_000;
/// A session's last use is written at most this often (not on every request).
pub const SESSION_TOUCH_MS: i64 = 60_000;

/// The argon2id hash of `password` (a PHC string with its salt).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
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
