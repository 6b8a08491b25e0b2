//! The pod reconciler (replaces whereabouts' ip-reconciler cron): releases addresses whose pod is
//! gone, was re-created with another UID, has finished, or sits on a node that no longer exists.
//!
//! Safety rules, in order:
//! 1. Nothing is judged on missing data: without a complete view of pods and nodes (the watch
//!    failed and a full list failed too) a pass does nothing.
//! 2. An allocation must look orphaned for a whole grace period (it becomes a *suspect*); looking
//!    alive once clears it.
//! 3. Just before a release, the pod (and its node) are read again from the API; an error means
//!    no release, a live pod clears the suspect.
//! 4. The allocation must still have the owner (and pod UID) it was suspected with, and the release
//!    is the guarded `ReleaseIp` (expected owner), so a re-used address is never freed.
//! 5. Releases are rate-limited (token bucket); dry-run logs and counts instead of releasing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipam::{Command, Event, IpamError, Outcome, Owner, ReleaseIp};
use kube::Client;
use tokio::sync::Notify;

use super::metrics::KubeMetrics;
use super::pods::{self, ClusterView, PodInfo};
use crate::proposer::WriteError;
use crate::service::Context;

/// How the reconciler paces itself.
#[derive(Clone, Debug)]
pub struct ReconcileSettings {
    /// How long an allocation must look orphaned before it is released.
    pub grace: Duration,
    /// Time between passes.
    pub interval: Duration,
    /// Time between full lists of pods and nodes.
    pub resync: Duration,
    /// Most releases per minute.
    pub max_per_minute: u32,
    /// Release nothing; log and count instead.
    pub dry_run: bool,
}

impl From<&super::KubeOptions> for ReconcileSettings {
    fn from(o: &super::KubeOptions) -> ReconcileSettings {
        ReconcileSettings {
            grace: Duration::from_secs(o.reconcile_grace_secs),
            interval: Duration::from_secs(o.reconcile_interval_secs.max(1)),
            resync: Duration::from_secs(o.reconcile_resync_secs.max(1)),
            max_per_minute: o.reconcile_max_releases_per_minute,
            dry_run: o.reconcile_dry_run,
        }
    }
}

/// Why an allocation looks orphaned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// No pod of that namespace and name.
    PodGone,
    /// A pod of that name exists with another UID (re-created).
    UidChanged,
    /// The pod's node no longer exists.
    NodeGone,
    /// The pod has finished (`Succeeded`/`Failed`).
    PodFinished,
}

impl Reason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Reason::PodGone => "pod_gone",
            Reason::UidChanged => "uid_changed",
            Reason::NodeGone => "node_gone",
            Reason::PodFinished => "pod_finished",
        }
    }
}

/// Judges an allocation made for pod UID `pod_uid` (None: not recorded) against the pod of its
/// name (None: no such pod) and `node_exists` (None: unknown).
pub fn verdict(
    pod_uid: Option<&str>,
    pod: Option<&PodInfo>,
    node_exists: impl Fn(&str) -> Option<bool>,
) -> Option<Reason> {
    let Some(pod) = pod else { return Some(Reason::PodGone) };
    if let Some(uid) = pod_uid {
        if !pod.uid.is_empty() && pod.uid != uid {
            return Some(Reason::UidChanged);
        }
    }
    if pod.finished {
        return Some(Reason::PodFinished);
    }
    match pod.node.as_deref().map(node_exists) {
        Some(Some(false)) => Some(Reason::NodeGone),
        _ => None,
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    network: String,
    ip: IpAddr,
    owner: Owner,
}

#[derive(Clone, Debug)]
struct Suspect {
    since: Instant,
    reason: Reason,
    pod: (String, String),
    pod_uid: Option<String>,
    reported: bool,
}

/// A token bucket: `per_minute` tokens a minute, at most `per_minute` saved.
#[derive(Clone, Debug)]
pub struct Bucket {
    per_minute: u32,
    tokens: f64,
    at: Option<Instant>,
}

impl Bucket {
    /// A full bucket.
    pub fn new(per_minute: u32) -> Bucket {
        Bucket { per_minute, tokens: f64::from(per_minute), at: None }
    }

    /// Takes a token at `now` if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        if let Some(at) = self.at {
            let earned = now.saturating_duration_since(at).as_secs_f64() * f64::from(self.per_minute) / 60.0;
            self.tokens = (self.tokens + earned).min(f64::from(self.per_minute));
        }
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// The view of the cluster was incomplete: nothing was judged.
    pub no_data: bool,
    /// Allocations waiting for their grace period (after the pass).
    pub suspects: usize,
    /// Addresses released (or, in dry-run, that would have been).
    pub released: Vec<IpAddr>,
    /// Suspects past their grace period left for later: the re-check failed or the bucket was empty.
    pub deferred: usize,
}

