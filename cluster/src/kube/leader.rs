//! Leader-only work: the exporter and the reconciler run on the Raft leader and stop as soon as
//! this node stops leading — or stops hearing from a quorum within the leader lease, when another
//! node may lead already (its exporter then takes over) — so two nodes never write the same
//! objects or release the same addresses.

use std::future::Future;
use std::time::Duration;

use raft_store::types::{typ, NodeId};
use tokio::sync::watch;

use crate::leader_lease::{LeaderLease, Leadership};

/// A watch that is `true` while `raft` (node `id`) is the leader and a quorum acknowledged it
/// within `lease` (openraft reports the time since on every tick). Ends with Raft.
pub fn leadership(raft: &typ::Raft, id: NodeId, lease: LeaderLease) -> watch::Receiver<bool> {
    let mut metrics = raft.metrics();
    let leads = move |m: &watch::Receiver<_>| lease.judge(id, &m.borrow()) == Leadership::Leads;
    let (tx, rx) = watch::channel(leads(&metrics));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = metrics.changed() => if changed.is_err() { break },
                _ = tx.closed() => break,
            }
            let now = leads(&metrics);
            tx.send_if_modified(|v| std::mem::replace(v, now) != now);
        }
        tx.send_replace(false);
    });
    rx
}

/// Runs `work` whenever `leading` is true, cancels it when it turns false, returns when `stop`
/// turns true (or a watch closes). Work that ends by itself is started again after `pause`.
pub async fn while_leader<F, Fut>(
    name: &'static str,
    mut leading: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
    pause: Duration,
    mut work: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        tokio::select! {
            r = leading.wait_for(|l| *l) => if r.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
        tracing::info!(task = name, "this node leads: starting");
        let ended_by_itself = tokio::select! {
            _ = work() => true,
            r = leading.wait_for(|l| !*l) => {
                tracing::info!(task = name, "this node no longer leads: stopped");
                if r.is_err() { return }
                false
            }
            _ = stop.wait_for(|s| *s) => return,
        };
        if ended_by_itself {
            tracing::warn!(task = name, "stopped by itself; starting again later");
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    struct OnDrop(Arc<watch::Sender<usize>>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.send_modify(|n| *n += 1);
        }
    }

    #[tokio::test]
    async fn work_runs_only_while_leading() {
        let (lead_tx, lead_rx) = watch::channel(false);
        let (stop_tx, stop_rx) = watch::channel(false);
        let started = Arc::new(watch::channel(0usize).0);
        let stopped = Arc::new(watch::channel(0usize).0);
        let (s, d) = (started.clone(), stopped.clone());
        let task = tokio::spawn(while_leader("test", lead_rx, stop_rx, Duration::from_secs(3600), move || {
            s.send_modify(|n| *n += 1);
            let guard = OnDrop(d.clone());
            async move {
                let _guard = guard;
                std::future::pending::<()>().await
            }
        }));
        let (mut started_rx, mut stopped_rx) = (started.subscribe(), stopped.subscribe());
        assert_eq!(*started_rx.borrow(), 0, "nothing runs before this node leads");
        lead_tx.send_replace(true);
        started_rx.wait_for(|n| *n == 1).await.unwrap();
        lead_tx.send_replace(false);
        stopped_rx.wait_for(|n| *n == 1).await.unwrap();
        lead_tx.send_replace(true);
        started_rx.wait_for(|n| *n == 2).await.unwrap();
        stop_tx.send_replace(true);
        task.await.unwrap();
        assert_eq!((*started.borrow(), *stopped.borrow()), (2, 2));
    }
}
