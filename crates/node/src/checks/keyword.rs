//! `keyword`: an `http` check whose body must contain (or, with
//! `invertKeyword`, must not contain) the keyword. Case-sensitive, as Uptime
//! Kuma. Only the first [`super::BODY_CAP`] bytes are read.

use super::BODY_CAP;

/// Characters of the body quoted in a DOWN message.
const EXCERPT_CHARS: usize = 50;

/// Decides on the body read so far (`truncated`: the target sent more than
/// was read). `Ok` carries the UP message suffix, `Err` the DOWN reason.
pub fn evaluate(
    keyword: &str,
    invert: bool,
    body: &[u8],
    truncated: bool,
) -> Result<String, String> {
    let text = String::from_utf8_lossy(body);
    let found = text.contains(keyword);
    let scope = if truncated {
        format!(
            " in the first {} KiB of the body (the rest was not read)",
            BODY_CAP / 1024
        )
    } else {
        String::new()
    };
    match (found, invert) {
        (true, false) => Ok(format!("keyword [{keyword}] is found")),
        (false, true) => Ok(format!("keyword [{keyword}] is not found{scope}")),
        (false, false) => Err(format!(
            "keyword [{keyword}] is not found{scope}; body starts [{}]",
            excerpt(&text)
        )),
        (true, true) => Err(format!(
            "keyword [{keyword}] is found (invertKeyword); body starts [{}]",
            excerpt(&text)
        )),
    }
}

/// The first [`EXCERPT_CHARS`] characters, whitespace collapsed and other
/// control characters shown as `?`, with `...` when cut: a DOWN message
/// shows a glimpse of what came back, never the response itself.
pub fn excerpt(text: &str) -> String {
    let flat: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let mut out: String = flat.chars().take(EXCERPT_CHARS).collect();
    if flat.chars().count() > EXCERPT_CHARS {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_table() {
        // (keyword, invert, body, truncated, up, message contains)
        let cases: &[(&str, bool, &str, bool, bool, &str)] = &[
            (
                "ok",
                false,
                "all ok here",
                false,
                true,
                "keyword [ok] is found",
            ),
            (
                "OK",
                false,
                "all ok here",
                false,
                false,
                "body starts [all ok here]",
            ),
            (
                "missing",
                false,
                "all ok here",
                false,
                false,
                "is not found",
            ),
            (
                "ok",
                true,
                "all ok here",
                false,
                false,
                "is found (invertKeyword)",
            ),
            ("error", true, "all ok here", false, true, "is not found"),
            ("late", false, "early", true, false, "first 1024 KiB"),
            ("x", false, "", false, false, "body starts []"),
        ];
        for &(kw, invert, body, truncated, up, msg) in cases {
            let got = evaluate(kw, invert, body.as_bytes(), truncated);
            let text = match &got {
                Ok(m) | Err(m) => m.clone(),
            };
            assert_eq!(got.is_ok(), up, "{kw} {invert} {body}: {text}");
            assert!(text.contains(msg), "{kw} {invert} {body}: {text}");
        }
    }

    #[test]
    fn excerpt_is_short_and_marked() {
        let long = "a ".repeat(100);
        let e = excerpt(&long);
        assert!(
            e.ends_with("...") && e.chars().count() == EXCERPT_CHARS + 3,
            "{e}"
        );
        assert_eq!(excerpt("  two\n\nlines "), "two lines");
    }
}
