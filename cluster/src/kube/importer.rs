//! The importer: seeds the cluster from whereabouts' `IPPool`s (and `OverlappingRangeIPReservation`s)
//! so a live cluster can switch without re-addressing pods. Each held address becomes a static
//! allocation of exactly that address, in the pool (network name, range) the `IPPool` names, for
//! the same owner (container id, interface, pod). An address already held by the same owner is
//! left alone; one held by anybody else is a conflict, reported and never overwritten. Nothing is
//! written unless asked to (`apply`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::net::IpAddr;

use ipam::ip::parse_cidr_sloppy;
use ipnet::IpNet;
use kube::api::{Api, ListParams};
use kube::Client;
use proto::ipam as pb;
use serde::{Deserialize, Serialize};

use super::crd::{IPPool, OverlappingRangeIPReservation};
use super::naming;

/// Why a source cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file is not YAML of Kubernetes objects.
    #[error("cannot parse {what}: {reason}")]
    Parse {
        /// Which document or object.
        what: String,
        /// The parser's message.
        reason: String,
    },
    /// The Kubernetes API failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The cluster failed (not a conflict: retry the import, it is safe to re-run).
    #[error("cluster: {0}")]
    Cluster(tonic::Status),
}

/// whereabouts objects to import.
#[derive(Clone, Debug, Default)]
pub struct Source {
    /// `IPPool`s.
    pub pools: Vec<IPPool>,
    /// `OverlappingRangeIPReservation`s, by name.
    pub reservations: BTreeMap<String, OverlappingRangeIPReservation>,
    /// Objects of other kinds that were skipped.
    pub skipped: Vec<String>,
}

impl Source {
    /// Reads YAML: one or more documents, each an object or a `List` of objects (what `kubectl get
    /// ippools,overlappingrangeipreservations -A -o yaml` prints).
    pub fn from_yaml(text: &str) -> Result<Source, ImportError> {
        let mut source = Source::default();
        for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let value = serde_yaml::Value::deserialize(doc)
                .map_err(|e| ImportError::Parse { what: format!("document {}", i + 1), reason: e.to_string() })?;
            if value.is_null() {
                continue;
            }
            match value.get("items").and_then(|v| v.as_sequence()) {
                Some(items) => items.iter().try_for_each(|item| source.add(item.clone()))?,
                None => source.add(value)?,
            }
        }
        Ok(source)
    }

    fn add(&mut self, value: serde_yaml::Value) -> Result<(), ImportError> {
        let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or_default().to_string();
        let name = value.get("metadata").and_then(|m| m.get("name")).and_then(|n| n.as_str()).unwrap_or("?");
        let what = format!("{kind} {name}");
        let parse = |e: serde_yaml::Error| ImportError::Parse { what: what.clone(), reason: e.to_string() };
        match kind.as_str() {
            "IPPool" => self.pools.push(serde_yaml::from_value(value).map_err(parse)?),
            "OverlappingRangeIPReservation" => {
                let r: OverlappingRangeIPReservation = serde_yaml::from_value(value).map_err(parse)?;
                self.reservations.insert(r.metadata.name.clone().unwrap_or_default(), r);
            }
            _ => self.skipped.push(what),
        }
        Ok(())
    }

    /// Lists the objects from the API (`namespace`, or all namespaces).
    pub async fn from_kube(client: Client, namespace: Option<&str>) -> Result<Source, ImportError> {
        let (pools, reservations): (Api<IPPool>, Api<OverlappingRangeIPReservation>) = match namespace {
            Some(ns) => (Api::namespaced(client.clone(), ns), Api::namespaced(client, ns)),
            None => (Api::all(client.clone()), Api::all(client)),
        };
        let mut source = Source { pools: pools.list(&ListParams::default()).await?.items, ..Source::default() };
        match reservations.list(&ListParams::default()).await {
            Ok(list) => {
                source.reservations =
                    list.items.into_iter().map(|r| (r.metadata.name.clone().unwrap_or_default(), r)).collect()
            }
            // Older installations have no reservation CRD: nothing to cross-check then.
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        Ok(source)
    }
}

/// Import settings.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Interface name for allocations that record none (whereabouts before `ifname` existed).
    pub default_ifname: String,
    /// CNI network name recorded with each imported allocation.
    pub cni_network: String,
}

/// One address found in the source, and what happens to it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    /// The `IPPool` it comes from.
    pub source: String,
    /// Network name (from the `IPPool` name).
    pub network: String,
    /// The pool's CIDR.
    pub pool: String,
    /// The address.
    pub ip: String,
    /// `containerID/ifname`.
    pub owner: String,
    /// `namespace/name`, when known.
    pub pod: String,
    /// `new`, `imported`, `present` (already held by this owner), `conflict` or `invalid`.
    pub result: String,
    /// Why, for conflicts and invalid entries; notes otherwise.
    pub detail: String,
    #[serde(skip)]
    request: Option<pb::AllocateRequest>,
}

