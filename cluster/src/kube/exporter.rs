//! The IPPool exporter: a read-only mirror of the IPAM state in whereabouts' `IPPool` objects (and,
//! optionally, `OverlappingRangeIPReservation`s), so `kubectl get ippools` and existing dashboards
//! keep working.
//!
//! - Batched: a round computes the wanted objects from the state and writes only those that
//!   changed since the last successful write, each at most once per round, and at most
//!   `max_writes` per round. A burst of 1,000 allocations in one pool is one write.
//! - Server-side apply (`fieldManager=whereabouts-rs`, forced): no read-modify-write race.
//! - Recovers: a failed write leaves the object pending; the next rounds (with backoff) retry until
//!   the API answers. A periodic full resync re-lists and re-applies everything, repairing objects
//!   edited or deleted by hand.
//! - Read-only: nothing read from the API ever goes back into the Raft log. Only objects labelled
//!   `app.kubernetes.io/managed-by=whereabouts-rs` are deleted (those of pools that no longer exist).
//! - Never blocks allocation: it reads the state under the read lock, then talks to the API.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipam::State;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams};
use kube::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::crd::{
    IPAllocation, IPPool, IPPoolSpec, IPPoolStatus, OverlappingRangeIPReservation, OverlappingRangeIPReservationSpec,
    MANAGED_BY, MANAGED_BY_LABEL,
};
use super::metrics::KubeMetrics;
use super::naming;
use crate::service::Context;

/// How the exporter paces itself.
#[derive(Clone, Debug)]
pub struct ExportSettings {
    /// Namespace of the objects.
    pub namespace: String,
    /// Time between rounds.
    pub interval: Duration,
    /// Most writes (apply or delete) per round.
    pub max_writes: usize,
    /// Time between full resyncs.
    pub resync: Duration,
    /// Also mirror `OverlappingRangeIPReservation`s.
    pub reservations: bool,
}

impl From<&super::KubeOptions> for ExportSettings {
    fn from(o: &super::KubeOptions) -> ExportSettings {
        ExportSettings {
            namespace: o.kube_namespace.clone(),
            interval: o.export_interval(),
            max_writes: o.export_max_writes.max(1),
            resync: Duration::from_secs(o.export_resync_secs.max(1)),
            reservations: o.export_reservations,
        }
    }
}

/// The objects the API should hold, by name.
#[derive(Clone, Debug, Default)]
pub struct Desired {
    /// `IPPool`s.
    pub pools: BTreeMap<String, IPPool>,
    /// `OverlappingRangeIPReservation`s (empty unless enabled).
    pub reservations: BTreeMap<String, OverlappingRangeIPReservation>,
}

fn meta(name: String, namespace: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(namespace.to_string()),
        labels: Some(BTreeMap::from([(MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string())])),
        ..ObjectMeta::default()
    }
}

/// The objects mirroring `state`: one `IPPool` per pool (empty pools too), one reservation per
/// held address when `reservations` is set.
pub fn desired(state: &State, namespace: &str, reservations: bool) -> Desired {
    let mut out = Desired::default();
    let mut by_pool: HashMap<(String, ipnet::IpNet), String> = HashMap::new();
    for usage in state.pool_usage() {
        let name = naming::ippool_name(&usage.network, &usage.cidr);
        let spec = IPPoolSpec { range: usage.cidr.trunc().to_string(), allocations: BTreeMap::new() };
        let mut pool = IPPool::new(&name, spec);
        pool.metadata = meta(name.clone(), namespace);
        pool.status = Some(IPPoolStatus { total: usage.usable.to_string(), used: usage.used });
        by_pool.insert((usage.network, usage.cidr), name.clone());
        out.pools.insert(name, pool);
    }
    for view in state.allocations(None) {
        let Some(name) = by_pool.get(&(view.network.clone(), view.pool)) else { continue };
        let Some(offset) = naming::offset_of(&view.pool, &view.ip) else { continue };
        let att = &view.attachment;
        let podref = att.pod.as_ref().map(|p| naming::podref(&p.namespace, &p.name)).unwrap_or_default();
        if reservations {
            let rname = naming::reservation_name(&view.network, &view.ip);
            let spec = OverlappingRangeIPReservationSpec {
                containerid: att.owner.container_id.clone(),
                podref: podref.clone(),
                ifname: att.owner.ifname.clone(),
            };
            let mut r = OverlappingRangeIPReservation::new(&rname, spec);
            r.metadata = meta(rname.clone(), namespace);
            out.reservations.insert(rname, r);
        }
        let entry = IPAllocation {
            id: att.owner.container_id.clone(),
            podref,
            ifname: att.owner.ifname.clone(),
            ipamclaimref: None,
        };
        if let Some(pool) = out.pools.get_mut(name) {
            pool.spec.allocations.insert(offset.to_string(), entry);
        }
    }
    out
}

