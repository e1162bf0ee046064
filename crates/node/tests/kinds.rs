//! Every monitor kind end to end: created through the REST API of a real node
//! (in-process, 127.0.0.1:0) over real SQLite and MariaDB, checking targets
//! this test starts (HTTP farm, DNS responder, TLS server, 127.0.0.1 for ICMP).

mod common;

use common::*;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, MX, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use picket_benches::farm::{Behaviour, Farm};
use picket_shared::testing::backends;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
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