/// What an import found (and did).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportReport {
    /// Whether it wrote (`--apply`) or only planned.
    pub applied: bool,
    /// Every address, in source order.
    pub entries: Vec<Entry>,
    /// Things worth knowing that concern no single address.
    pub notes: Vec<String>,
}

impl ImportReport {
    /// How many entries have `result`.
    pub fn count(&self, result: &str) -> usize {
        self.entries.iter().filter(|e| e.result == result).count()
    }
}

fn network_of(pool_name: &str, cidr: &IpNet) -> Option<String> {
    let bare = naming::ippool_name("", cidr);
    if pool_name == bare {
        return Some(String::new());
    }
    pool_name.strip_suffix(&bare)?.strip_suffix('-').filter(|n| !n.is_empty()).map(str::to_string)
}

enum Found {
    Free,
    Present,
    Conflict(String),
}

/// The cluster's allocations, by address, by owner and by pod (each within network and pool).
struct Index {
    by_ip: HashMap<(String, IpAddr), Vec<(String, String)>>,
    by_owner: HashMap<(String, String, String, String), String>,
    by_pod: HashMap<(String, String, String, String), String>,
}

impl Index {
    fn new(existing: &[pb::Allocation]) -> Index {
        let mut index = Index { by_ip: HashMap::new(), by_owner: HashMap::new(), by_pod: HashMap::new() };
        for a in existing {
            let att = a.attachment.clone().unwrap_or_default();
            if let Ok(ip) = a.ip.parse::<IpAddr>() {
                let owner = (att.container_id.clone(), att.ifname.clone());
                index.by_ip.entry((a.network_name.clone(), ip)).or_default().push(owner);
            }
            let key = (a.network_name.clone(), a.pool.clone(), att.container_id, att.ifname.clone());
            index.by_owner.insert(key, a.ip.clone());
            if !att.pod_name.is_empty() {
                let pod = naming::podref(&att.pod_namespace, &att.pod_name);
                index.by_pod.insert((a.network_name.clone(), a.pool.clone(), pod, att.ifname), a.ip.clone());
            }
        }
        index
    }

    /// Whether `ip` can be given to `owner` (container id, ifname) of `podref` in the pool.
    fn check(&self, network: &str, cidr: &IpNet, ip: IpAddr, owner: (&str, &str), podref: Option<&str>) -> Found {
        let (id, ifname) = (owner.0.to_string(), owner.1.to_string());
        if let Some(holders) = self.by_ip.get(&(network.to_string(), ip)) {
            if holders.iter().any(|h| *h == (id.clone(), ifname.clone())) {
                return Found::Present;
            }
            let names: Vec<String> = holders.iter().map(|(c, i)| format!("{c}/{i}")).collect();
            return Found::Conflict(format!("held by {}", names.join(", ")));
        }
        let pool = cidr.to_string();
        if let Some(other) = self.by_owner.get(&(network.to_string(), pool.clone(), id, ifname.clone())) {
            return Found::Conflict(format!("this owner already holds {other} in the pool"));
        }
        let by_pod = podref.and_then(|p| self.by_pod.get(&(network.to_string(), pool, p.to_string(), ifname.clone())));
        match by_pod {
            Some(other) => Found::Conflict(format!(
                "pod {} ({ifname}) already holds {other} in the pool",
                podref.unwrap_or_default()
            )),
            None => Found::Free,
        }
    }
}

