//! Parsing and canonical form of every kind, from Uptime Kuma-shaped JSON.

use super::dns::DnsRecordType;
use super::http::StatusRange;
use super::*;
use serde_json::json;

const LIMITS: Limits = Limits {
    min_interval_secs: 20,
};

fn parse(v: Value) -> Result<MonitorSpec, Vec<FieldError>> {
    MonitorFields::from_json(v)
        .map_err(|e| vec![e])?
        .parse(&LIMITS)
}

fn fields_of(r: Result<MonitorSpec, Vec<FieldError>>) -> Vec<String> {
    r.unwrap_err().into_iter().map(|e| e.field).collect()
}

#[test]
fn status_ranges_parse() {
    let check = |s: &str, want: Result<(u16, u16), ()>| {
        let got = StatusRange::parse(s).map(|r| (r.lo, r.hi)).map_err(|_| ());
        assert_eq!(got, want, "{s}");
    };
    check("200-299", Ok((200, 299)));
    check("204", Ok((204, 204)));
    check(" 300 - 399 ", Ok((300, 399)));
    check("299-200", Err(()));
    check("99", Err(()));
    check("600", Err(()));
    check("2xx", Err(()));
    check("200-", Err(()));
    check("", Err(()));
}

#[test]
fn status_range_contains_bounds() {
    let r = StatusRange::parse("200-299").unwrap();
    assert!(r.contains(200) && r.contains(299));
    assert!(!r.contains(199) && !r.contains(300));
}

#[test]
fn http_defaults_follow_kuma() {
    let spec = parse(json!({"name": "a", "type": "http", "url": "http://x.test/"})).unwrap();
    assert_eq!(spec.interval_secs, 60);
    assert_eq!(spec.retry_interval_secs, 60);
    assert_eq!(spec.timeout_ms, 48_000);
    assert!(spec.active);
    let MonitorKind::Http(h) = spec.kind else {
        panic!("http")
    };
    assert_eq!(h.method, "GET");
    assert!(h.accepts(200) && h.accepts(299) && !h.accepts(300));
    assert_eq!(h.max_redirects, 10);
}

#[test]
fn camel_and_snake_case_both_accepted() {
    let a = parse(
        json!({"name":"a","type":"http","url":"http://x.test/","retryInterval":30,"interval":40}),
    )
    .unwrap();
    let b = parse(
        json!({"name":"a","type":"http","url":"http://x.test/","retry_interval":30,"interval":40}),
    )
    .unwrap();
    assert_eq!(a.retry_interval_secs, 30);
    assert_eq!(a, b);
}

#[test]
fn tcp_is_an_alias_of_port() {
    let spec = parse(json!({"name":"db","type":"tcp","hostname":"db.test","port":5432})).unwrap();
    assert_eq!(
        spec.kind,
        MonitorKind::Port {
            hostname: "db.test".into(),
            port: 5432
        }
    );
}

#[test]
fn every_bad_field_is_named() {
    let r = parse(json!({
        "type": "http", "url": "ftp://x", "interval": 5, "timeout": 0,
        "accepted_statuscodes": ["200-299", "abc"], "method": "FETCH"
    }));
    let fields = fields_of(r);
    for f in [
        "name",
        "url",
        "interval",
        "timeout",
        "accepted_statuscodes",
        "method",
    ] {
        assert!(fields.contains(&f.to_string()), "{f} missing in {fields:?}");
    }
}

#[test]
fn missing_fields_for_type() {
    assert_eq!(fields_of(parse(json!({"name":"a","type":"http"}))), ["url"]);
    assert_eq!(
        fields_of(parse(json!({"name":"a","type":"port"}))),
        ["hostname", "port"]
    );
    assert_eq!(
        fields_of(parse(
            json!({"name":"a","type":"port","hostname":"h","port":70000})
        )),
        ["port"]
    );
}

