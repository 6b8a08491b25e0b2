//! What the fuzz targets assert, shared: the invariants of an IPAM [`State`], the checks of a
//! parsed configuration, and the plugin harness (an [`Env`](plugin::Env) in memory and a client
//! factory that never connects). A violated invariant panics, which libFuzzer reports as a crash.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use plugin::config::{key_matches, IpamConfig, MAX_RANGES};
use ipam::snapshot;
use ipam::{AllocationView, Event, PoolUsage, Range, Reply, State};

/// What clients can see of a state: every allocation and every pool's usage.
pub fn observable(state: &State) -> (Vec<AllocationView>, Vec<PoolUsage>) {
    (state.allocations(None), state.pool_usage())
}

/// The invariants of a state: no address twice in a pool, at most one address per owner (and per
/// pod + interface) in a pool, every address inside its pool, pool counts that add up, and
/// `who_has` agreeing with the listing.
pub fn check_state(state: &State) {
    let (all, usage) = observable(state);
    assert_eq!(all.len(), state.allocation_count(), "allocation count");
    let mut addresses = HashSet::new();
    let mut owners = HashSet::new();
    let mut pods = HashSet::new();
    let mut per_pool: HashMap<(&str, IpNet), u64> = HashMap::new();
    for a in &all {
        assert!(a.pool.contains(&a.ip), "{} outside its pool {}", a.ip, a.pool);
        assert!(addresses.insert((&a.network, a.pool, a.ip)), "{} twice in pool {}", a.ip, a.pool);
        let owner = &a.attachment.owner;
        assert!(owners.insert((&a.network, a.pool, owner)), "{owner} holds two addresses in {}", a.pool);
        if let Some(pod) = &a.attachment.pod {
            assert!(pods.insert((&a.network, a.pool, pod, &owner.ifname)), "pod {pod} twice in {}", a.pool);
        }
        *per_pool.entry((a.network.as_str(), a.pool)).or_default() += 1;
        let holders = state.who_has(&a.ip);
        assert!(holders.iter().any(|h| h == a), "who_has({}) misses {a:?}", a.ip);
    }
    let mut total = 0;
    for u in &usage {
        assert_eq!(per_pool.get(&(u.network.as_str(), u.cidr)).copied().unwrap_or(0), u.used, "used of {}", u.cidr);
        total += u.used;
    }
    assert_eq!(total as usize, all.len(), "pool counts add up");
    for key in per_pool.keys() {
        assert!(usage.iter().any(|u| (u.network.as_str(), u.cidr) == *key), "pool {key:?} missing from usage");
    }
}

/// A network never holds one address in two pools (the overlap rule), valid while every
/// allocation in that network asked for `enable_overlapping_ranges`.
pub fn check_no_overlap(state: &State, network: &str) {
    let mut seen = HashSet::new();
    for a in state.allocations(Some(network)) {
        assert!(seen.insert(a.ip), "{} held in two pools of network {network:?}", a.ip);
    }
}

/// Encodes `state`, decodes it, and checks that nothing visible was lost and that encoding is
/// canonical. Returns the decoded copy (what a follower restored from this snapshot would hold).
pub fn snapshot_round_trip(state: &State) -> State {
    let bytes = snapshot::encode(state);
    let back = snapshot::decode(&bytes).unwrap_or_else(|e| panic!("own snapshot does not decode: {e}"));
    assert_eq!(observable(&back), observable(state), "snapshot lost or changed allocations");
    assert!(back.history().eq(state.history()), "snapshot changed the history");
    assert_eq!(back.events_applied(), state.events_applied());
    assert_eq!(back.limits(), state.limits());
    assert_eq!(snapshot::encode(&back), bytes, "snapshot encoding is not canonical");
    back
}

/// Applies `event` and checks: the invariants hold, a failure changes nothing visible, and a
/// repeated request id returns the same reply without acting again.
pub fn apply_checked(state: &mut State, event: &Event) -> Reply {
    let before = observable(state);
    let reply = ipam::apply(state, event);
    check_state(state);
    if reply.is_err() {
        assert_eq!(observable(state), before, "a failed event changed the state: {reply:?}");
    }
    if event.request_id.is_some() && state.limits().request_cache > 0 {
        let after = observable(state);
        let again = ipam::apply(state, event);
        if matches!(event.command, ipam::Command::SetClusterVersion(_)) {
            // Not remembered by design (its reply must never reach a snapshot an older release
            // reads): a retry reports the version now in force, with the same effect.
            assert_eq!(again.is_ok(), reply.is_ok(), "a retried version change changed its outcome");
        } else {
            assert_eq!(again, reply, "a retried request id got another reply");
        }
        assert_eq!(observable(state), after, "a retried request id acted twice");
    }
    reply
}

