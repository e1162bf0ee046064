//! Rebalances asked of a balancer that is not the leader, and rebalances
//! and health-check rounds asked from the dashboard (by any node): queued in
//! the database (`cluster_request`) for the leader, which claims each one (a
//! conditional UPDATE, so it runs once), runs it like its own, and writes the
//! outcome back; a request nobody claimed before its asker gave up is
//! withdrawn, never run late.

use super::{Ctx, HANDOVER_POLL, HANDOVER_WAIT, LEADER_LEASE};
use crate::report::{ClusterError, RebalanceReport, RunningGuard};
use picket_shared::db::cluster::request_kind::{HEALTH_CHECK, REBALANCE, REBALANCE_ALL};
use picket_shared::db::{Db, RequestState};
use picket_shared::now_ms;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The kind names a handed-over request carries.
fn kind_of(all: bool) -> &'static str {
    if all { REBALANCE_ALL } else { REBALANCE }
}

impl Ctx {
    /// Hands a rebalance to the leader through the database and replies when
    /// its outcome is there (or after [`HANDOVER_WAIT`]), without holding up
    /// this service's own rounds meanwhile.
    pub(super) async fn hand_over(
        &mut self,
        all: bool,
        reply: oneshot::Sender<Result<RebalanceReport, ClusterError>>,
    ) {
        let db = match self.db.get().await {
            Ok(db) => db.clone(),
            Err(e) => {
                let _ = reply.send(Err(e.into()));
                return;
            }
        };
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let r = await_leader(&db, kind_of(all), &shared.lb_id, HANDOVER_WAIT).await;
            if let Ok(report) = &r {
                shared.rebalance.record(report);
            }
            let _ = reply.send(r);
        });
    }

    /// Leader: carries out the requests other balancers handed over, oldest
    /// first, each claimed before it runs so that it runs once. Marked as the
    /// running rebalance, like one asked of this balancer directly; while
    /// such a one is waiting, this pass leaves them for the next.
    pub(super) async fn serve_handed_over(&mut self) {
        let Ok(db) = self.db.get().await.cloned() else {
            return;
        };
        let shared = self.shared.clone();
        let max_age = HANDOVER_WAIT.as_millis() as i64;
        let pending = match db.pending_cluster_requests(now_ms(), max_age).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(cause = %e, "could not read handed-over requests");
                return;
            }
        };
        if pending.is_empty() {
            return;
        }
        let Some(_running) = RunningGuard::try_start(&shared.rebalance.running) else {
            return;
        };
        for req in pending {
            if !db
                .claim_cluster_request(req.id, &shared.lb_id)
                .await
                .unwrap_or(false)
            {
                continue;
            }
            tracing::info!(id = req.id, kind = %req.kind, from = %req.requested_by, "running a handed-over request");
            let outcome = match req.kind.as_str() {
                REBALANCE => Ok(self.rebalance(false).await),
                REBALANCE_ALL => Ok(self.rebalance(true).await),
                // Asked from the dashboard: a round now, answered as
                // `POST /lb/trigger-health-check` answers.
                HEALTH_CHECK => Err(self.run_once().await),
                other => Ok(Err(ClusterError::UnknownRequest(other.to_owned()))),
            };
            let (status, body) = match outcome {
                Ok(Ok(report)) => (200, serde_json::to_value(&report).unwrap_or_default()),
                Ok(Err(e)) => (e.http_status(), json!({"ok": false, "msg": e.to_string()})),
                Err(round) => (
                    round
                        .as_ref()
                        .map_or_else(ClusterError::http_status, |_| 200),
                    crate::local::round_json(&round),
                ),
            };
            if let Err(e) = db
                .finish_cluster_request(req.id, status, &body.to_string(), now_ms())
                .await
            {
                tracing::warn!(id = req.id, cause = %e, "could not record a handed-over request's outcome");
            }
        }
    }
}

