//! `smtp` (email): a text and an HTML part, to one or more recipients (`To`,
//! `CC`, `BCC`, comma separated), over plain SMTP, STARTTLS or implicit TLS.
//! Uptime Kuma's settings: `smtpHost`, `smtpPort`, `smtpSecure` (implicit
//! TLS; otherwise STARTTLS when the server offers it), `smtpIgnoreTLSError`,
//! `smtpUsername`, `smtpPassword`, `smtpFrom`, `smtpTo`, `smtpCC`, `smtpBCC`,
//! `customSubject` and `customBody` (templates, as the webhook's). Picket adds
//! `smtpSecurity`: `none`, `starttls` (required) or `tls`, which wins over
//! `smtpSecure`.

use super::{flag_of, int_of, str_of};
use crate::event::Event;
use crate::send::{Mail, Security};
use crate::template;
use picket_shared::monitor::FieldError;
use serde_json::{Map, Value};

pub const SPEC: super::Spec = super::Spec {
    kind: "smtp",
    required: &["smtpHost", "smtpFrom", "smtpTo"],
    urls: &[],
    secrets: &["smtpPassword"],
    render: super::Render::Mail(render),
    check: Some(check),
};

/// The addresses of a comma-separated setting.
fn addresses(cfg: &Map<String, Value>, key: &str) -> Vec<String> {
    str_of(cfg, key)
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn security(cfg: &Map<String, Value>) -> Result<Security, String> {
    match str_of(cfg, "smtpSecurity") {
        Some("none") => Ok(Security::None),
        Some("starttls") => Ok(Security::StartTls),
        Some("tls") => Ok(Security::Tls),
        Some(other) => Err(format!("'{other}' is not one of none, starttls, tls")),
        None if flag_of(cfg, "smtpSecure") => Ok(Security::Tls),
        None => Ok(Security::Opportunistic),
    }
}

/// What the generic checks cannot see: the port, the security and every
/// address.
pub fn check(cfg: &Map<String, Value>) -> Vec<FieldError> {
    let mut errs = super::check_templates(cfg, &["customSubject", "customBody"]);
    if cfg.contains_key("smtpPort")
        && !int_of(cfg, "smtpPort").is_some_and(|p| (1..=65535).contains(&p))
    {
        errs.push(FieldError::new(
            "config.smtpPort",
            "must be a port, 1 to 65535",
        ));
    }
    if let Err(e) = security(cfg) {
        errs.push(FieldError::new("config.smtpSecurity", e));
    }
    for key in ["smtpFrom", "smtpTo", "smtpCC", "smtpBCC"] {
        for a in addresses(cfg, key) {
            if a.parse::<lettre::message::Mailbox>().is_err() {
                errs.push(FieldError::new(
                    format!("config.{key}"),
                    format!("'{a}' is not an email address"),
                ));
            }
        }
    }
    errs
}

pub fn render(e: &Event, cfg: &Map<String, Value>) -> Mail {
    let fallback = format!("[Picket] {}", e.title());
    // Templates were checked when stored; one that still fails falls back
    // to Picket's own subject and body rather than losing the message.
    let subject = str_of(cfg, "customSubject")
        .and_then(|t| template::render(t, e).ok())
        .map(|s| s.lines().next().unwrap_or_default().trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or(fallback);
    let lines = match str_of(cfg, "customBody").and_then(|t| template::render(t, e).ok()) {
        Some(body) => body.lines().map(str::to_owned).collect(),
        None => e.lines(),
    };
    let text = lines.join("\n");
    let mut html = String::from("<html><body>");
    for (i, l) in lines.iter().enumerate() {
        let l = escape(l);
        if i == 0 {
            html.push_str(&format!("<h2>{l}</h2>"));
        } else if l.starts_with("http://") || l.starts_with("https://") {
            html.push_str(&format!("<p><a href=\"{l}\">{l}</a></p>"));
        } else {
            html.push_str(&format!("<p>{l}</p>"));
        }
    }
    html.push_str("</body></html>");
    let security = security(cfg).unwrap_or(Security::Opportunistic);
    let default_port = if security == Security::Tls { 465 } else { 25 };
    Mail {
        host: str_of(cfg, "smtpHost").unwrap_or_default().to_owned(),
        port: int_of(cfg, "smtpPort")
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(default_port),
        security,
        accept_invalid_certs: flag_of(cfg, "smtpIgnoreTLSError"),
        credentials: str_of(cfg, "smtpUsername").map(|u| {
            (
                u.to_owned(),
                str_of(cfg, "smtpPassword").unwrap_or_default().to_owned(),
            )
        }),
        from: str_of(cfg, "smtpFrom").unwrap_or_default().to_owned(),
        to: addresses(cfg, "smtpTo"),
        cc: addresses(cfg, "smtpCC"),
        bcc: addresses(cfg, "smtpBCC"),
        subject,
        text,
        html,
        event_id: e.event_id.clone(),
    }
}

/// Text as HTML.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{cfg, fixture_events as fixture};
    use serde_json::json;

    #[test]
    fn a_mail_with_text_and_html_to_every_recipient() {
        let c = cfg(
            json!({"smtpHost": "127.0.0.1", "smtpPort": "2525", "smtpFrom": "Picket <p@x.test>",
            "smtpTo": "a@x.test, b@x.test", "smtpBCC": "c@x.test", "smtpUsername": "u", "smtpPassword": "pw"}),
        );
        let m = render(&fixture::down(), &c);
        assert_eq!(
            (m.host.as_str(), m.port, m.security),
            ("127.0.0.1", 2525, Security::Opportunistic)
        );
        assert_eq!(m.to, ["a@x.test", "b@x.test"]);
        assert_eq!(m.bcc, ["c@x.test"]);
        assert_eq!(m.subject, "[Picket] shop is DOWN");
        assert!(
            m.text
                .starts_with("shop is DOWN: 500 - Internal Server Error\n")
        );
        assert!(
            m.html
                .contains("<h2>shop is DOWN: 500 - Internal Server Error</h2>"),
            "{}",
            m.html
        );
        assert!(
            m.html
                .contains("<a href=\"https://picket.test/monitors/7\">")
        );
        assert_eq!(m.credentials, Some(("u".into(), "pw".into())));
    }

    #[test]
    fn security_and_addresses_are_checked() {
        let bad = cfg(
            json!({"smtpHost": "h", "smtpFrom": "nobody", "smtpTo": "a@x.test, @@",
            "smtpPort": 0, "smtpSecurity": "ssl"}),
        );
        let fields: Vec<String> = check(&bad).into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "config.smtpPort",
                "config.smtpSecurity",
                "config.smtpFrom",
                "config.smtpTo"
            ]
        );
        let tls = cfg(
            json!({"smtpHost": "h", "smtpFrom": "a@x.test", "smtpTo": "a@x.test", "smtpSecure": true}),
        );
        let m = render(&fixture::up(), &tls);
        assert_eq!((m.security, m.port), (Security::Tls, 465));
        let custom = cfg(
            json!({"smtpHost": "h", "smtpFrom": "a@x.test", "smtpTo": "a@x.test",
            "customSubject": "{{monitor.name}}: {{heartbeat.status}}",
            "customBody": "{{ NAME | upcase }} is {% if heartbeatJSON.status == 1 %}back{% endif %}\nat {{ heartbeatJSON.localDateTime }}"}),
        );
        let m = render(&fixture::up(), &custom);
        assert_eq!(m.subject, "shop: 1");
        assert_eq!(m.text, "SHOP is back\nat 2026-12-01 12:30:45");
        let bad = json!({"smtpHost": "h", "smtpFrom": "a@x.test", "smtpTo": "a@x.test",
            "customBody": "{% if %}"});
        assert_eq!(
            super::super::validate("smtp", &bad).unwrap_err()[0].field,
            "config.customBody"
        );
    }
}
