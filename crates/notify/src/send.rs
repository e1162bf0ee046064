//! The one sender: every provider's request goes out here, with the event id
//! header and a timeout, and the response is classified once for all.

use std::time::Duration;

/// A rendered request: what a provider decided, nothing sent yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Outgoing {
    /// A JSON POST.
    pub fn json(url: impl Into<String>, body: &serde_json::Value) -> Outgoing {
        Outgoing {
            method: "POST",
            url: url.into(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Outgoing {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// The body as JSON (tests and logs).
    pub fn json_body(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// How a mail's connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain SMTP.
    None,
    /// STARTTLS when the server offers it (Uptime Kuma's default).
    Opportunistic,
    /// STARTTLS, required.
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
}

/// A rendered email: what the `smtp` provider decided, nothing sent yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub accept_invalid_certs: bool,
    pub credentials: Option<(String, String)>,
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Sent as the `X-Picket-Event-Id` header.
    pub event_id: String,
}

/// A rendered message of any provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Http(Outgoing),
    Mail(Box<Mail>),
}

impl Request {
    /// The HTTP request (tests of HTTP providers).
    pub fn http(&self) -> Option<&Outgoing> {
        match self {
            Request::Http(o) => Some(o),
            Request::Mail(_) => None,
        }
    }
}

/// Sends a rendered message of any provider.
pub async fn deliver(
    http: &reqwest::Client,
    req: &Request,
    event_id: &str,
) -> Result<String, SendError> {
    match req {
        Request::Http(out) => send(http, out, event_id).await,
        Request::Mail(mail) => send_mail(mail).await,
    }
}

/// Sends a mail over SMTP. A permanent refusal (5xx) is not retried; a
/// transient one (4xx), a timeout or a connection failure is.
pub async fn send_mail(m: &Mail) -> Result<String, SendError> {
    use lettre::message::{Mailbox, MultiPart, header::HeaderName, header::HeaderValue};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let refused =
        |what: &str, e: &dyn std::fmt::Display| SendError::Refused(format!("{what}: {e}"));
    let mailbox = |a: &str| a.parse::<Mailbox>().map_err(|e| refused(a, &e));
    let mut b = Message::builder()
        .from(mailbox(&m.from)?)
        .subject(m.subject.clone());
    for a in &m.to {
        b = b.to(mailbox(a)?);
    }
    for a in &m.cc {
        b = b.cc(mailbox(a)?);
    }
    for a in &m.bcc {
        b = b.bcc(mailbox(a)?);
    }
    b = b.raw_header(HeaderValue::new(
        HeaderName::new_from_ascii_str("X-Picket-Event-Id"),
        m.event_id.clone(),
    ));
    let msg = b
        .multipart(MultiPart::alternative_plain_html(
            m.text.clone(),
            m.html.clone(),
        ))
        .map_err(|e| refused("the message", &e))?;
    let tls = || {
        TlsParameters::builder(m.host.clone())
            .dangerous_accept_invalid_certs(m.accept_invalid_certs)
            .build_rustls()
            .map_err(|e| refused("TLS settings", &e))
    };
    let tls = match m.security {
        Security::None => Tls::None,
        Security::Opportunistic => Tls::Opportunistic(tls()?),
        Security::StartTls => Tls::Required(tls()?),
        Security::Tls => Tls::Wrapper(tls()?),
    };
    let mut t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(m.host.as_str())
        .port(m.port)
        .tls(tls)
        .timeout(Some(SEND_TIMEOUT));
    if let Some((u, p)) = &m.credentials {
        t = t.credentials(Credentials::new(u.clone(), p.clone()));
    }
    match t.build().send(msg).await {
        Ok(r) => Ok(format!("SMTP {}", r.code())),
        Err(e) if e.is_permanent() => Err(SendError::Refused(format!("SMTP: {e}"))),
        Err(e) => Err(SendError::Retry {
            msg: format!("SMTP: {e}"),
            after: None,
        }),
    }
}

/// Why a delivery did not go through.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again (timeout, connection refused, 5xx, 429, 408),
    /// not before `after` when the receiver said so.
    #[error("{msg}")]
    Retry {
        msg: String,
        after: Option<Duration>,
    },
    /// The receiver refused the request itself (a 4xx): trying again sends
    /// the same refused request.
    #[error("{0}")]
    Refused(String),
}

/// How long one delivery may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client deliveries use.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(format!("Picket/{}", picket_shared::VERSION))
        .build()
        .expect("HTTP client")
}

/// Sends `out`, carrying `event_id` in `X-Picket-Event-Id`. Returns the
/// receiver's status line on success.
pub async fn send(
    http: &reqwest::Client,
    out: &Outgoing,
    event_id: &str,
) -> Result<String, SendError> {
    let method = reqwest::Method::from_bytes(out.method.as_bytes())
        .map_err(|e| SendError::Refused(e.to_string()))?;
    let mut req = http
        .request(method, &out.url)
        .header("X-Picket-Event-Id", event_id)
        .body(out.body.clone());
    for (k, v) in &out.headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.map_err(|e| SendError::Retry {
        msg: if e.is_timeout() {
            "timed out".into()
        } else {
            format!("could not reach the receiver: {}", root_cause(&e))
        },
        after: None,
    })?;
    let status = resp.status();
    let after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = resp.text().await.unwrap_or_default();
    let excerpt: String = text.chars().take(200).collect();
    let line = format!("HTTP {}", status.as_u16());
    classify(status.as_u16(), after, &line, &excerpt)
}

/// What a response status means for the delivery.
pub fn classify(
    status: u16,
    after: Option<Duration>,
    line: &str,
    body: &str,
) -> Result<String, SendError> {
    let msg = if body.is_empty() {
        line.to_owned()
    } else {
        format!("{line}: {body}")
    };
    match status {
        200..=299 => Ok(line.to_owned()),
        408 | 429 | 500..=599 => Err(SendError::Retry { msg, after }),
        _ => Err(SendError::Refused(msg)),
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_decide_retry_or_give_up() {
        assert!(classify(204, None, "HTTP 204", "").is_ok());
        let after = Some(Duration::from_secs(7));
        assert_eq!(
            classify(429, after, "HTTP 429", "slow down"),
            Err(SendError::Retry {
                msg: "HTTP 429: slow down".into(),
                after
            })
        );
        assert!(matches!(
            classify(503, None, "HTTP 503", ""),
            Err(SendError::Retry { .. })
        ));
        assert!(matches!(
            classify(404, None, "HTTP 404", ""),
            Err(SendError::Refused(_))
        ));
    }
}
