//! Two-factor codes, pure: RFC 6238 TOTP (HMAC-SHA1, 30-second steps, six
//! digits, what every authenticator app speaks), the base32 form of its
//! secret, the `otpauth://` URI apps import, and recovery codes.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// Seconds per code.
pub const STEP_SECS: i64 = 30;
/// Steps either side of now a code is accepted for (clock drift).
pub const SKEW_STEPS: i64 = 1;
/// Recovery codes made when two-factor is turned on.
pub const RECOVERY_CODES: usize = 10;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding (how authenticator apps take secrets).
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes [`base32`] (case and spaces ignored); `None` on a bad character.
pub fn unbase32(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0);
    for c in s.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let v = BASE32
            .iter()
            .position(|&b| b as char == c.to_ascii_uppercase())? as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Some(out)
}

/// A new secret: 20 random bytes (160 bits, RFC 4226's recommendation), base32.
pub fn new_secret() -> String {
    base32(&rand::random::<[u8; 20]>())
}

/// The code of time step `step` for `key`.
pub fn code_at(key: &[u8], step: i64) -> u32 {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = (h[h.len() - 1] & 0x0f) as usize;
    let bin = (u32::from(h[off]) & 0x7f) << 24
        | u32::from(h[off + 1]) << 16
        | u32::from(h[off + 2]) << 8
        | u32::from(h[off + 3]);
    bin % 1_000_000
}

/// The time step of epoch ms `now`.
pub fn step_of(now_ms: i64) -> i64 {
    now_ms.div_euclid(1000 * STEP_SECS)
}

/// The step `code` belongs to, if it is the code of a step within
/// [`SKEW_STEPS`] of now and later than `after` (a code is good once).
pub fn verify(secret: &str, code: &str, now_ms: i64, after: i64) -> Option<i64> {
    let code = code.trim().replace(' ', "");
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let want: u32 = code.parse().ok()?;
    let key = unbase32(secret)?;
    let now = step_of(now_ms);
    (now - SKEW_STEPS..=now + SKEW_STEPS)
        .filter(|s| *s > after)
        .find(|s| code_at(&key, *s) == want)
}

/// The `otpauth://` URI an authenticator app imports.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &str) -> String {
    let enc = |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits=6&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

/// New recovery codes, `xxxxx-xxxxx` of base32 (50 bits each).
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let s = base32(&rand::random::<[u8; 7]>()).to_lowercase();
            format!("{}-{}", &s[..5], &s[5..10])
        })
        .collect()
}

/// A recovery code as typed, in the one form that is hashed.
pub fn normalize_recovery(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1: the key is "12345678901234567890"; the
    /// RFC's eight-digit codes end in these six digits.
    #[test]
    fn rfc_6238_vectors() {
        let key = b"12345678901234567890";
        for (t, want) in [
            (59, 287_082),
            (1_111_111_109, 81_804),
            (1_111_111_111, 50_471),
            (1_234_567_890, 5_924),
            (2_000_000_000, 279_037),
            (20_000_000_000, 353_130),
        ] {
            assert_eq!(code_at(key, t / STEP_SECS), want, "t = {t}");
        }
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(unbase32("mzxw 6ytb oi").unwrap(), b"foobar");
        assert!(unbase32("0189").is_none());
        let s = new_secret();
        assert_eq!(s.len(), 32);
        assert_eq!(unbase32(&s).unwrap().len(), 20);
    }

    #[test]
    fn a_code_is_good_near_its_time_and_only_once() {
        let secret = base32(b"12345678901234567890");
        let now = 1_111_111_111_000;
        let code = format!("{:06}", code_at(b"12345678901234567890", step_of(now)));
        let step = verify(&secret, &code, now, 0).expect("now");
        assert!(
            verify(&secret, &code, now + 30_000, 0).is_some(),
            "one step late"
        );
        assert!(
            verify(&secret, &code, now + 90_000, 0).is_none(),
            "too late"
        );
        assert!(verify(&secret, &code, now, step).is_none(), "used once");
        assert!(verify(&secret, "12345", now, 0).is_none());
        assert!(verify(&secret, "abcdef", now, 0).is_none());
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalise() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let set: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(set.len(), RECOVERY_CODES);
        assert_eq!(normalize_recovery(" AbCde-fGhIj "), "abcdefghij");
        assert!(
            otpauth_uri("Picket", "ad min", "ABC")
                .starts_with("otpauth://totp/Picket:ad+min?secret=ABC")
        );
    }
}
