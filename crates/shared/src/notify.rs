//! Which beats notify, and of what: Uptime Kuma's rules, judged beat by beat
//! against what the database last recorded for the monitor ([`AlertState`]),
//! never against a node's memory, so a monitor that moves to another node
//! does not announce its state again. Pure: the heartbeat write calls
//! [`judge`] inside its transaction and stores the new state with the beat.
//!
//! - A change between UP and DOWN notifies; PENDING and MAINTENANCE do not.
//! - The first beat of a monitor notifies only when it is DOWN.
//! - `upThreshold` UP beats in a row end an outage (Kuma: 1).
//! - While DOWN, a reminder every `resendInterval` further DOWN beats (Kuma's
//!   rule; 0 = never) or, where set, every `resendMinutes`.
//! - Maintenance in the middle of an outage does not reset it: a monitor
//!   still DOWN afterwards raises no second DOWN.

use crate::model::Status;

/// What a notification announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Down,
    Up,
    /// Still DOWN (`resendInterval` / `resendMinutes`).
    Reminder,
    /// The certificate expires within a threshold ([`tls_expiry_crossed`]).
    TlsExpiry,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [
        EventKind::Down,
        EventKind::Up,
        EventKind::Reminder,
        EventKind::TlsExpiry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Down => "down",
            EventKind::Up => "up",
            EventKind::Reminder => "reminder",
            EventKind::TlsExpiry => "tls_expiry",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Events this process's writes created, by kind: counted once their
/// transaction committed (a rolled-back or fenced write counts none).
#[derive(Debug, Default)]
pub struct EventCounts([std::sync::atomic::AtomicU64; 4]);

impl EventCounts {
    pub(crate) fn add(&self, kinds: &[EventKind]) {
        for k in kinds {
            self.0[*k as usize].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Each kind with its count so far.
    pub fn get(&self) -> [(EventKind, u64); 4] {
        EventKind::ALL.map(|k| {
            (
                k,
                self.0[k as usize].load(std::sync::atomic::Ordering::Relaxed),
            )
        })
    }
}

/// What the database keeps per monitor between beats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlertState {
    /// The state last announced (UP or DOWN); `None` before the first.
    pub announced: Option<Status>,
    /// Consecutive UP beats while announced DOWN.
    pub ups: u32,
    /// DOWN beats since the last DOWN or reminder notice.
    pub downs: u32,
    /// Epoch ms of the last DOWN or reminder notice.
    pub notified_at: i64,
}

/// A monitor's notification settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertRules {
    /// UP beats in a row that end an outage (at least 1).
    pub up_threshold: u32,
    /// A reminder every this many further DOWN beats; 0 = never.
    pub resend_interval: u32,
    /// A reminder every this many minutes while DOWN; 0 = off.
    pub resend_minutes: u32,
}

impl Default for AlertRules {
    fn default() -> Self {
        AlertRules {
            up_threshold: 1,
            resend_interval: 0,
            resend_minutes: 0,
        }
    }
}

/// Days before a certificate's expiry at which it is announced (Uptime
/// Kuma's `tlsExpiryNotifyDays`), besides the monitor's own
/// `expiryNotification` days.
pub const TLS_EXPIRY_DAYS: [i64; 3] = [7, 14, 21];

/// The threshold a certificate with `days` left newly crosses, for a
/// monitor with `expiryNotification` of `monitor_days` (0 = off), given the
/// smallest threshold already announced for this certificate. Each
/// threshold is announced once per certificate; an expired one is the
/// monitor's DOWN, not a notice.
pub fn tls_expiry_crossed(monitor_days: i64, announced: Option<i64>, days: i64) -> Option<i64> {
    if monitor_days <= 0 || days < 0 {
        return None;
    }
    let mut all: Vec<i64> = TLS_EXPIRY_DAYS.into_iter().chain([monitor_days]).collect();
    all.sort_unstable();
    let t = all.into_iter().find(|t| days <= *t)?;
    match announced {
        Some(a) if a <= t => None,
        _ => Some(t),
    }
}

/// Folds one beat (its status, at `time`) into `state`; returns the event it
/// causes, if any.
pub fn judge(
    state: &mut AlertState,
    rules: &AlertRules,
    status: Status,
    time: i64,
) -> Option<EventKind> {
    match status {
        Status::Pending => {
            state.ups = 0;
            None
        }
        Status::Maintenance => None,
        Status::Up => match state.announced {
            Some(Status::Down) => {
                state.ups += 1;
                if state.ups < rules.up_threshold.max(1) {
                    return None;
                }
                *state = AlertState {
                    announced: Some(Status::Up),
                    ..AlertState::default()
                };
                Some(EventKind::Up)
            }
            // The first beat, UP: nothing to announce.
            None => {
                state.announced = Some(Status::Up);
                None
            }
            _ => None,
        },
        Status::Down => {
            state.ups = 0;
            if state.announced != Some(Status::Down) {
                state.announced = Some(Status::Down);
                state.downs = 0;
                state.notified_at = time;
                return Some(EventKind::Down);
            }
            state.downs += 1;
            let by_count = rules.resend_interval > 0 && state.downs >= rules.resend_interval;
            let by_time = rules.resend_minutes > 0
                && time - state.notified_at >= i64::from(rules.resend_minutes) * 60_000;
            if by_count || by_time {
                state.downs = 0;
                state.notified_at = time;
                Some(EventKind::Reminder)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventKind::*;
    use Status::{Down as D, Maintenance as M, Pending as P, Up as U};

    /// Runs `beats` (one a minute) from a fresh state; the events in order,
    /// with the index of the beat that caused each.
    fn run(rules: AlertRules, beats: &[Status]) -> Vec<(usize, EventKind)> {
        let mut s = AlertState::default();
        beats
            .iter()
            .enumerate()
            .filter_map(|(i, b)| judge(&mut s, &rules, *b, i as i64 * 60_000).map(|e| (i, e)))
            .collect()
    }

    #[test]
    fn kumas_rules_of_importance() {
        let k = AlertRules::default();
        let check = |beats: &[Status], want: &[(usize, EventKind)]| {
            assert_eq!(run(k, beats), want, "{beats:?}");
        };
        check(&[U, U, U], &[]);
        check(&[D], &[(0, Down)]);
        check(&[U, D, D, U, U], &[(1, Down), (3, Up)]);
        check(&[U, P, P, U], &[]);
        check(&[U, P, D, U], &[(2, Down), (3, Up)]);
        check(&[U, M, M, U], &[]);
        check(&[U, M, D], &[(2, Down)]);
        // Maintenance inside an outage: no fresh DOWN after it, UP at the end.
        check(&[U, D, M, M, D, D, U], &[(1, Down), (6, Up)]);
    }

    #[test]
    fn up_threshold_holds_the_up_back_against_flapping() {
        let r = AlertRules {
            up_threshold: 3,
            ..AlertRules::default()
        };
        assert_eq!(
            run(r, &[U, D, U, U, D, U, U, U, U]),
            vec![(1, Down), (7, Up)]
        );
        // A PENDING beat breaks the run of UPs too.
        assert_eq!(run(r, &[D, U, U, P, U, U, U]), vec![(0, Down), (6, Up)]);
    }

    #[test]
    fn reminders_every_n_down_beats_or_every_m_minutes() {
        let every3 = AlertRules {
            resend_interval: 3,
            ..AlertRules::default()
        };
        assert_eq!(
            run(every3, &[D, D, D, D, D, D, D, U]),
            vec![(0, Down), (3, Reminder), (6, Reminder), (7, Up)]
        );
        let every2min = AlertRules {
            resend_minutes: 2,
            ..AlertRules::default()
        };
        assert_eq!(
            run(every2min, &[D, D, D, D, D]),
            vec![(0, Down), (2, Reminder), (4, Reminder)]
        );
        // 0 means never.
        assert_eq!(run(AlertRules::default(), &[D; 50]), vec![(0, Down)]);
    }

    #[test]
    fn each_tls_threshold_is_announced_once_per_certificate() {
        // Days left on successive checks of one certificate.
        let mut announced = None;
        let mut got = Vec::new();
        for days in [40, 21, 20, 15, 14, 13, 8, 7, 3, 0, -1] {
            if let Some(t) = tls_expiry_crossed(14, announced, days) {
                announced = Some(t);
                got.push((days, t));
            }
        }
        assert_eq!(got, [(21, 21), (14, 14), (7, 7)]);
        // Off, or already expired: nothing.
        assert_eq!(tls_expiry_crossed(0, None, 3), None);
        assert_eq!(tls_expiry_crossed(14, None, -2), None);
        // The monitor's own days are a threshold too; a renewed certificate
        // (nothing announced for it) starts over.
        assert_eq!(tls_expiry_crossed(30, None, 28), Some(30));
        assert_eq!(tls_expiry_crossed(14, None, 5), Some(7));
    }

    #[test]
    fn a_state_carried_over_does_not_announce_again() {
        // A monitor that moved to another node: the new owner starts from
        // the stored state, DOWN announced, and stays quiet while DOWN.
        let mut s = AlertState {
            announced: Some(D),
            ..AlertState::default()
        };
        let k = AlertRules::default();
        assert_eq!(judge(&mut s, &k, D, 0), None);
        assert_eq!(judge(&mut s, &k, U, 1), Some(Up));
    }
}
