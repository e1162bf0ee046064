//! Waiting for what a test expects, by polling it: never a fixed sleep.

use std::future::Future;
use std::time::Duration;

/// How long a test waits by default for something that should happen soon.
pub const WAIT: Duration = Duration::from_secs(15);

/// What a poll returns: `true`/`false`, or `Some(value)` once there is one.
pub trait Ready {
    type Value;
    fn ready(self) -> Option<Self::Value>;
}

impl Ready for bool {
    type Value = ();
    fn ready(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Ready for Option<T> {
    type Value = T;
    fn ready(self) -> Option<T> {
        self
    }
}

/// Polls `f` every 50 ms until it is ready, and returns its value; fails the
/// test, naming `what`, after `limit`.
pub async fn eventually<F, Fut>(
    limit: Duration,
    what: &str,
    mut f: F,
) -> <Fut::Output as Ready>::Value
where
    F: FnMut() -> Fut,
    Fut: Future,
    Fut::Output: Ready,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await.ready() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