/// The reconciler's memory. Lives as long as this node leads.
pub struct Reconciler {
    client: Client,
    settings: ReconcileSettings,
    view: Arc<Mutex<ClusterView>>,
    suspects: HashMap<Key, Suspect>,
    bucket: Bucket,
    last_list: Option<Instant>,
}

impl Reconciler {
    /// A reconciler reading pods through `client`, with `view` kept fresh by [`pods::watch`].
    pub fn new(client: Client, settings: ReconcileSettings, view: Arc<Mutex<ClusterView>>) -> Reconciler {
        let bucket = Bucket::new(settings.max_per_minute);
        Reconciler { client, settings, view, suspects: HashMap::new(), bucket, last_list: None }
    }

    fn current_view(&self) -> ClusterView {
        self.view.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// One pass at time `now`: refresh the view if needed, update the suspects, release those past
    /// their grace period that the API confirms.
    pub async fn pass(&mut self, ctx: &Context, metrics: &KubeMetrics, now: Instant) -> PassReport {
        let mut report = PassReport::default();
        let due = self.last_list.is_none_or(|t| now.saturating_duration_since(t) >= self.settings.resync);
        if due || !self.current_view().ready() {
            match pods::list_all(&self.client).await {
                Ok(view) => {
                    *self.view.lock().unwrap_or_else(|p| p.into_inner()) = view;
                    self.last_list = Some(now);
                }
                Err(e) => tracing::warn!(error = %e, "reconciler: cannot list pods and nodes"),
            }
        }
        let view = self.current_view();
        if !view.ready() {
            metrics.pass("no_data");
            report.no_data = true;
            report.suspects = self.suspects.len();
            return report;
        }
        let allocations = ctx.with_machine(|m| m.state.allocations(None));
        let mut seen = HashMap::new();
        for a in &allocations {
            let Some(pod) = &a.attachment.pod else { continue };
            let key = Key { network: a.network.clone(), ip: a.ip, owner: a.attachment.owner.clone() };
            let info = view.pods.get(&(pod.namespace.clone(), pod.name.clone()));
            match verdict(a.attachment.pod_uid.as_deref(), info, |n| Some(view.nodes.contains(n))) {
                Some(reason) => {
                    let s = self.suspects.entry(key.clone()).or_insert_with(|| Suspect {
                        since: now,
                        reason,
                        pod: (pod.namespace.clone(), pod.name.clone()),
                        pod_uid: a.attachment.pod_uid.clone(),
                        reported: false,
                    });
                    s.reason = reason;
                    seen.insert(key, ());
                }
                None => {
                    self.suspects.remove(&key);
                }
            }
        }
        self.suspects.retain(|k, _| seen.contains_key(k));
        let mut ripe: Vec<(Key, Suspect)> = self
            .suspects
            .iter()
            .filter(|(_, s)| !s.reported && now.saturating_duration_since(s.since) >= self.settings.grace)
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        ripe.sort_by_key(|(k, s)| (s.since, k.network.clone(), k.ip));
        for (key, suspect) in ripe {
            match self.release_one(ctx, metrics, now, &key, &suspect).await {
                Step::Released => report.released.push(key.ip),
                Step::Cleared => {
                    self.suspects.remove(&key);
                }
                Step::Deferred => report.deferred += 1,
                Step::Stop => {
                    report.deferred += 1;
                    break;
                }
            }
        }
        report.suspects = self.suspects.len();
        metrics.set_suspects(report.suspects);
        metrics.pass("ok");
        report
    }

    async fn recheck(&self, suspect: &Suspect) -> Result<Option<Reason>, kube::Error> {
        let (ns, name) = &suspect.pod;
        let pod = pods::get_pod(&self.client, ns, name).await?;
        let node_alive = match pod.as_ref().and_then(|p| p.node.clone()) {
            Some(node) if suspect.reason == Reason::NodeGone => Some(pods::node_exists(&self.client, &node).await?),
            _ => None,
        };
        Ok(verdict(suspect.pod_uid.as_deref(), pod.as_ref(), |_| node_alive))
    }

    async fn release_one(
        &mut self,
        ctx: &Context,
        metrics: &KubeMetrics,
        now: Instant,
        key: &Key,
        suspect: &Suspect,
    ) -> Step {
        let reason = match self.recheck(suspect).await {
            Err(e) => {
                tracing::warn!(ip = %key.ip, error = %e, "reconciler: re-check failed; not releasing");
                return Step::Deferred;
            }
            Ok(None) => return Step::Cleared,
            Ok(Some(reason)) => reason,
        };
        let still_held = ctx.with_machine(|m| {
            m.state.who_has(&key.ip).into_iter().any(|v| {
                v.network == key.network && v.attachment.owner == key.owner && v.attachment.pod_uid == suspect.pod_uid
            })
        });
        if !still_held {
            return Step::Cleared;
        }
        if !self.bucket.take(now) {
            tracing::info!(ip = %key.ip, "reconciler: release rate limit reached; later");
            return Step::Stop;
        }
        let (ns, name) = &suspect.pod;
        if self.settings.dry_run {
            tracing::info!(network = %key.network, ip = %key.ip, owner = %key.owner, pod = %format!("{ns}/{name}"), reason = reason.label(), "reconciler (dry run): would release");
            metrics.release("dry_run", reason.label());
            if let Some(s) = self.suspects.get_mut(key) {
                s.reported = true;
            }
            return Step::Released;
        }
        let event = Event {
            request_id: Some(format!("reconciler-{:032x}", rand::random::<u128>())),
            time_ms: 0, // stamped by the proposer
            command: Command::ReleaseIp(ReleaseIp {
                network: key.network.clone(),
                ip: key.ip,
                expected: key.owner.clone(),
            }),
        };
        match ctx.proposer.write(event, Instant::now() + ctx.request_timeout).await {
            Ok(Ok(Outcome::Released(leases))) if !leases.is_empty() => {
                tracing::info!(network = %key.network, ip = %key.ip, owner = %key.owner, pod = %format!("{ns}/{name}"), reason = reason.label(), "reconciler: released");
                metrics.release("released", reason.label());
                ctx.metrics.releases.inc_by(leases.len() as u64);
                self.suspects.remove(key);
                Step::Released
            }
            Ok(Ok(_)) | Ok(Err(IpamError::OwnerMismatch { .. })) => Step::Cleared,
            Err(WriteError::NotLeader { .. }) => {
                tracing::info!("reconciler: not the leader any more; stopping the pass");
                Step::Stop
            }
            other => {
                tracing::warn!(ip = %key.ip, result = ?other, "reconciler: release failed");
                metrics.release("failed", reason.label());
                Step::Deferred
            }
        }
    }
}

enum Step {
    Released,
    Cleared,
    Deferred,
    Stop,
}

/// Runs the reconciler (watch + passes) until cancelled (when this node stops leading).
pub async fn run(ctx: Arc<Context>, client: Client, settings: ReconcileSettings, metrics: Arc<KubeMetrics>) {
    let view = Arc::new(Mutex::new(ClusterView::default()));
    let wake = Arc::new(Notify::new());
    let interval = settings.interval;
    let watch = pods::watch(client.clone(), view.clone(), wake.clone());
    let mut reconciler = Reconciler::new(client, settings, view);
    let passes = async {
        loop {
            let report = reconciler.pass(&ctx, &metrics, Instant::now()).await;
            if !report.released.is_empty() || report.no_data {
                tracing::info!(?report, "reconciler pass");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = wake.notified() => {}
            }
        }
    };
    tokio::select! {
        _ = watch => tracing::warn!("reconciler: watch ended"),
        _ = passes => {}
    }
}
