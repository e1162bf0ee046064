//! Uptime Kuma's result semantics as pure functions: retries and PENDING,
//! DOWN after `maxretries`, and which beats are "important" (notification-worthy).

use picket_shared::model::Status;

/// What a monitor remembers between checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BeatState {
    /// Status of the previous beat; `None` before the first.
    pub last: Option<Status>,
    /// Consecutive failures so far (Kuma's `retries`).
    pub retries: u32,
}

/// The beat to record for one check, and when to check next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beat {
    pub status: Status,
    pub important: bool,
    /// State to carry into the next check.
    pub next: BeatState,
    /// Seconds until the next check: `retryInterval` while PENDING, else `interval`.
    pub next_in_secs: u32,
}

/// Folds one check result into the monitor's state, as Uptime Kuma does: a
/// failure below `max_retries` is PENDING and re-checked at `retry_interval`;
/// after that it is DOWN (and stays DOWN until a success).
pub fn decide(
    prev: BeatState,
    up: bool,
    max_retries: u32,
    interval: u32,
    retry_interval: u32,
) -> Beat {
    let (status, retries) = if up {
        (Status::Up, 0)
    } else if prev.retries < max_retries {
        (Status::Pending, prev.retries + 1)
    } else {
        (Status::Down, prev.retries.saturating_add(1))
    };
    Beat {
        status,
        important: is_important(prev.last, status),
        next: BeatState {
            last: Some(status),
            retries,
        },
        next_in_secs: if status == Status::Pending {
            retry_interval
        } else {
            interval
        },
    }
}

/// Uptime Kuma's `isImportantBeat`: the first beat, and changes between UP,
/// DOWN and MAINTENANCE. Moves into and out of PENDING are not important, except
/// PENDING → DOWN (the retries ran out).
pub fn is_important(prev: Option<Status>, cur: Status) -> bool {
    use Status::*;
    match prev {
        None => true,
        Some(p) => matches!(
            (p, cur),
            (Up, Down)
                | (Pending, Down)
                | (Down, Up)
                | (Maintenance, Up)
                | (Maintenance, Down)
                | (Down, Maintenance)
                | (Up, Maintenance)
                | (Pending, Maintenance)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    /// Runs a sequence of check results and returns (status, important, next_in).
    fn run(max_retries: u32, results: &[bool]) -> Vec<(Status, bool, u32)> {
        let mut st = BeatState::default();
        results
            .iter()
            .map(|&up| {
                let b = decide(st, up, max_retries, 60, 10);
                st = b.next;
                (b.status, b.important, b.next_in_secs)
            })
            .collect()
    }

    #[test]
    fn no_retries_goes_straight_down() {
        assert_eq!(
            run(0, &[true, false, false, true]),
            [
                (Up, true, 60),
                (Down, true, 60),
                (Down, false, 60),
                (Up, true, 60)
            ]
        );
    }

    #[test]
    fn retries_give_pending_then_down() {
        assert_eq!(
            run(2, &[true, false, false, false, false, true]),
            [
                (Up, true, 60),
                (Pending, false, 10),
                (Pending, false, 10),
                (Down, true, 60),
                (Down, false, 60),
                (Up, true, 60),
            ]
        );
    }

    #[test]
    fn a_success_while_pending_resets_the_retries() {
        assert_eq!(
            run(2, &[false, true, false, false, false]),
            [
                (Pending, true, 10),
                (Up, false, 60),
                (Pending, false, 10),
                (Pending, false, 10),
                (Down, true, 60),
            ]
        );
    }

    #[test]
    fn importance_table() {
        let cases = [
            (None, Up, true),
            (None, Down, true),
            (Some(Up), Up, false),
            (Some(Up), Pending, false),
            (Some(Up), Down, true),
            (Some(Pending), Pending, false),
            (Some(Pending), Down, true),
            (Some(Pending), Up, false),
            (Some(Down), Down, false),
            (Some(Down), Up, true),
            (Some(Maintenance), Maintenance, false),
            (Some(Maintenance), Up, true),
            (Some(Down), Maintenance, true),
        ];
        for (prev, cur, want) in cases {
            assert_eq!(is_important(prev, cur), want, "{prev:?} -> {cur:?}");
        }
    }
}
