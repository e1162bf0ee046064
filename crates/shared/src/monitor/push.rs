//! `push`: passive; results arrive on `/api/push/{token}`.

use super::{Errors, MonitorFields, MonitorKind};

/// The `push` fields: only the token, when given.
pub(super) fn parse(f: &MonitorFields, errs: &mut Errors) -> Option<MonitorKind> {
    if let Some(Err(msg)) = f.push_token.as_deref().map(check_push_token) {
        errs.push("pushToken", msg);
    }
    Some(MonitorKind::Push)
}

/// Shortest push token: a token is the only thing guarding a push URL, so a
/// short one could be guessed. Uptime Kuma 1.23 generated 10 characters, so
/// imported tokens still fit; Picket generates 32.
pub const PUSH_TOKEN_MIN: usize = 10;

/// Push tokens travel in URLs: 10–255 characters of `A-Z a-z 0-9 - _`.
pub fn check_push_token(t: &str) -> Result<(), String> {
    if !(PUSH_TOKEN_MIN..=255).contains(&t.len()) {
        return Err(format!("must be {PUSH_TOKEN_MIN} to 255 characters"));
    }
    if !t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("may contain only letters, digits, '-' and '_'".into());
    }
    Ok(())
}

/// A fresh push token: 32 letters and digits, as Uptime Kuma generates.
pub fn new_push_token() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}
