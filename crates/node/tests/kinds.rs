//! Every monitor kind end to end: created through the REST API of a real node
//! (in-process, 127.0.0.1:0) over real SQLite and MariaDB, checking targets
//! this test starts (HTTP farm, DNS responder, TLS server, 127.0.0.1 for ICMP).

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, MX, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use picket_testkit::api::{Api, scrape};
use picket_testkit::db::backends;
use picket_testkit::farm::{Behaviour, Farm};
use picket_testkit::net::closed_port;
use picket_testkit::node::spawn_node;
use picket_testkit::{TOKEN, eventually};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// Waits for a heartbeat of monitor `id` matching `pred`, returning it.
async fn beat_where(api: &Api, id: i64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    eventually(WAIT, what, || async {
        api.heartbeats(id).await.into_iter().find(|b| pred(b))
    })
    .await
}

/// Waits for the first heartbeat of `id`.
async fn first_beat(api: &Api, id: i64) -> Value {
    beat_where(api, id, "a heartbeat", |_| true).await
}

fn msg(b: &Value) -> &str {
    b["msg"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyword_and_json_query_judge_the_body() {
    for t in backends().await {
        let farm = Farm::start().await.unwrap();
        let body = |s: &str| Behaviour {
            body: s.into(),
            ..Behaviour::default()
        };
        farm.set("page", body("<html>service is ready</html>"));
        farm.set(
            "api",
            body(r#"{"status":"ok","queue":{"depth":7},"tags":["a","b"]}"#),
        );
        farm.set(
            "err",
            Behaviour {
                status: 503,
                body: "ready".into(),
                ..Behaviour::default()
            },
        );
        // 50 MB: the check must stop reading at its cap and say so.
        farm.set("huge", body(&"x".repeat(50 * 1024 * 1024)));
        let node = spawn_node(&t.url, "n1", &[]).await;
        let api = Api::new(node.addr);
        let mk = |name: &str, path: &str, extra: Value| {
            let mut v = json!({"name": name, "url": farm.url(path), "interval": 1});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        let cases = [
            (
                mk("kw-up", "page", json!({"type":"keyword","keyword":"ready"})),
                1,
                "200 - OK, keyword [ready] is found",
            ),
            (
                mk(
                    "kw-case",
                    "page",
                    json!({"type":"keyword","keyword":"Ready"}),
                ),
                0,
                "but keyword [Ready] is not found; body starts [<html>service is ready</html>]",
            ),
            (
                mk(
                    "kw-inv",
                    "page",
                    json!({"type":"keyword","keyword":"error","invertKeyword":true}),
                ),
                1,
                "keyword [error] is not found",
            ),
            (
                mk(
                    "kw-inv-down",
                    "page",
                    json!({"type":"keyword","keyword":"ready","invertKeyword":true}),
                ),
                0,
                "is found (invertKeyword)",
            ),
            (
                mk("kw-503", "err", json!({"type":"keyword","keyword":"ready"})),
                0,
                "503 - Service Unavailable",
            ),
            (
                mk(
                    "kw-huge",
                    "huge",
                    json!({"type":"keyword","keyword":"needle"}),
                ),
                0,
                "in the first 1024 KiB of the body",
            ),
            (
                mk(
                    "jq-eq",
                    "api",
                    json!({"type":"json-query","jsonPath":"$.status","expectedValue":"ok"}),
                ),
                1,
                "JSON query passes (comparing ok == ok)",
            ),
            (
                mk(
                    "jq-lt",
                    "api",
                    json!({"type":"json-query","jsonPath":"$.queue.depth","jsonPathOperator":"<","expectedValue":"5"}),
                ),
                0,
                "JSON query does not pass (comparing 7 < 5)",
            ),
            (
                mk(
                    "jq-contains",
                    "api",
                    json!({"type":"json-query","jsonPath":"$.tags","jsonPathOperator":"contains","expectedValue":"b"}),
                ),
                1,
                "passes",
            ),
            (
                mk(
                    "jq-missing",
                    "api",
                    json!({"type":"json-query","jsonPath":"$.nope","expectedValue":"1"}),
                ),
                0,
                "selected nothing",
            ),
            (
                mk(
                    "jq-html",
                    "page",
                    json!({"type":"json-query","jsonPath":"$.a","expectedValue":"1"}),
                ),
                0,
                "response is not JSON",
            ),
            (
                mk(
                    "jq-huge",
                    "huge",
                    json!({"type":"json-query","jsonPath":"$.a","expectedValue":"1"}),
                ),
                0,
                "exceeds 1024 KiB",
            ),
        ];
        let mut ids = Vec::new();
        for (body, _, _) in &cases {
            ids.push(api.create_monitor(body.clone()).await);
        }
        for (id, (body, status, text)) in ids.iter().zip(&cases) {
            let b = first_beat(&api, *id).await;
            assert_eq!(b["status"], *status, "{}: {}: {b}", t.label, body["name"]);
            assert!(msg(&b).contains(text), "{}: {}: {b}", t.label, body["name"]);
        }
        // The stored monitor shows the Kuma fields back.
        let (_, v) = api.get(&format!("/api/v1/monitors/{}", ids[1])).await;
        assert_eq!(v["data"]["type"], "keyword");
        assert_eq!(v["data"]["keyword"], "Ready");
        let (_, v) = api.get(&format!("/api/v1/monitors/{}", ids[7])).await;
        assert_eq!(v["data"]["type"], "json-query");
        assert_eq!(v["data"]["jsonPathOperator"], "<");
        node.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_naming_the_field() {
    for t in backends().await {
        let node = spawn_node(&t.url, "n1", &["--min-interval-secs", "20"]).await;
        let api = Api::new(node.addr);
        let cases = [
            (
                json!({"name":"a","type":"json-query","url":"http://127.0.0.1/","jsonPath":"$[?","expectedValue":"1"}),
                "jsonPath",
            ),
            (
                json!({"name":"a","type":"dns","hostname":"x.test","dns_resolve_type":"HINFO"}),
                "dns_resolve_type",
            ),
            (
                json!({"name":"a","type":"ping","hostname":"127.0.0.1","packet_count":0}),
                "packet_count",
            ),
            (json!({"name":"a","type":"push","interval":5}), "interval"),
            (
                json!({"name":"a","type":"keyword","url":"http://127.0.0.1/"}),
                "keyword",
            ),
        ];
        for (body, field) in cases {
            let (status, v) = api.post("/api/v1/monitors", &body).await;
            assert_eq!(status, 400, "{}: {body}: {v}", t.label);
            assert_eq!(v["errors"][0]["field"], field, "{}: {v}", t.label);
            assert!(v["msg"].as_str().unwrap().contains(field), "{v}");
        }
        node.stop().await.unwrap();
    }
}

/// A DNS server on a loopback UDP port answering from a fixed table; unknown
/// names get NXDOMAIN.
struct DnsResponder {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DnsResponder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DnsResponder {
    async fn start(records: Vec<(&str, RData)>) -> DnsResponder {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let mut table: HashMap<(Name, RecordType), Vec<RData>> = HashMap::new();
        for (name, data) in records {
            let name = Name::from_ascii(name).unwrap();
            table
                .entry((name, data.record_type()))
                .or_default()
                .push(data);
        }
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut resp =
                    Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
                resp.metadata.recursion_desired = q.metadata.recursion_desired;
                resp.metadata.recursion_available = true;
                resp.metadata.authoritative = true;
                let mut known = false;
                for query in &q.queries {
                    resp.add_query(query.clone());
                    let name = query.name().clone();
                    known |= table.keys().any(|(n, _)| n.eq_case(&name) || *n == name);
                    if let Some(ds) = table.get(&(name.clone(), query.query_type())) {
                        for d in ds {
                            resp.add_answer(Record::from_rdata(name.clone(), 60, d.clone()));
                        }
                    }
                }
                if !known {
                    resp.metadata.response_code = ResponseCode::NXDomain;
                }
                if let Ok(bytes) = resp.to_vec() {
                    let _ = sock.send_to(&bytes, peer).await;
                }
            }
        });
        DnsResponder { addr, task }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_monitors_ask_the_configured_resolver() {
    let dns = DnsResponder::start(vec![
        ("svc.test.", RData::A(A([10, 0, 0, 7].into()))),
        ("svc.test.", RData::A(A([10, 0, 0, 8].into()))),
        (
            "alias.test.",
            RData::CNAME(CNAME(Name::from_ascii("svc.test.").unwrap())),
        ),
        (
            "svc.test.",
            RData::MX(MX::new(10, Name::from_ascii("mail.test.").unwrap())),
        ),
        (
            "svc.test.",
            RData::TXT(TXT::new(vec!["v=spf1 -all".into()])),
        ),
    ])
    .await;
    for t in backends().await {
        let node = spawn_node(&t.url, "n1", &[]).await;
        let api = Api::new(node.addr);
        let mk = |host: &str, ty: &str, expected: Option<&str>| {
            let mut v = json!({"name": format!("{host} {ty}"), "type": "dns", "hostname": host,
                "dns_resolve_server": "127.0.0.1", "port": dns.addr.port(),
                "dns_resolve_type": ty, "interval": 1, "timeout": 0.8});
            if let Some(e) = expected {
                v["expectedValue"] = json!(e);
            }
            v
        };
        let cases = [
            (
                mk("svc.test", "A", None),
                1,
                "A records: 10.0.0.7, 10.0.0.8",
            ),
            (mk("svc.test", "a", Some("10.0.0.8")), 1, "A records"),
            (mk("svc.test", "A", Some("10.0.0.9")), 0, "none is 10.0.0.9"),
            (
                mk("alias.test", "CNAME", None),
                1,
                "CNAME records: svc.test.",
            ),
            (mk("svc.test", "MX", None), 1, "MX records: 10 mail.test."),
            (mk("svc.test", "TXT", None), 1, "v=spf1 -all"),
            (
                mk("nowhere.test", "A", None),
                0,
                "nowhere.test A lookup failed",
            ),
            (mk("svc.test", "AAAA", None), 0, "AAAA"),
        ];
        let mut ids = Vec::new();
        for (body, _, _) in &cases {
            ids.push(api.create_monitor(body.clone()).await);
        }
        for (id, (body, status, text)) in ids.iter().zip(&cases) {
            let b = first_beat(&api, *id).await;
            assert_eq!(b["status"], *status, "{}: {}: {b}", t.label, body["name"]);
            assert!(msg(&b).contains(text), "{}: {}: {b}", t.label, body["name"]);
        }
        let (_, v) = api.get(&format!("/api/v1/monitors/{}", ids[1])).await;
        assert_eq!(
            v["data"]["dns_resolve_type"], "A",
            "stored in canonical form"
        );
        node.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_reaches_loopback_or_says_icmp_is_not_permitted() {
    for t in backends().await {
        let node = spawn_node(&t.url, "n1", &[]).await;
        let api = Api::new(node.addr);
        let id = api
            .create_monitor(json!({"name":"lo","type":"ping","hostname":"127.0.0.1",
                "packet_count":3,"interval":2,"timeout":1.5}))
            .await;
        let b = first_beat(&api, id).await;
        // Whether this process may send ICMP depends on the machine: both
        // outcomes are asserted precisely, and a crash fails either way.
        if b["status"] == 1 {
            assert!(msg(&b).contains("3/3 packets answered"), "{}: {b}", t.label);
            assert!(b["ping"].as_f64().unwrap() >= 0.0);
        } else {
            assert!(
                msg(&b).contains("ICMP is not permitted"),
                "{}: {b}",
                t.label
            );
        }
        // A name that cannot resolve (RFC 6761 `.invalid`): DOWN, not a crash.
        let lost = api
            .create_monitor(
                json!({"name":"void","type":"ping","hostname":"nowhere.invalid",
                "packet_count":1,"interval":2,"timeout":0.5}),
            )
            .await;
        let b = first_beat(&api, lost).await;
        assert_eq!(b["status"], 0, "{}: {b}", t.label);
        node.stop().await.unwrap();
    }
}

/// A TLS server on 127.0.0.1 with a self-signed certificate for `localhost`
/// valid from `from` to `until` (relative to now), answering every request
/// with `200 ok`.
struct TlsServer {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsServer {
    async fn start(from: std::time::SystemTime, until: std::time::SystemTime) -> TlsServer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_before = from.into();
        params.not_after = until.into();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 4096];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        TlsServer { port, task }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_monitors_record_certificate_expiry() {
    let day = Duration::from_secs(86_400);
    let now = std::time::SystemTime::now();
    // Valid for 10 more days (and an hour, so the floor is exactly 10).
    let fresh = TlsServer::start(now - day, now + 10 * day + Duration::from_secs(3600)).await;
    // Expired 2 days and an hour ago.
    let expired = TlsServer::start(now - 30 * day, now - 2 * day - Duration::from_secs(3600)).await;
    for t in backends().await {
        let node = spawn_node(&t.url, "n1", &[]).await;
        let api = Api::new(node.addr);
        let mk = |name: &str, port: u16, extra: Value| {
            let mut v = json!({"name": name, "type": "http", "interval": 2,
                "url": format!("https://localhost:{port}/")});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        let ok = api
            .create_monitor(mk(
                "ok",
                fresh.port,
                json!({"ignoreTls": true, "expiryNotification": 7}),
            ))
            .await;
        let soon = api
            .create_monitor(mk(
                "soon",
                fresh.port,
                json!({"ignoreTls": true, "expiryNotification": 14}),
            ))
            .await;
        let untrusted = api
            .create_monitor(mk("untrusted", fresh.port, json!({})))
            .await;
        let gone = api
            .create_monitor(mk("gone", expired.port, json!({})))
            .await;

        let b = first_beat(&api, ok).await;
        assert_eq!(b["status"], 1, "{}: {b}", t.label);
        let b = first_beat(&api, soon).await;
        assert_eq!(b["status"], 0, "{}: {b}", t.label);
        assert!(
            msg(&b).contains("but certificate expires in 10 days (expiryNotification: 14 days)"),
            "{b}"
        );
        // Self-signed without ignoreTls: DOWN for the verification error.
        let b = first_beat(&api, untrusted).await;
        assert_eq!(b["status"], 0, "{}: {b}", t.label);
        // Expired: DOWN, and the permissive handshake still read its dates.
        let b = first_beat(&api, gone).await;
        assert_eq!(b["status"], 0, "{}: {b}", t.label);
        assert!(
            msg(&b).starts_with("certificate expired 2 days ago"),
            "{}: {b}",
            t.label
        );

        let tls_of = |id: i64| {
            let api = api.clone();
            async move {
                let (_, v) = api.get(&format!("/api/v1/monitors/{id}")).await;
                let info = v["data"]["tls_info"].clone();
                (!info.is_null()).then_some(info)
            }
        };
        let info = eventually(WAIT, "tls_info of ok", || tls_of(ok)).await;
        assert_eq!(info["days_remaining"], 10, "{}: {info}", t.label);
        assert_eq!(
            info["valid"], false,
            "ignoreTls: the chain was not verified"
        );
        let info = eventually(WAIT, "tls_info of gone", || tls_of(gone)).await;
        assert_eq!(info["days_remaining"], -3, "{}: {info}", t.label);
        assert_eq!(info["valid"], false);

        // The owner exports Kuma's certificate series.
        let text = eventually(WAIT, "cert metrics", || async {
            let m = reqwest::get(format!("http://{}/metrics", node.addr))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            m.contains(&format!("monitor_id=\"{gone}\"")).then_some(m)
        })
        .await;
        let series = |name: &str, id: i64| {
            text.lines()
                .find(|l| l.starts_with(name) && l.contains(&format!("monitor_id=\"{id}\"")))
                .and_then(|l| l.rsplit(' ').next())
                .map(str::to_owned)
        };
        assert_eq!(
            series("monitor_cert_days_remaining", ok).as_deref(),
            Some("10"),
            "{text}"
        );
        assert_eq!(
            series("monitor_cert_days_remaining", gone).as_deref(),
            Some("-3")
        );
        assert_eq!(series("monitor_cert_is_valid", gone).as_deref(), Some("0"));
        node.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_monitors_take_pushes_on_any_node_and_go_down_when_they_stop() {
    for t in backends().await {
        let n1 = spawn_node(&t.url, "n1", &[]).await;
        let n2 = spawn_node(&t.url, "n2", &[]).await;
        let api1 = Api::new(n1.addr);
        let api2 = Api::new(n2.addr);
        let (status, v) = api1
            .post(
                "/api/v1/monitors",
                &json!({"name":"cron","type":"push","interval":2,"node_id":"n1"}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        let id = v["data"]["id"].as_i64().unwrap();
        let token = v["data"]["pushToken"].as_str().unwrap().to_owned();
        assert_eq!(token.len(), 32, "{v}");
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));

        // Pushed to n2 (public, no key); written for the owner n1.
        let public = api2.without_token();
        let (status, v) = public
            .get(&format!(
                "/api/push/{token}?status=up&msg=backup%20done&ping=12.5"
            ))
            .await;
        assert_eq!(status, 200, "{}: {v}", t.label);
        let b = first_beat(&api1, id).await;
        assert_eq!(
            (b["status"].as_i64(), msg(&b), b["node_id"].as_str()),
            (Some(1), "backup done", Some("n1")),
            "{}: {b}",
            t.label
        );
        assert_eq!(b["ping"], 12.5);
        let (status, _) = public
            .send(
                "POST",
                &format!("/api/push/{token}?status=down&msg=disk"),
                None,
            )
            .await;
        assert_eq!(status, 200);
        let b = beat_where(&api1, id, "the pushed down beat", |b| msg(b) == "disk").await;
        assert_eq!(b["status"], 0);
        assert_eq!(b["important"], true, "UP → DOWN");

        // Then silence: the owner records DOWN once interval + grace pass.
        let b = beat_where(&api1, id, "an overdue DOWN", |b| {
            msg(b).contains("No heartbeat in the time window")
        })
        .await;
        assert_eq!(
            (b["status"].as_i64(), b["node_id"].as_str()),
            (Some(0), Some("n1")),
            "{b}"
        );
        // A push brings it back up.
        let (status, _) = public.get(&format!("/api/push/{token}")).await;
        assert_eq!(status, 200);
        let b = first_beat(&api1, id).await;
        assert_eq!((b["status"].as_i64(), msg(&b)), (Some(1), "OK"), "{b}");

        // Errors: bad status, unknown token, paused monitor.
        let (status, v) = public.get(&format!("/api/push/{token}?status=maybe")).await;
        assert_eq!(
            (status, v["errors"][0]["field"].as_str()),
            (400, Some("status")),
            "{v}"
        );
        let (status, v) = public.get("/api/push/no-such-token").await;
        assert_eq!(status, 404, "{v}");
        assert_eq!(v["ok"], false);
        let (status, _) = api1
            .put(&format!("/api/v1/monitors/{id}"), &json!({"active": false}))
            .await;
        assert_eq!(status, 200);
        let (status, v) = public.get(&format!("/api/push/{token}")).await;
        assert_eq!(status, 409, "{v}");
        assert!(v["msg"].as_str().unwrap().contains("paused"), "{v}");
        // The token survives updates.
        let (_, v) = api1.get(&format!("/api/v1/monitors/{id}")).await;
        assert_eq!(v["data"]["pushToken"], token.as_str());
        n2.stop().await.unwrap();
        n1.stop().await.unwrap();
    }
}

/// Runs `promtool check metrics` on an exposition; returns its verdict.
fn promtool_check(text: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian package prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
fn promtool_rejects_a_broken_exposition() {
    // The check below can fail: promtool does reject bad text.
    let (ok, _) =
        promtool_check("# TYPE monitor_status gauge\nmonitor_status{monitor_id=\"1\" 1\n");
    assert!(!ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_export_kuma_monitor_metrics_that_promtool_accepts() {
    for t in backends().await {
        let farm = Farm::start().await.unwrap();
        farm.set("bad", Behaviour::status(500));
        let node = spawn_node(&t.url, "n1", &[]).await;
        let other = spawn_node(&t.url, "n2", &[]).await;
        let api = Api::new(node.addr);
        let up = api
            .create_monitor(json!({"name":"web \"main\"","type":"http","url":farm.url("ok"),"interval":1,"node_id":"n1"}))
            .await;
        let down = api
            .create_monitor(json!({"name":"api","type":"keyword","url":farm.url("bad"),"keyword":"x","interval":1,"node_id":"n1"}))
            .await;
        let port = api
            .create_monitor(json!({"name":"db","type":"port","hostname":"127.0.0.1","port":farm.addr.port(),"interval":1,"node_id":"n1"}))
            .await;
        let elsewhere = api
            .create_monitor(json!({"name":"n2's","type":"port","hostname":"127.0.0.1","port":farm.addr.port(),"interval":1,"node_id":"n2"}))
            .await;
        let metrics_of = |addr: SocketAddr| async move { scrape(&format!("http://{addr}")).await };
        let text = eventually(WAIT, "all three series", || async {
            let m = metrics_of(node.addr).await;
            [up, down, port]
                .iter()
                .all(|id| m.contains(&format!("monitor_id=\"{id}\"")))
                .then_some(m)
        })
        .await;
        let line = |name: &str, id: i64| {
            text.lines()
                .find(|l| {
                    l.starts_with(&format!("{name}{{"))
                        && l.contains(&format!("monitor_id=\"{id}\""))
                })
                .unwrap_or_else(|| panic!("{name} for {id} in\n{text}"))
                .to_owned()
        };
        let l = line("monitor_status", up);
        assert!(l.ends_with(" 1"), "{l}");
        for label in [
            "monitor_name=\"web \\\"main\\\"\"".to_owned(),
            "monitor_type=\"http\"".to_owned(),
            format!("monitor_url=\"{}\"", farm.url("ok")),
            "monitor_hostname=\"\"".to_owned(),
            "monitor_port=\"\"".to_owned(),
        ] {
            assert!(l.contains(&label), "{label} in {l}");
        }
        assert!(line("monitor_status", down).ends_with(" 0"));
        assert!(line("monitor_status", down).contains("monitor_type=\"keyword\""));
        let l = line("monitor_status", port);
        assert!(
            l.contains("monitor_hostname=\"127.0.0.1\"")
                && l.contains(&format!("monitor_port=\"{}\"", farm.addr.port())),
            "{l}"
        );
        assert!(
            line("monitor_response_time", up)
                .rsplit(' ')
                .next()
                .unwrap()
                .parse::<f64>()
                .unwrap()
                > 0.0
        );
        // Only the owner exports a monitor.
        assert!(!text.contains(&format!("monitor_id=\"{elsewhere}\"")));
        let text2 = eventually(WAIT, "n2's series", || async {
            let m = metrics_of(other.addr).await;
            m.contains(&format!("monitor_id=\"{elsewhere}\""))
                .then_some(m)
        })
        .await;
        assert!(!text2.contains(&format!("monitor_id=\"{up}\"")));

        let (ok, said) = promtool_check(&text);
        assert!(ok, "{}: promtool check metrics:\n{said}\n{text}", t.label);

        // A deleted monitor's series go away with it.
        let (status, _) = api
            .send("DELETE", &format!("/api/v1/monitors/{down}"), None)
            .await;
        assert_eq!(status, 200);
        eventually(WAIT, "the deleted monitor's series to go", || async {
            (!metrics_of(node.addr)
                .await
                .contains(&format!("monitor_id=\"{down}\"")))
            .then_some(())
        })
        .await;
        other.stop().await.unwrap();
        node.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uptime_figures_on_the_api_match_the_heartbeats() {
    for t in backends().await {
        let farm = Farm::start().await.unwrap();
        farm.set("flip", Behaviour::status(500));
        let node = spawn_node(&t.url, "n1", &[]).await;
        let api = Api::new(node.addr);
        let id = api
            .create_monitor(
                json!({"name":"flip","type":"http","url":farm.url("flip"),"interval":1}),
            )
            .await;
        eventually(WAIT, "two DOWN beats", || async {
            (api.heartbeats(id).await.len() >= 2).then_some(())
        })
        .await;
        farm.set("flip", Behaviour::default());
        eventually(WAIT, "two UP beats", || async {
            let b = api.heartbeats(id).await;
            (b.iter().filter(|b| b["status"] == 1).count() >= 2).then_some(())
        })
        .await;
        // Pause it, then restart the node so nothing is in flight while counting.
        let (status, _) = api
            .put(&format!("/api/v1/monitors/{id}"), &json!({"active": false}))
            .await;
        assert_eq!(status, 200);
        node.stop().await.unwrap();
        let node = spawn_node(&t.url, "n1", &[]).await;
        let api = Api::new(node.addr);

        let beats = api.heartbeats(id).await;
        let up = beats
            .iter()
            .filter(|b| b["status"] == 1 || b["status"] == 3)
            .count() as f64;
        let pings: Vec<f64> = beats
            .iter()
            .filter(|b| b["status"] == 1)
            .filter_map(|b| b["ping"].as_f64())
            .collect();
        let want_uptime = up / beats.len() as f64;
        let want_ping = pings.iter().sum::<f64>() / pings.len() as f64;
        assert!(want_uptime > 0.0 && want_uptime < 1.0, "{beats:?}");

        let (_, one) = api.get(&format!("/api/v1/monitors/{id}")).await;
        let (_, list) = api.get("/api/v1/monitors").await;
        let listed = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .unwrap()
            .clone();
        for v in [&one["data"], &listed] {
            for w in ["24h", "7d", "30d"] {
                let got = v["uptime"][w].as_f64().unwrap();
                assert!(
                    (got - want_uptime).abs() < 1e-9,
                    "{}: {w}: {got} vs {want_uptime}: {v}",
                    t.label
                );
                let got = v["avg_response_ms"][w].as_f64().unwrap();
                assert!(
                    (got - want_ping).abs() < 1e-6,
                    "{}: {w}: {got} vs {want_ping}",
                    t.label
                );
            }
        }
        node.stop().await.unwrap();
    }
}

/// The gid range allowed unprivileged ICMP sockets (`net.ipv4.ping_group_range`).
fn ping_group_range() -> (u32, u32) {
    let s = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap_or_default();
    let mut it = s.split_whitespace().filter_map(|v| v.parse::<u32>().ok());
    (it.next().unwrap_or(1), it.next().unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_without_icmp_permission_is_down_and_says_so() {
    // A real picket-node process as `nobody`, without capabilities: it may open
    // neither a raw ICMP socket nor (unless ping_group_range admits gid 65534)
    // a datagram one. Needs root to drop to nobody.
    if effective_uid() != 0 {
        eprintln!("not root: cannot start a node as nobody; covered in-process by the ping test");
        return;
    }
    const NOBODY: u32 = 65_534;
    let (lo, hi) = ping_group_range();
    let permitted = (lo..=hi).contains(&NOBODY);
    for t in backends().await {
        if let Some(path) = t.url.strip_prefix("sqlite://") {
            // Let `nobody` write the SQLite file (and its WAL files).
            use std::os::unix::fs::PermissionsExt;
            let file = std::path::Path::new(path.split('?').next().unwrap());
            let dir = file.parent().unwrap();
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
            }
        }
        let port = closed_port().await;
        let mut child = tokio::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--",
                env!("CARGO_BIN_EXE_picket-node"),
                "--database-url",
                &t.url,
                "--node-id",
                "unprivileged",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--api-token",
                TOKEN,
                "--min-interval-secs",
                "1",
                "--reconcile-ms",
                "200",
            ])
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .expect("setpriv (util-linux) runs picket-node");
        let api = Api::new(SocketAddr::from(([127, 0, 0, 1], port)));
        eventually(WAIT, "the unprivileged node to answer", || async {
            let r = api
                .http
                .get(format!("{}/api/v1/health", api.base))
                .send()
                .await
                .ok()?;
            r.status().is_success().then_some(())
        })
        .await;
        let id = api
            .create_monitor(json!({"name":"lo","type":"ping","hostname":"127.0.0.1",
                "interval":1,"timeout":0.8,"node_id":"unprivileged"}))
            .await;
        let b = first_beat(&api, id).await;
        if permitted {
            assert_eq!(b["status"], 1, "{}: gid {NOBODY} may ping: {b}", t.label);
        } else {
            assert_eq!(b["status"], 0, "{}: {b}", t.label);
            assert!(
                msg(&b).starts_with("ICMP is not permitted"),
                "{}: {b}",
                t.label
            );
        }
        // Still running: the failure was a result, not a crash.
        assert!(
            child.try_wait().unwrap().is_none(),
            "{}: the node exited",
            t.label
        );
        let (status, _) = api.get("/api/v1/status").await;
        assert_eq!(status, 200);
        child.kill().await.unwrap();
    }
}

/// This process's effective uid, read from /proc (no unsafe libc call).
fn effective_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(u32::MAX)
}
