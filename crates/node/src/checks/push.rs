//! `push`: passive. Results arrive on `/api/push/{token}` (any node) and are
//! written as heartbeats for the monitor's owner. The owner only checks that
//! they keep coming: DOWN when none arrived within `interval` + a grace.

/// What the owner concludes at one of its due times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A push arrived recently enough: record nothing.
    Fresh,
    /// No push in the window: record a DOWN beat with this message.
    Overdue(String),
}

/// Slack after `interval` before a missing push counts: 20 % of the interval,
/// between 1 and 60 s (a pusher on the same schedule is never quite on time).
pub fn grace_ms(interval_secs: u32) -> i64 {
    (i64::from(interval_secs) * 200).clamp(1_000, 60_000)
}

/// `last_ms`: time of the latest heartbeat of the monitor (a push, or our own
/// DOWN); `since_ms`: when this node started watching (a new or moved
/// monitor gets a full window before it can be overdue).
pub fn evaluate(last_ms: Option<i64>, since_ms: i64, now_ms: i64, interval_secs: u32) -> Verdict {
    let window = i64::from(interval_secs) * 1000 + grace_ms(interval_secs);
    let reference = last_ms.unwrap_or(since_ms).max(since_ms);
    if now_ms - reference < window {
        Verdict::Fresh
    } else {
        Verdict::Overdue(format!(
            "No heartbeat in the time window ({interval_secs} s + {} s grace)",
            grace_ms(interval_secs) / 1000
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_table() {
        let s = 1_000_000;
        // (last, since, now, interval, overdue)
        let cases = [
            (None, s, s + 5_000, 10, false),
            (None, s, s + 12_000, 10, true),
            (Some(s + 5_000), s, s + 16_000, 10, false),
            (Some(s + 5_000), s, s + 17_000, 10, true),
            // A beat from before we started watching does not count against us.
            (Some(s - 100_000), s, s + 3_000, 10, false),
            (Some(s), s, s + 60_000 + 11_999, 60, false),
            (Some(s), s, s + 60_000 + 12_000, 60, true),
        ];
        for (last, since, now, interval, overdue) in cases {
            let v = evaluate(last, since, now, interval);
            assert_eq!(
                matches!(v, Verdict::Overdue(_)),
                overdue,
                "{last:?} {now} {interval}"
            );
        }
        assert_eq!(grace_ms(1), 1_000);
        assert_eq!(grace_ms(3600), 60_000);
    }
}