/// Queues `kind` for the leader and waits for its outcome: the leader's
/// report, or its refusal. A request nobody claimed within `wait` is
/// withdrawn, so it cannot run after the client was told it failed.
pub async fn await_leader(
    db: &Db,
    kind: &str,
    by: &str,
    wait: Duration,
) -> Result<RebalanceReport, ClusterError> {
    let id = db.request_cluster_action(kind, by, now_ms()).await?;
    let deadline = Instant::now() + wait;
    loop {
        tokio::time::sleep(HANDOVER_POLL).await;
        let state = db.cluster_request_state(id).await?;
        if let Some(RequestState::Done { status, result, .. }) = state {
            let body: serde_json::Value = serde_json::from_str(&result).unwrap_or_default();
            return if status == 200 {
                serde_json::from_value(body).map_err(|e| {
                    ClusterError::HandOver(format!("the leader's report did not parse: {e}"))
                })
            } else {
                let msg = body["msg"]
                    .as_str()
                    .unwrap_or("the leader refused")
                    .to_owned();
                Err(ClusterError::Leader { status, msg })
            };
        }
        if Instant::now() < deadline {
            continue;
        }
        return Err(ClusterError::HandOver(match state {
            Some(RequestState::Running { by }) => {
                format!("the leader ({by}) is still running it; see /lb/rebalancing-status")
            }
            _ if db
                .abandon_cluster_request(id, now_ms())
                .await
                .unwrap_or(false) =>
            {
                let leader = match db.lease(LEADER_LEASE).await {
                    Ok(Some(l)) => l.holder,
                    _ => "unknown".into(),
                };
                format!(
                    "the leader ({leader}) did not take the request within {} s; nothing was changed",
                    wait.as_secs_f64()
                )
            }
            _ => "the leader took the request late; see /lb/rebalancing-status".into(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(by: &str, moved: u64) -> RebalanceReport {
        RebalanceReport {
            kind: "rebalance".into(),
            by: by.into(),
            started_at: 1,
            duration_ms: 2,
            planned: moved as usize,
            moved,
            before: Default::default(),
            after: Default::default(),
        }
    }

    #[tokio::test]
    async fn a_handed_over_request_gets_the_leaders_outcome() {
        let t = picket_testkit::db::sqlite().await;
        let db = t.db.clone();
        // A stand-in leader: claims each request as it comes and answers it.
        let answers = [
            (200, serde_json::to_value(report("lb-1", 3)).unwrap()),
            (409, json!({"ok": false, "msg": "no online node"})),
        ];
        let leader = tokio::spawn(async move {
            for (status, body) in answers {
                let req = loop {
                    let pending = db.pending_cluster_requests(now_ms(), 60_000).await.unwrap();
                    if let Some(r) = pending.into_iter().next() {
                        break r;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                };
                assert_eq!(req.requested_by, "lb-2");
                assert!(db.claim_cluster_request(req.id, "lb-1").await.unwrap());
                db.finish_cluster_request(req.id, status, &body.to_string(), now_ms())
                    .await
                    .unwrap();
            }
        });
        let wait = Duration::from_secs(10);
        let ok = await_leader(&t.db, "rebalance", "lb-2", wait)
            .await
            .unwrap();
        assert_eq!(ok, report("lb-1", 3));
        let refused = await_leader(&t.db, "rebalance_all", "lb-2", wait)
            .await
            .unwrap_err();
        assert_eq!(
            (refused.http_status(), refused.to_string()),
            (409, "no online node".to_owned())
        );
        leader.await.unwrap();
    }

    #[tokio::test]
    async fn a_request_no_leader_takes_is_withdrawn_and_never_runs_late() {
        let t = picket_testkit::db::sqlite().await;
        let now = now_ms();
        t.db.acquire_lease(LEADER_LEASE, "lb-gone", 3_600_000, now)
            .await
            .unwrap();
        let e = await_leader(&t.db, "rebalance", "lb-2", Duration::from_millis(500))
            .await
            .unwrap_err();
        assert_eq!(e.http_status(), 503);
        let msg = e.to_string();
        assert!(
            msg.contains("lb-gone") && msg.contains("nothing was changed"),
            "{msg}"
        );
        // A leader that turns up later finds nothing to run.
        assert!(
            t.db.pending_cluster_requests(now_ms(), 60_000)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