/// What one round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Objects applied.
    pub applied: usize,
    /// Objects deleted.
    pub deleted: usize,
    /// Objects still to write or delete (budget spent, or the API failed).
    pub pending: usize,
    /// The API failed during the round (listing or writing).
    pub failed: bool,
    /// Nothing changed since the last round: nothing was computed.
    pub idle: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Pool,
    Reservation,
}

/// The exporter's memory of what the API holds. Lives as long as this node leads.
pub struct Exporter {
    pools: Api<IPPool>,
    reservations: Api<OverlappingRangeIPReservation>,
    settings: ExportSettings,
    /// Fingerprint of each object as last applied successfully.
    written: HashMap<(Kind, String), u64>,
    /// Our labelled objects known to exist (None: list them first).
    present: Option<HashSet<(Kind, String)>>,
    seen_events: Option<u64>,
    last_full: Option<Instant>,
    pending: usize,
    failures: u32,
}

fn fingerprint(obj: &impl Serialize) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_vec(obj).unwrap_or_default().hash(&mut h);
    h.finish()
}

async fn list_names<K>(api: &Api<K>, kind: Kind, into: &mut HashSet<(Kind, String)>) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let params = ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
    let mut continue_token: Option<String> = None;
    loop {
        let page = match &continue_token {
            Some(t) => params.clone().continue_token(t),
            None => params.clone(),
        };
        let list = api.list_metadata(&page).await?;
        into.extend(list.items.into_iter().filter_map(|o| o.metadata.name).map(|n| (kind, n)));
        match list.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(t) => continue_token = Some(t),
            None => return Ok(()),
        }
    }
}

async fn apply<K>(api: &Api<K>, name: &str, obj: &K) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    api.patch(name, &PatchParams::apply(MANAGED_BY).force(), &Patch::Apply(obj)).await.map(|_| ())
}

async fn delete<K>(api: &Api<K>, name: &str) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

impl Exporter {
    /// An exporter writing through `client`.
    pub fn new(client: Client, settings: ExportSettings) -> Exporter {
        Exporter {
            pools: Api::namespaced(client.clone(), &settings.namespace),
            reservations: Api::namespaced(client, &settings.namespace),
            settings,
            written: HashMap::new(),
            present: None,
            seen_events: None,
            last_full: None,
            pending: 0,
            failures: 0,
        }
    }

    /// One round against the state of `ctx`; returns the report and how long to wait.
    pub async fn round(&mut self, ctx: &Context, metrics: &KubeMetrics) -> (RoundReport, Duration) {
        let now = Instant::now();
        let applied = ctx.with_machine(|m| m.state.events_applied());
        let full = self.last_full.is_none_or(|t| now.duration_since(t) >= self.settings.resync);
        if !full && self.seen_events == Some(applied) && self.pending == 0 {
            return (RoundReport { idle: true, ..RoundReport::default() }, self.settings.interval);
        }
        let (ns, res) = (self.settings.namespace.clone(), self.settings.reservations);
        let wanted = ctx.with_machine(|m| desired(&m.state, &ns, res));
        let report = self.sync(&wanted, full, metrics).await;
        if report.failed {
            self.failures = self.failures.saturating_add(1);
        } else {
            self.failures = 0;
            self.seen_events = Some(applied);
            if full {
                self.last_full = Some(now);
            }
        }
        let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        metrics.export_round(report.pending + usize::from(report.failed), unix as i64);
        (report, self.backoff())
    }

    fn backoff(&self) -> Duration {
        let factor = 1u32 << self.failures.min(5);
        (self.settings.interval * factor).min(Duration::from_secs(60).max(self.settings.interval))
    }

