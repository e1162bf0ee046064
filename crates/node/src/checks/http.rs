//! `http`: request the URL; UP when the final status is in `accepted_statuscodes`.
//! `keyword` and `json-query` run the same request and then judge the body
//! (see `keyword.rs`, `json_query.rs`); for `https` URLs the certificate's
//! expiry is recorded on every check (`tls.rs`).

use super::tls::{self, CertInfo};
use super::{CheckContext, Outcome, elapsed_ms, json_query, keyword};
use picket_shared::monitor::{BodyExpect, HttpSpec};
use picket_shared::now_ms;
use std::time::{Duration, Instant};

/// Body bytes read to let the connection be reused; the rest is not awaited.
const DRAIN_LIMIT: usize = 64 * 1024;

/// Time allowed for the permissive handshake that reads an invalid certificate.
const CERT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn check(spec: &HttpSpec, ctx: &CheckContext) -> Outcome {
    let client = match ctx.http_client(spec.max_redirects, spec.ignore_tls) {
        Ok(c) => c,
        Err(e) => return Outcome::down(format!("cannot build HTTP client: {e}")),
    };
    let method =
        reqwest::Method::from_bytes(spec.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut req = client.request(method, spec.url.clone());
    for (k, v) in &spec.headers {
        req = req.header(k, v);
    }
    if let Some(b) = &spec.body {
        req = req.body(b.clone());
    }
    if let Some(Err(e)) = spec.url.host_str().map(|h| ctx.check_literal(h)) {
        return Outcome::down(e);
    }
    let started = Instant::now();
    let https = spec.url.scheme() == "https";
    match req.send().await {
        Ok(mut resp) => {
            let ping = elapsed_ms(started);
            let code = resp.status();
            let cert = resp
                .extensions()
                .get::<reqwest::tls::TlsInfo>()
                .and_then(|i| i.peer_certificate())
                .and_then(tls::not_after_ms)
                .map(|na| tls::evaluate(na, now_ms(), !spec.ignore_tls));
            // Read what the body check needs (capped), or a little so a small
            // response leaves the connection reusable; the rest is dropped unread.
            let keep = spec.expect != BodyExpect::None;
            let limit = if keep { super::BODY_CAP } else { DRAIN_LIMIT };
            let mut body = Vec::new();
            let mut read = 0;
            let mut truncated = false;
            loop {
                match resp.chunk().await {
                    Ok(Some(c)) => {
                        let take = c.len().min(limit - read);
                        if keep {
                            body.extend_from_slice(&c[..take]);
                        }
                        read += take;
                        if take < c.len() {
                            truncated = true;
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) if keep => {
                        let why = describe(&e);
                        return Outcome::down(format!("reading the body failed: {why}"));
                    }
                    Err(_) => break,
                }
            }
            let mut o = evaluate(spec, code.as_u16(), code.canonical_reason(), ping);
            if o.up {
                o = judge_body(spec, o, &body, truncated);
            }
            with_cert(spec, o, cert)
        }
        Err(e) => {
            let mut o = Outcome::down(describe(&e));
            if https && !spec.ignore_tls {
                // A failed verification leaves no certificate on the error:
                // read it with a permissive handshake to report its dates.
                let host = spec.url.host_str().unwrap_or_default();
                let port = spec.url.port_or_known_default().unwrap_or(443);
                if let Ok(addrs) = ctx.permitted(host, port).await
                    && let Ok(der) = tls::fetch_leaf(host, &addrs, CERT_FETCH_TIMEOUT).await
                    && let Some(na) = tls::not_after_ms(&der)
                {
                    let c = tls::evaluate(na, now_ms(), false);
                    if let Some(p) = tls::expiry_problem(&c, 0) {
                        o.msg = format!("{p}: {}", o.msg);
                    }
                    o.cert = Some(c);
                }
            }
            o
        }
    }
}

/// Applies the body rule of `keyword` / `json-query` to an UP status result.
pub fn judge_body(spec: &HttpSpec, status: Outcome, body: &[u8], truncated: bool) -> Outcome {
    let verdict = match &spec.expect {
        BodyExpect::None => return status,
        BodyExpect::Keyword { keyword, invert } => {
            keyword::evaluate(keyword, *invert, body, truncated)
        }
        BodyExpect::Json { path, op, expected } => {
            json_query::evaluate(path, *op, expected, body, truncated)
        }
    };
    match verdict {
        Ok(m) => Outcome {
            msg: format!("{}, {m}", status.msg),
            ..status
        },
        Err(m) => Outcome {
            up: false,
            msg: format!("{}, but {m}", status.msg),
            ..status
        },
    }
}

/// Attaches the certificate facts and applies `expiryNotification`.
pub fn with_cert(spec: &HttpSpec, mut o: Outcome, cert: Option<CertInfo>) -> Outcome {
    if let Some(c) = &cert
        && o.up
        && let Some(p) = tls::expiry_problem(c, spec.expiry_days)
    {
        o.up = false;
        o.msg = format!("{}, but {p}", o.msg);
    }
    o.cert = cert;
    o
}

/// UP when `code` is accepted; the message is Kuma's `"200 - OK"` form.
pub fn evaluate(spec: &HttpSpec, code: u16, reason: Option<&str>, ping_ms: f64) -> Outcome {
    let text = match reason {
        Some(r) => format!("{code} - {r}"),
        None => code.to_string(),
    };
    if spec.accepts(code) {
        Outcome::up(text, Some(ping_ms))
    } else {
        let accepted: Vec<String> = spec.accepted.iter().map(|r| r.to_string()).collect();
        Outcome {
            up: false,
            msg: format!("{text} (accepted: {})", accepted.join(", ")),
            ping_ms: Some(ping_ms),
            cert: None,
        }
    }
}

/// A reqwest error as one line, with its innermost cause (e.g. "connection refused").
fn describe(e: &reqwest::Error) -> String {
    let mut root: &dyn std::error::Error = e;
    while let Some(src) = root.source() {
        root = src;
    }
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect error"
    } else if e.is_redirect() {
        "redirect refused"
    } else {
        "request failed"
    };
    format!("{kind}: {root}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use picket_shared::monitor::{MonitorFields, MonitorKind};
    use serde_json::json;

    fn spec(codes: &[&str]) -> HttpSpec {
        spec_of(json!({
            "name": "t", "type": "http", "url": "http://x.test/", "accepted_statuscodes": codes
        }))
    }

    fn spec_of(v: serde_json::Value) -> HttpSpec {
        let f = MonitorFields::from_json(v).unwrap();
        match f
            .parse(&picket_shared::monitor::Limits::STORED)
            .unwrap()
            .kind
        {
            MonitorKind::Http(h) => h,
            _ => unreachable!(),
        }
    }

    #[test]
    fn accepted_codes_decide_up() {
        let check = |codes: &[&str], code: u16, up: bool| {
            assert_eq!(
                evaluate(&spec(codes), code, None, 1.0).up,
                up,
                "{codes:?} {code}"
            );
        };
        check(&["200-299"], 200, true);
        check(&["200-299"], 299, true);
        check(&["200-299"], 301, false);
        check(&["200-299"], 500, false);
        check(&["200-299", "404"], 404, true);
        check(&["500-599"], 503, true);
    }

    #[test]
    fn messages_follow_kuma() {
        let o = evaluate(&spec(&["200-299"]), 200, Some("OK"), 3.0);
        assert_eq!(o, Outcome::up("200 - OK", Some(3.0)));
        let o = evaluate(&spec(&["200-299"]), 500, Some("Internal Server Error"), 3.0);
        assert_eq!(o.msg, "500 - Internal Server Error (accepted: 200-299)");
    }

    #[test]
    fn body_rules_apply_only_after_an_accepted_status() {
        let kw =
            spec_of(json!({"name":"t","type":"keyword","url":"http://x.test/","keyword":"ready"}));
        let ok = evaluate(&kw, 200, Some("OK"), 1.0);
        let o = judge_body(&kw, ok.clone(), b"service ready", false);
        assert!(o.up, "{o:?}");
        assert_eq!(o.msg, "200 - OK, keyword [ready] is found");
        let o = judge_body(&kw, ok, b"starting up", false);
        assert!(!o.up);
        assert_eq!(
            o.msg,
            "200 - OK, but keyword [ready] is not found; body starts [starting up]"
        );
        assert_eq!(o.ping_ms, Some(1.0));

        let jq = spec_of(
            json!({"name":"t","type":"json-query","url":"http://x.test/",
            "jsonPath":"$.ok","expectedValue":"true"}),
        );
        let ok = evaluate(&jq, 200, Some("OK"), 1.0);
        assert!(judge_body(&jq, ok.clone(), br#"{"ok":true}"#, false).up);
        assert!(!judge_body(&jq, ok, br#"{"ok":false}"#, false).up);
    }

    #[test]
    fn expiry_notification_turns_an_up_check_down() {
        let s = spec_of(
            json!({"name":"t","type":"http","url":"https://x.test/","expiryNotification":14}),
        );
        let ok = evaluate(&s, 200, Some("OK"), 1.0);
        let cert = |days| tls::CertInfo {
            days_remaining: days,
            valid: true,
            not_after_ms: 0,
        };
        let o = with_cert(&s, ok.clone(), Some(cert(30)));
        assert!(o.up && o.cert == Some(cert(30)));
        let o = with_cert(&s, ok.clone(), Some(cert(3)));
        assert!(!o.up);
        assert!(o.msg.contains("expires in 3 days"), "{}", o.msg);
        assert!(with_cert(&s, ok, None).up);
    }
}