#[test]
fn interval_and_timeout_bounds() {
    let base = |extra: Value| {
        let mut v = json!({"name":"a","type":"http","url":"http://x.test/"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        parse(v)
    };
    assert_eq!(fields_of(base(json!({"interval": 19}))), ["interval"]);
    assert_eq!(fields_of(base(json!({"interval": 86401}))), ["interval"]);
    assert_eq!(
        fields_of(base(json!({"interval": 30, "timeout": 30}))),
        ["timeout"]
    );
    assert!(base(json!({"interval": 30, "timeout": 29.5})).is_ok());
    assert_eq!(
        fields_of(base(json!({"retryInterval": 1}))),
        ["retryInterval"]
    );
}

#[test]
fn unknown_type_and_wrong_json_types_are_named() {
    assert_eq!(
        fields_of(parse(json!({"name":"a","type":"smtp"}))),
        ["type"]
    );
    assert_eq!(
        fields_of(parse(json!({"name":"a","type":"http","interval":"soon"}))),
        ["interval"]
    );
    assert_eq!(fields_of(parse(json!([1, 2]))), ["body"]);
}

#[test]
fn headers_as_object_or_kuma_string() {
    let a = parse(json!({"name":"a","type":"http","url":"http://x.test/","headers":{"X-A":"1"}}))
        .unwrap();
    let b =
        parse(json!({"name":"a","type":"http","url":"http://x.test/","headers":"{\"X-A\":\"1\"}"}))
            .unwrap();
    assert_eq!(a, b);
    assert_eq!(
        fields_of(parse(
            json!({"name":"a","type":"http","url":"http://x.test/","headers":"nope"})
        )),
        ["headers"]
    );
    assert_eq!(
        fields_of(parse(
            json!({"name":"a","type":"http","url":"http://x.test/","headers":{"bad name":"1"}})
        )),
        ["headers"]
    );
}

#[test]
fn to_fields_round_trips() {
    let spec = parse(json!({
        "name":"a","type":"http","url":"http://x.test/p","method":"post","body":"{}",
        "headers":{"X-A":"1"},"accepted_statuscodes":["200-299","301"],"interval":30,
        "retryInterval":20,"maxretries":2,"timeout":10
    }))
    .unwrap();
    assert_eq!(spec.to_fields().parse(&LIMITS).unwrap(), spec);
}

#[test]
fn overlay_replaces_only_given_fields() {
    let mut f = parse(json!({"name":"a","type":"http","url":"http://x.test/"}))
        .unwrap()
        .to_fields();
    f.overlay(MonitorFields::from_json(json!({"interval": 90})).unwrap());
    let spec = f.parse(&LIMITS).unwrap();
    assert_eq!(spec.interval_secs, 90);
    assert_eq!(spec.name, "a");
}

#[test]
fn every_kuma_type_name_parses() {
    for t in MonitorType::ALL {
        assert_eq!(MonitorType::parse(t.as_str()), Some(*t));
    }
    assert_eq!(MonitorType::parse("tcp"), Some(MonitorType::Port));
    assert_eq!(MonitorType::parse("json"), None);
}

#[test]
fn new_kinds_parse_with_kuma_defaults() {
    let k =
        parse(json!({"name":"a","type":"keyword","url":"http://x.test/","keyword":"up"})).unwrap();
    assert_eq!(k.kind.monitor_type(), MonitorType::Keyword);
    let j = parse(
        json!({"name":"a","type":"json-query","url":"http://x.test/",
        "jsonPath":"$.a","expectedValue":"1"}),
    )
    .unwrap();
    let MonitorKind::Http(h) = &j.kind else {
        panic!()
    };
    assert_eq!(
        h.expect,
        BodyExpect::Json {
            path: "$.a".into(),
            op: JsonOp::Eq,
            expected: "1".into()
        }
    );
    let d = parse(json!({"name":"a","type":"dns","hostname":"x.test"})).unwrap();
    let MonitorKind::Dns(d) = d.kind else {
        panic!()
    };
    assert_eq!((d.port, d.record_type), (53, DnsRecordType::A));
    assert_eq!(d.server.to_string(), "1.1.1.1");
    let p = parse(json!({"name":"a","type":"ping","hostname":"127.0.0.1"})).unwrap();
    assert_eq!(
        p.kind,
        MonitorKind::Ping {
            hostname: "127.0.0.1".into(),
            count: 1
        }
    );
    let p = parse(json!({"name":"a","type":"push","interval":60})).unwrap();
    assert_eq!(p.kind, MonitorKind::Push);
}

#[test]
fn bad_input_of_the_new_kinds_is_named() {
    let cases = [
        (
            json!({"name":"a","type":"keyword","url":"http://x.test/"}),
            "keyword",
        ),
        (
            json!({"name":"a","type":"keyword","url":"http://x.test/","keyword":""}),
            "keyword",
        ),
        (
            json!({"name":"a","type":"json-query","url":"http://x.test/","jsonPath":"$[","expectedValue":"1"}),
            "jsonPath",
        ),
        (
            json!({"name":"a","type":"json-query","url":"http://x.test/","jsonPath":"a.b","expectedValue":"1"}),
            "jsonPath",
        ),
        (
            json!({"name":"a","type":"json-query","url":"http://x.test/","jsonPath":"$.a"}),
            "expectedValue",
        ),
        (
            json!({"name":"a","type":"json-query","url":"http://x.test/","jsonPath":"$.a","expectedValue":"1","jsonPathOperator":"=~"}),
            "jsonPathOperator",
        ),
        (
            json!({"name":"a","type":"dns","hostname":"x.test","dns_resolve_type":"HINFO"}),
            "dns_resolve_type",
        ),
        (
            json!({"name":"a","type":"dns","hostname":"x.test","dns_resolve_server":"dns.test"}),
            "dns_resolve_server",
        ),
        (json!({"name":"a","type":"dns"}), "hostname"),
        (
            json!({"name":"a","type":"ping","hostname":"h","packet_count":0}),
            "packet_count",
        ),
        (
            json!({"name":"a","type":"ping","hostname":"h","packet_count":-3}),
            "packet_count",
        ),
        (
            json!({"name":"a","type":"ping","hostname":"h","packet_count":101}),
            "packet_count",
        ),
        (json!({"name":"a","type":"push","interval":5}), "interval"),
        (
            json!({"name":"a","type":"push","pushToken":"a b"}),
            "pushToken",
        ),
        (
            json!({"name":"a","type":"http","url":"https://x.test/","expiryNotification":-1}),
            "expiryNotification",
        ),
    ];
    for (body, field) in cases {
        assert_eq!(fields_of(parse(body.clone())), [field], "{body}");
    }
}

#[test]
fn new_kinds_round_trip_through_fields() {
    let bodies = [
        json!({"name":"a","type":"keyword","url":"http://x.test/","keyword":"up","invertKeyword":true}),
        json!({"name":"a","type":"json-query","url":"http://x.test/","jsonPath":"$.a[0]","jsonPathOperator":">=","expectedValue":"2"}),
        json!({"name":"a","type":"dns","hostname":"x.test","dns_resolve_server":"127.0.0.1","port":5353,"dns_resolve_type":"mx","expectedValue":"10 mx.test."}),
        json!({"name":"a","type":"ping","hostname":"127.0.0.1","packet_count":3}),
        json!({"name":"a","type":"push","interval":30}),
        json!({"name":"a","type":"http","url":"https://x.test/","expiryNotification":14}),
    ];
    for b in bodies {
        let spec = parse(b.clone()).unwrap();
        assert_eq!(spec.to_fields().parse(&LIMITS).unwrap(), spec, "{b}");
    }
}

#[test]
fn expiry_notification_takes_days_or_kumas_boolean() {
    let days = |v: Value| {
        let spec = parse(
            json!({"name":"a","type":"http","url":"https://x.test/","expiryNotification": v}),
        );
        match spec.map(|s| s.kind) {
            Ok(MonitorKind::Http(h)) => Ok(h.expiry_days),
            Ok(_) => unreachable!(),
            Err(e) => Err(e[0].field.clone()),
        }
    };
    assert_eq!(days(json!(7)), Ok(7));
    assert_eq!(days(json!(true)), Ok(14));
    assert_eq!(days(json!(false)), Ok(0));
    assert_eq!(days(json!(null)), Ok(0));
    assert_eq!(days(json!("soon")), Err("expiryNotification".into()));
}

/// Each refusal names its field and says the bound; the value at the bound passes.
#[test]
fn every_bound_is_named_with_its_limit() {
    let http = |extra: Value| {
        let mut v = json!({"name": "a", "type": "http", "url": "http://x.test/", "interval": 60});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        parse(v)
    };
    let refused = |r: Result<MonitorSpec, Vec<FieldError>>, field: &str, says: &str| {
        let errs = r.unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.field == field && e.msg.contains(says)),
            "{field}: {errs:?}"
        );
    };
    // A timeout that would be stored as 0 ms is refused, not stored.
    refused(http(json!({"timeout": 0.0004})), "timeout", "at least 0.1");
    refused(http(json!({"timeout": 0.0994})), "timeout", "at least 0.1");
    assert_eq!(http(json!({"timeout": 0.1})).unwrap().timeout_ms, 100);
    refused(
        http(json!({"timeout": 59.9996})),
        "timeout",
        "less than the interval",
    );
    assert_eq!(http(json!({"timeout": 59.9})).unwrap().timeout_ms, 59_900);

    refused(http(json!({"name": "n".repeat(256)})), "name", "255");
    assert!(http(json!({"name": "n".repeat(255)})).is_ok());
    refused(http(json!({"name": "a\u{0}b"})), "name", "control");
    refused(
        http(json!({"description": "d".repeat(10 * 1024 + 1)})),
        "description",
        "10240",
    );
    assert!(http(json!({"description": "d".repeat(10 * 1024)})).is_ok());
    let long_url = format!("http://x.test/{}", "p".repeat(2048));
    refused(http(json!({"url": long_url})), "url", "2048");
    refused(
        http(json!({"body": "b".repeat(64 * 1024 + 1)})),
        "body",
        "65536",
    );
    refused(
        http(json!({"type": "keyword", "keyword": "k".repeat(1025)})),
        "keyword",
        "1024",
    );
    refused(
        http(json!({"type": "json-query", "jsonPath": "$.a", "expectedValue": "v".repeat(1025)})),
        "expectedValue",
        "1024",
    );
}