    /// Brings the API towards `wanted`: lists our objects first when needed (or on a `full`
    /// resync, which also forgets what was written so everything is applied again), then applies
    /// changed objects and deletes ours that are no longer wanted, within the write budget.
    pub async fn sync(&mut self, wanted: &Desired, full: bool, metrics: &KubeMetrics) -> RoundReport {
        let mut report = RoundReport::default();
        if full || self.present.is_none() {
            let mut present = HashSet::new();
            let listed = match list_names(&self.pools, Kind::Pool, &mut present).await {
                Ok(()) if self.settings.reservations => {
                    list_names(&self.reservations, Kind::Reservation, &mut present).await
                }
                other => other,
            };
            if let Err(e) = listed {
                tracing::warn!(error = %e, "exporter: cannot list IPPools; retrying later");
                report.failed = true;
                return report;
            }
            if full {
                self.written.clear();
            }
            self.present = Some(present);
        }
        let present = self.present.clone().unwrap_or_default();
        let changed = |kind: Kind, name: &String, fp: u64| self.written.get(&(kind, name.clone())) != Some(&fp);
        let mut applies: Vec<(Kind, String, u64)> = Vec::new();
        for (name, pool) in &wanted.pools {
            let fp = fingerprint(pool);
            if changed(Kind::Pool, name, fp) {
                applies.push((Kind::Pool, name.clone(), fp));
            }
        }
        for (name, r) in &wanted.reservations {
            let fp = fingerprint(r);
            if changed(Kind::Reservation, name, fp) {
                applies.push((Kind::Reservation, name.clone(), fp));
            }
        }
        let mut deletes: Vec<(Kind, String)> = present
            .iter()
            .filter(|(kind, name)| match kind {
                Kind::Pool => !wanted.pools.contains_key(name),
                Kind::Reservation => !wanted.reservations.contains_key(name),
            })
            .cloned()
            .collect();
        deletes.sort();
        let total = applies.len() + deletes.len();
        let mut budget = self.settings.max_writes;
        for (kind, name, fp) in applies {
            if budget == 0 || report.failed {
                break;
            }
            budget -= 1;
            let result = match kind {
                Kind::Pool => apply(&self.pools, &name, &wanted.pools[&name]).await,
                Kind::Reservation => apply(&self.reservations, &name, &wanted.reservations[&name]).await,
            };
            metrics.export_write(result.is_ok());
            match result {
                Ok(()) => {
                    report.applied += 1;
                    self.written.insert((kind, name.clone()), fp);
                    self.present.get_or_insert_with(HashSet::new).insert((kind, name));
                }
                Err(e) => {
                    tracing::warn!(object = %name, error = %e, "exporter: write failed; retrying later");
                    report.failed = true;
                }
            }
        }
        for (kind, name) in deletes {
            if budget == 0 || report.failed {
                break;
            }
            budget -= 1;
            let result = match kind {
                Kind::Pool => delete(&self.pools, &name).await,
                Kind::Reservation => delete(&self.reservations, &name).await,
            };
            metrics.export_write(result.is_ok());
            match result {
                Ok(()) => {
                    report.deleted += 1;
                    self.written.remove(&(kind, name.clone()));
                    if let Some(p) = self.present.as_mut() {
                        p.remove(&(kind, name));
                    }
                }
                Err(e) => {
                    tracing::warn!(object = %name, error = %e, "exporter: delete failed; retrying later");
                    report.failed = true;
                }
            }
        }
        report.pending = total - report.applied - report.deleted;
        self.pending = report.pending;
        if report.applied + report.deleted > 0 {
            tracing::debug!(applied = report.applied, deleted = report.deleted, pending = report.pending, "exported");
        }
        report
    }
}

/// Runs the exporter until cancelled (the caller cancels it when this node stops leading).
pub async fn run(ctx: Arc<Context>, client: Client, settings: ExportSettings, metrics: Arc<KubeMetrics>) {
    let mut exporter = Exporter::new(client, settings);
    loop {
        let (_, wait) = exporter.round(&ctx, &metrics).await;
        tokio::time::sleep(wait).await;
    }
}