/// Plans the import of `source` into a cluster currently holding `existing`.
pub fn plan(source: &Source, existing: &[pb::Allocation], opts: &ImportOptions) -> ImportReport {
    let mut report = ImportReport::default();
    report.notes.extend(source.skipped.iter().map(|s| format!("skipped {s}: not an IPPool or reservation")));
    let index = Index::new(existing);
    let mut used_reservations = HashSet::new();
    let mut seen: HashSet<(String, IpAddr)> = HashSet::new();
    for pool in &source.pools {
        let name = pool.metadata.name.clone().unwrap_or_default();
        let Some((addr, prefix)) = parse_cidr_sloppy(&pool.spec.range) else {
            report.notes.push(format!("IPPool {name}: range {:?} is not a CIDR; skipped", pool.spec.range));
            continue;
        };
        let cidr = IpNet::new(addr, prefix).expect("prefix checked").trunc();
        let Some(network) = network_of(&name, &cidr) else {
            report.notes.push(format!(
                "IPPool {name}: the name does not match range {cidr} as whereabouts names pools; skipped"
            ));
            continue;
        };
        let mut allocations: Vec<_> = pool.spec.allocations.iter().collect();
        allocations.sort_by_key(|(offset, _)| (offset.parse::<u128>().unwrap_or(u128::MAX), offset.to_string()));
        for (offset, a) in allocations {
            let mut e = Entry {
                source: name.clone(),
                network: network.clone(),
                pool: cidr.to_string(),
                ip: String::new(),
                owner: String::new(),
                pod: a.podref.clone(),
                result: "new".into(),
                detail: String::new(),
                request: None,
            };
            let Some(ip) = offset.parse::<u128>().ok().and_then(|o| naming::ip_at(&cidr, o)) else {
                (e.result, e.detail) = ("invalid".into(), format!("offset {offset} is outside {cidr}"));
                report.entries.push(e);
                continue;
            };
            e.ip = ip.to_string();
            let reservation = source.reservations.get(&naming::reservation_name(&network, &ip));
            if reservation.is_some() {
                used_reservations.insert(naming::reservation_name(&network, &ip));
            }
            let mut ifname = a.ifname.clone();
            if ifname.is_empty() {
                ifname = reservation.map(|r| r.spec.ifname.clone()).filter(|i| !i.is_empty()).unwrap_or_else(|| {
                    e.detail = format!("no ifname recorded: {} assumed", opts.default_ifname);
                    opts.default_ifname.clone()
                });
            }
            e.owner = format!("{}/{ifname}", a.id);
            if let Some(r) = reservation.filter(|r| r.spec.containerid != a.id && !r.spec.containerid.is_empty()) {
                e.detail = format!("reservation says container {}; the IPPool wins", r.spec.containerid);
            }
            let pod = naming::parse_podref(&a.podref);
            let conflict = if !seen.insert((network.clone(), ip)) {
                Some("listed twice in the source".to_string())
            } else {
                match index.check(&network, &cidr, ip, (&a.id, &ifname), pod.map(|_| a.podref.as_str())) {
                    Found::Present => {
                        e.result = "present".into();
                        None
                    }
                    Found::Conflict(why) => Some(why),
                    Found::Free => None,
                }
            };
            if let Some(why) = conflict {
                (e.result, e.detail) = ("conflict".into(), why);
            } else if e.result == "new" {
                let (pod_namespace, pod_name) = pod.map(|(n, p)| (n.to_string(), p.to_string())).unwrap_or_default();
                if pod.is_none() && !a.podref.is_empty() {
                    e.detail = format!("podref {:?} is not namespace/name: imported without a pod", a.podref);
                }
                e.request = Some(pb::AllocateRequest {
                    request_id: format!("import-{:032x}", rand::random::<u128>()),
                    network_name: network.clone(),
                    ranges: vec![],
                    static_ips: vec![format!("{ip}/{}", cidr.prefix_len())],
                    enable_overlapping_ranges: Some(true),
                    attachment: Some(pb::Attachment {
                        container_id: a.id.clone(),
                        ifname: ifname.clone(),
                        pod_namespace,
                        pod_name,
                        cni_network: opts.cni_network.clone(),
                        ..Default::default()
                    }),
                });
            }
            report.entries.push(e);
        }
    }
    for name in source.reservations.keys().filter(|n| !used_reservations.contains(*n)) {
        report.notes.push(format!("reservation {name} matches no IPPool allocation; ignored"));
    }
    report
}

/// Where an import writes: the cluster's IPAM API.
pub trait ImportTarget {
    /// Every allocation the cluster holds (a fresh read).
    fn allocations(&self) -> impl Future<Output = Result<Vec<pb::Allocation>, tonic::Status>>;
    /// One `Allocate` call.
    fn allocate(&self, req: pb::AllocateRequest) -> impl Future<Output = Result<pb::AllocateResponse, tonic::Status>>;
}

/// Plans the import of `source` and, with `apply`, commits the new entries one by one. A refusal
/// by the cluster (address taken, owner conflict, invalid) makes that entry a conflict; an
/// unavailable cluster stops the import with an error (re-running is safe: imported entries are
/// then `present`).
pub async fn import<T: ImportTarget>(
    target: &T,
    source: &Source,
    opts: &ImportOptions,
    apply: bool,
) -> Result<ImportReport, ImportError> {
    let existing = target.allocations().await.map_err(ImportError::Cluster)?;
    let mut report = plan(source, &existing, opts);
    report.applied = apply;
    if !apply {
        return Ok(report);
    }
    for e in &mut report.entries {
        let Some(req) = e.request.take() else { continue };
        match target.allocate(req).await {
            Ok(_) => e.result = "imported".into(),
            Err(s) if is_refusal(&s) => (e.result, e.detail) = ("conflict".into(), s.message().to_string()),
            Err(s) => return Err(ImportError::Cluster(s)),
        }
    }
    Ok(report)
}

/// A refusal a node said (see `proto::node_reason`): the entry is reported as a conflict and the
/// import goes on. Anything else (the transport's codes included) stops the import.
fn is_refusal(status: &tonic::Status) -> bool {
    use tonic::Code::*;
    proto::node_reason(status).is_some()
        && matches!(status.code(), AlreadyExists | FailedPrecondition | InvalidArgument | ResourceExhausted)
}
