//! `json-query`: an `http` check whose JSON body is queried with an RFC 9535
//! JSONPath expression (`serde_json_path`); the selected value is compared
//! with `expectedValue` using `jsonPathOperator`.

use super::BODY_CAP;
use picket_shared::monitor::JsonOp;
use serde_json::Value;
use serde_json_path::JsonPath;

/// Decides on the body read so far. `Ok` carries the UP message, `Err` the
/// DOWN reason. A body larger than [`BODY_CAP`] is not parsed.
pub fn evaluate(
    path: &str,
    op: JsonOp,
    expected: &str,
    body: &[u8],
    truncated: bool,
) -> Result<String, String> {
    if truncated {
        return Err(format!(
            "response body exceeds {} KiB; not parsed as JSON",
            BODY_CAP / 1024
        ));
    }
    let path = JsonPath::parse(path).map_err(|e| format!("jsonPath does not parse: {e}"))?;
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| format!("response is not JSON: {e}"))?;
    let nodes = path.query(&doc).all();
    let selected = match nodes.as_slice() {
        [] => return Err(format!("jsonPath {path} selected nothing")),
        [one] => (*one).clone(),
        many => Value::Array(many.iter().map(|v| (*v).clone()).collect()),
    };
    let got = as_text(&selected);
    let pass = compare(&selected, op, expected)?;
    let what = format!("comparing {got} {} {expected}", op.as_str());
    if pass {
        Ok(format!("JSON query passes ({what})"))
    } else {
        Err(format!("JSON query does not pass ({what})"))
    }
}

/// Strings unquoted, everything else as JSON.
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn compare(v: &Value, op: JsonOp, expected: &str) -> Result<bool, String> {
    let text = as_text(v);
    let nums = || -> Result<(f64, f64), String> {
        let a = number(v).ok_or_else(|| format!("selected value {text} is not a number"))?;
        let b: f64 = expected
            .trim()
            .parse()
            .map_err(|_| format!("expectedValue '{expected}' is not a number"))?;
        Ok((a, b))
    };
    let equal = || match (number(v), expected.trim().parse::<f64>()) {
        (Some(a), Ok(b)) => a == b,
        _ => text == expected,
    };
    Ok(match op {
        JsonOp::Eq => equal(),
        JsonOp::Ne => !equal(),
        JsonOp::Lt => nums().map(|(a, b)| a < b)?,
        JsonOp::Le => nums().map(|(a, b)| a <= b)?,
        JsonOp::Gt => nums().map(|(a, b)| a > b)?,
        JsonOp::Ge => nums().map(|(a, b)| a >= b)?,
        JsonOp::Contains => match v {
            Value::Array(items) => items.iter().any(|i| as_text(i) == expected),
            _ => text.contains(expected),
        },
    })
}

/// A JSON number, or a string holding one.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"status":"ok","count":3,"ratio":0.5,"tags":["a","b"],"items":[{"n":1},{"n":2}],"ver":"1.20"}"#;

    #[test]
    fn operators_table() {
        use JsonOp::*;
        // (path, op, expected, up)
        let cases: &[(&str, JsonOp, &str, bool)] = &[
            ("$.status", Eq, "ok", true),
            ("$.status", Eq, "OK", false),
            ("$.status", Ne, "down", true),
            ("$.count", Eq, "3", true),
            ("$.count", Eq, "3.0", true),
            ("$.count", Lt, "4", true),
            ("$.count", Le, "3", true),
            ("$.count", Gt, "3", false),
            ("$.count", Ge, "3", true),
            ("$.ratio", Lt, "1", true),
            ("$.ver", Gt, "1.3", false),
            ("$.status", Contains, "k", true),
            ("$.tags", Contains, "b", true),
            ("$.tags", Contains, "c", false),
            ("$.items[*].n", Contains, "2", true),
            ("$.items[1].n", Eq, "2", true),
            ("$.tags.length()", Eq, "2", false), // not a JSONPath function: see parse test
        ];
        for &(path, op, expected, up) in cases {
            let got = evaluate(path, op, expected, DOC.as_bytes(), false);
            assert_eq!(got.is_ok(), up, "{path} {op:?} {expected}: {got:?}");
        }
    }

    #[test]
    fn messages_name_the_comparison_and_the_failure() {
        let ok = evaluate("$.status", JsonOp::Eq, "ok", DOC.as_bytes(), false).unwrap();
        assert_eq!(ok, "JSON query passes (comparing ok == ok)");
        let err = evaluate("$.count", JsonOp::Gt, "5", DOC.as_bytes(), false).unwrap_err();
        assert_eq!(err, "JSON query does not pass (comparing 3 > 5)");
        type Case<'a> = (&'a str, JsonOp, &'a str, &'a [u8], bool, &'a str);
        let cases: &[Case] = &[
            (
                "$.nope",
                JsonOp::Eq,
                "1",
                DOC.as_bytes(),
                false,
                "selected nothing",
            ),
            (
                "$.status",
                JsonOp::Lt,
                "1",
                DOC.as_bytes(),
                false,
                "is not a number",
            ),
            (
                "$.count",
                JsonOp::Lt,
                "x",
                DOC.as_bytes(),
                false,
                "expectedValue 'x'",
            ),
            ("$.a", JsonOp::Eq, "1", b"<html>", false, "not JSON"),
            (
                "$.a",
                JsonOp::Eq,
                "1",
                b"{\"a\":1",
                true,
                "exceeds 1024 KiB",
            ),
        ];
        for &(path, op, expected, body, truncated, msg) in cases {
            let err = evaluate(path, op, expected, body, truncated).unwrap_err();
            assert!(err.contains(msg), "{path}: {err}");
        }
    }
}
