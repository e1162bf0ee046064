//! Pure checks of the host names and addresses people type: a monitor's
//! `hostname`, a node's `host:port`, and a URL shown where its credentials
//! must not be (metrics labels).

use std::net::IpAddr;

/// A host without the brackets of an IPv6 literal (`[::1]` → `::1`).
pub fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(host)
}

/// Longest host name (RFC 1123, without the trailing dot).
pub const HOSTNAME_MAX: usize = 253;

/// A host name (RFC 1123: dot-separated labels of letters, digits and
/// hyphens, 1–63 characters each, not starting or ending with a hyphen; a
/// trailing dot allowed) or an IP literal (IPv6 with or without brackets).
/// `underscores` also allows `_` in labels, as DNS names like
/// `_sip._tcp.example.com` have.
pub fn check_hostname(h: &str, underscores: bool) -> Result<(), String> {
    if h.is_empty() {
        return Err("must not be empty".into());
    }
    if unbracket(h).parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let name = h.strip_suffix('.').unwrap_or(h);
    if name.len() > HOSTNAME_MAX {
        return Err(format!("must be at most {HOSTNAME_MAX} characters"));
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || (underscores && b == b'_'))
    };
    if name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!(
            "'{}' is not a host name or IP address (letters, digits, '-'{} and dots; no scheme, path or port)",
            excerpt(h, 64),
            if underscores { ", '_'" } else { "" }
        ))
    }
}

/// `host:port`: a host name or IP literal (IPv6 in brackets) and a port 1–65535.
pub fn check_host_port(s: &str) -> Result<(), String> {
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err("must be host:port".into());
    };
    if !port.parse::<u16>().is_ok_and(|p| p > 0) {
        return Err("must be host:port with a port between 1 and 65535".into());
    }
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if host.contains(':') && !bracketed {
        return Err("an IPv6 address must be in brackets: [::1]:3001".into());
    }
    check_hostname(host, false).map_err(|e| format!("must be host:port: the host {e}"))
}

/// `url` with its user name, password, query and fragment removed: what may
/// be shown to anyone who can read metrics (`https://h/p?token=…` →
/// `https://h/p`).
pub fn url_without_secrets(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// At most `max` characters of `s`, with `…` when cut; control characters
/// are shown as `?`.
pub fn excerpt(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        for ok in [
            "example.com",
            "example.com.",
            "a-b.c",
            "localhost",
            "10.0.0.1",
            "::1",
            "[::1]",
            "xn--bcher-kva.example",
            "123.example",
        ] {
            assert_eq!(check_hostname(ok, false), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "exa mple",
            "http://example.com",
            "example.com/path",
            "example.com:80",
            "-a.com",
            "a-.com",
            "a..b",
            "a\0b",
            "_sip._tcp.example.com",
        ] {
            assert!(check_hostname(bad, false).is_err(), "{bad:?}");
        }
        assert_eq!(check_hostname("_sip._tcp.example.com", true), Ok(()));
        assert!(check_hostname(&"a".repeat(64), false).is_err());
        let long = vec!["a".repeat(63); 5].join(".");
        assert!(check_hostname(&long, false).unwrap_err().contains("253"));
        assert!(
            check_hostname(&"x".repeat(1 << 20), false)
                .unwrap_err()
                .len()
                < 200
        );
    }

    #[test]
    fn host_ports() {
        for ok in ["node1:3001", "10.0.0.2:80", "[::1]:3001", "n.example:1"] {
            assert_eq!(check_host_port(ok), Ok(()), "{ok}");
        }
        for bad in [
            "node1",
            "node1:0",
            "node1:65536",
            "http://node1:80",
            "::1:3001",
            "no de:1",
            "a\0:1",
            ":80",
        ] {
            assert!(check_host_port(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls_lose_credentials_query_and_fragment() {
        let u = url::Url::parse("https://user:pw@h.example:8443/p/a?token=s3cret#frag").unwrap();
        assert_eq!(url_without_secrets(&u), "https://h.example:8443/p/a");
        let u = url::Url::parse("http://h/").unwrap();
        assert_eq!(url_without_secrets(&u), "http://h/");
    }

    #[test]
    fn excerpts_are_bounded_and_printable() {
        assert_eq!(excerpt("abc", 5), "abc");
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(excerpt("a\nb", 5), "a?b");
    }
}
