//! `http`: request the URL; UP when the final status is in `accepted_statuscodes`.

use super::{CheckContext, Outcome, elapsed_ms};
use picket_shared::monitor::HttpSpec;
use std::time::Instant;

/// Body bytes read to let the connection be reused; the rest is not awaited.
const DRAIN_LIMIT: usize = 64 * 1024;

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
    let started = Instant::now();
    match req.send().await {
        Ok(mut resp) => {
            let ping = elapsed_ms(started);
            let code = resp.status();
            // Read a little of the body so a small response leaves the
            // connection reusable; a large one is dropped unread.
            let mut read = 0;
            while read < DRAIN_LIMIT {
                match resp.chunk().await {
                    Ok(Some(c)) => read += c.len(),
                    _ => break,
                }
            }
            evaluate(spec, code.as_u16(), code.canonical_reason(), ping)
        }
        Err(e) => Outcome::down(describe(&e)),
    }
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
        "too many redirects"
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
        let f = MonitorFields::from_json(json!({
            "name": "t", "type": "http", "url": "http://x.test/", "accepted_statuscodes": codes
        }))
        .unwrap();
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
}
