//! TLS certificate facts for `https` monitors: days until the leaf
//! certificate expires and whether it verified. When verification fails
//! (e.g. an expired certificate) the request carries no certificate, so a
//! second, permissive handshake fetches it.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;

/// What one check learnt about the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertInfo {
    /// Whole days until `notAfter` (negative once expired).
    pub days_remaining: i64,
    /// Whether the certificate verified (chain and dates) on this check.
    pub valid: bool,
    /// `notAfter`, epoch ms.
    pub not_after_ms: i64,
}

/// Reads `notAfter` from a DER certificate.
pub fn not_after_ms(der: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp() * 1000)
}

/// Days remaining (floored) and validity: `verified` is whether the chain
/// was checked and accepted by the request's TLS stack.
pub fn evaluate(not_after_ms: i64, now_ms: i64, verified: bool) -> CertInfo {
    let left = not_after_ms - now_ms;
    CertInfo {
        days_remaining: left.div_euclid(86_400_000),
        valid: verified && left > 0,
        not_after_ms,
    }
}

/// The expiry rule: `Some(reason)` when an `expiryNotification` threshold of
/// `threshold_days` (0 = off) makes the monitor DOWN.
pub fn expiry_problem(cert: &CertInfo, threshold_days: u32) -> Option<String> {
    if cert.days_remaining < 0 {
        // Days are floored: -1 means "expired less than a day ago".
        return Some(match -cert.days_remaining - 1 {
            0 => "certificate expired less than a day ago".to_owned(),
            n => format!("certificate expired {n} days ago"),
        });
    }
    if threshold_days > 0 && cert.days_remaining < i64::from(threshold_days) {
        return Some(format!(
            "certificate expires in {} days (expiryNotification: {threshold_days} days)",
            cert.days_remaining
        ));
    }
    None
}

/// Accepts any certificate: used only to read an invalid server's
/// certificate, never to send a request.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Handshakes with `host` at `addrs` accepting any certificate and returns the
/// leaf certificate (DER).
pub async fn fetch_leaf(
    host: &str,
    addrs: &[std::net::SocketAddr],
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
    let fut = async {
        let tcp = tokio::net::TcpStream::connect(addrs)
            .await
            .map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let (_, conn) = tls.get_ref();
        conn.peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.as_ref().to_vec())
            .ok_or_else(|| "the server sent no certificate".to_owned())
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| "TLS handshake timed out".to_owned())?
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn days_and_validity() {
        let now = 1_000 * DAY;
        // (not_after, verified, days, valid)
        let cases = [
            (now + 10 * DAY, true, 10, true),
            (now + 10 * DAY - 1, true, 9, true),
            (now + DAY / 2, true, 0, true),
            (now + 10 * DAY, false, 10, false),
            (now - 1, true, -1, false),
            (now - 3 * DAY, false, -3, false),
        ];
        for (na, verified, days, valid) in cases {
            let c = evaluate(na, now, verified);
            assert_eq!(
                (c.days_remaining, c.valid),
                (days, valid),
                "{na} {verified}"
            );
        }
    }

    #[test]
    fn expiry_threshold_table() {
        let cert = |days| CertInfo {
            days_remaining: days,
            valid: days >= 0,
            not_after_ms: 0,
        };
        let cases = [
            (30, 0, None),
            (5, 0, None),
            (5, 7, Some("expires in 5 days")),
            (7, 7, None),
            (-3, 0, Some("expired 2 days ago")),
            (-1, 14, Some("expired less than a day ago")),
        ];
        for (days, threshold, want) in cases {
            let got = expiry_problem(&cert(days), threshold);
            match want {
                None => assert_eq!(got, None, "{days} {threshold}"),
                Some(w) => assert!(got.as_deref().unwrap_or("").contains(w), "{got:?}"),
            }
        }
    }
}