#[test]
fn header_values_cannot_smuggle_lines() {
    let with = |h: Value| {
        parse(json!({"name": "a", "type": "http", "url": "http://x.test/", "headers": h}))
    };
    for bad in ["a\r\nX-Evil: 1", "a\nb", "a\rb", "a\u{0}b"] {
        assert_eq!(fields_of(with(json!({"X-A": bad}))), ["headers"], "{bad:?}");
    }
    assert!(with(json!({"X-A": "tab\tand spaces, ünïcode"})).is_ok());
    let many: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("X-{i}"), json!("v"))).collect();
    let errs = with(Value::Object(many)).unwrap_err();
    assert!(errs[0].msg.contains("50"), "{errs:?}");
    let big = with(json!({"X-Big": "v".repeat(8 * 1024)})).unwrap_err();
    assert!(big[0].msg.contains("8192"), "{big:?}");
}

#[test]
fn hostnames_are_names_or_addresses() {
    for kind in [
        json!({"type": "port", "port": 80}),
        json!({"type": "ping"}),
        json!({"type": "dns"}),
    ] {
        for bad in [
            "exa mple",
            "http://x.test",
            "x.test/path",
            "a\u{0}b",
            "x.test:80",
        ] {
            let mut v = kind.clone();
            v["name"] = json!("h");
            v["hostname"] = json!(bad);
            assert_eq!(fields_of(parse(v)), ["hostname"], "{kind} {bad:?}");
        }
        let mut v = kind.clone();
        v["name"] = json!("h");
        v["hostname"] = json!("x".repeat(1 << 20));
        let errs = parse(v).unwrap_err();
        assert!(errs[0].msg.len() < 300, "the message is bounded too");
        for good in ["db.internal", "10.0.0.1", "::1", "localhost"] {
            let mut v = kind.clone();
            v["name"] = json!("h");
            v["hostname"] = json!(good);
            assert!(parse(v).is_ok(), "{kind} {good}");
        }
    }
    let srv = json!({"name": "s", "type": "dns", "hostname": "_sip._tcp.x.test", "dns_resolve_type": "SRV"});
    assert!(parse(srv).is_ok(), "DNS names may have underscores");
}

#[test]
fn push_tokens_belong_to_push_monitors_and_are_not_guessable() {
    let errs = parse(
        json!({"name": "a", "type": "http", "url": "http://x.test/", "pushToken": "abcdefghijk"}),
    );
    assert_eq!(fields_of(errs), ["pushToken"]);
    let short = parse(json!({"name": "p", "type": "push", "pushToken": "a"}));
    assert!(short.unwrap_err()[0].msg.contains("10 to 255"));
    assert!(parse(json!({"name": "p", "type": "push", "pushToken": "abcdefghij"})).is_ok());

    // A push monitor changed to http by a partial update loses its token.
    let mut stored =
        MonitorFields::from_json(json!({"name": "p", "type": "push", "pushToken": "abcdefghij"}))
            .unwrap();
    stored.overlay(
        MonitorFields::from_json(json!({"type": "http", "url": "http://x.test/"})).unwrap(),
    );
    assert_eq!(stored.push_token, None);
    assert!(stored.parse(&LIMITS).is_ok());
}