/// Checks a configuration the parser accepted: bounded lists and values, and every range
/// surviving the trip plugin → wire → node unchanged (the node parses `to_spec()` again).
pub fn check_config(c: &IpamConfig) {
    assert!(c.ranges.len() <= MAX_RANGES, "{} ranges", c.ranges.len());
    assert!(c.requested_ips.len() <= MAX_RANGES, "{} requested ips", c.requested_ips.len());
    // A configuration with neither ranges nor addresses loads (whereabouts' loader accepts it, and
    // DEL must complete with it); ADD refuses it later, so there is no invariant on that here.
    if let Some(t) = c.cluster.timeout_seconds {
        assert!(t > 0.0 && t <= 600.0, "timeout {t}");
    }
    for e in &c.cluster.endpoints {
        assert!(e.rsplit_once(':').is_some(), "endpoint {e:?}");
    }
    for r in &c.ranges {
        check_range(r);
    }
}

/// A range's own invariants, and its wire forms (spec text and postcard) decoding to itself.
pub fn check_range(r: &Range) {
    assert!(1 <= r.first() && r.first() <= r.last(), "bounds {}..{} of {}", r.first(), r.last(), r.network());
    assert!(r.network().contains(&r.ip_at(r.last())), "last outside {}", r.network());
    let excludes = r.excludes();
    assert!(excludes.windows(2).all(|w| w[0].1.saturating_add(1) < w[1].0), "excludes not merged: {excludes:?}");
    let (again, warnings) = Range::parse(&r.to_spec(), "range").expect("a range's own spec parses");
    assert_eq!(&again, r, "spec round trip of {}", r.describe());
    assert!(warnings.is_empty(), "spec of {} warns: {warnings:?}", r.describe());
    let bytes = postcard::to_stdvec(r).expect("encode range");
    assert_eq!(&postcard::from_bytes::<Range>(&bytes).expect("decode range"), r, "postcard round trip");
}

/// An in-memory writer whose contents stay readable.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// What was written.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A client factory that never connects: every endpoint is unreachable at once.
pub struct NoNetwork;

impl plugin::ClientFactory for NoNetwork {
    fn connect<'a>(
        &'a self,
        _endpoint: &'a str,
        _timeout: Duration,
        _tls: Option<&'a plugin::config::TlsPaths>,
    ) -> plugin::client::BoxFuture<'a, Result<plugin::client::IpamGrpc, String>> {
        Box::pin(async { Err("fuzzing: no network".to_string()) })
    }
}

/// Keeps a plugin invocation fast and contained: in every `ipam` section that parses, drops
/// `log_file` (the fuzzer must not create files) and caps a valid or missing `timeout_seconds` at
/// 1 ms (the cluster is unreachable, so the budget is spent at once). Keys are found as the plugin
/// finds them (case-insensitively, as Go does: `"Ipam"`, `"TIMEOUT_SECONDS"`). Invalid values
/// stay, so their errors are still exercised. Returns `None` when nothing had to change.
pub fn contain_stdin(stdin: &[u8]) -> Option<Vec<u8>> {
    let mut v: serde_json::Value = serde_json::from_slice(stdin).ok()?;
    let mut changed = false;
    let serde_json::Value::Object(conf) = &mut v else { return None };
    for (key, value) in conf.iter_mut() {
        if key_matches(key, "ipam") {
            changed |= contain_ipam(value);
        } else if key_matches(key, "plugins") {
            for plugin in value.as_array_mut().into_iter().flatten() {
                for (key, value) in plugin.as_object_mut().into_iter().flatten() {
                    if key_matches(key, "ipam") {
                        changed |= contain_ipam(value);
                    }
                }
            }
        }
    }
    changed.then(|| serde_json::to_vec(&v).expect("a parsed value encodes"))
}

/// [`contain_stdin`] for one `ipam` object; whether it changed.
fn contain_ipam(ipam: &mut serde_json::Value) -> bool {
    let serde_json::Value::Object(ipam) = ipam else { return false };
    let before = ipam.len();
    ipam.retain(|key, _| !key_matches(key, "log_file"));
    let mut changed = ipam.len() != before;
    let mut seen = false;
    for (key, t) in ipam.iter_mut() {
        if !key_matches(key, "timeout_seconds") {
            continue;
        }
        seen = true;
        let valid = t.is_null() || t.as_f64().is_some_and(|t| t > 0.001 && t <= 600.0);
        if valid {
            *t = serde_json::json!(0.001);
            changed = true;
        }
    }
    if !seen {
        ipam.insert("timeout_seconds".into(), serde_json::json!(0.001));
        changed = true;
    }
    changed
}
