//! `push`: passive; results arrive on `/api/push/{token}`.

use super::{Errors, MonitorFields, MonitorKind};

/// The `push` fields: only the token, when given.
pub(super) fn parse(f: &MonitorFields, errs: &mut Errors) -> Option<MonitorKind> {
    if let Some(Err(msg)) = f.push_token.as_deref().map(check_push_token) {
        errs.push("pushToken", msg);
    }
    Some(MonitorKind::Push)
}

/// Push tokens travel in URLs: 1–255 characters of `A-Z a-z 0-9 - _`.
pub fn check_push_token(t: &str) -> Result<(), String> {
    if t.is_empty() || t.len() > 255 {
        return Err("must be 1 to 255 characters".into());
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
