//! Who holds an address. A request describes its [`Attachment`] (container, interface, pod,
//! node, CNI network); a pool keeps it as a compact [`Allocation`] whose repeated strings (ifnames,
//! namespaces, node and network names) are interned [`Sym`]bols.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::packed::{self, Part};

/// The owner of an address as CNI names it: container id + interface name (`containerID/ifname`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Owner {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
}

impl Owner {
    /// The owner `container_id/ifname`.
    pub fn new(container_id: impl Into<String>, ifname: impl Into<String>) -> Owner {
        Owner { container_id: container_id.into(), ifname: ifname.into() }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.container_id, self.ifname)
    }
}

/// A pod as Kubernetes names it, from `CNI_ARGS` (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PodRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl std::fmt::Display for PodRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Everything an ADD says about who asks for addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Container id + interface.
    pub owner: Owner,
    /// The pod, when the runtime passed it (always under Kubernetes).
    #[serde(default)]
    pub pod: Option<PodRef>,
    /// `K8S_POD_UID`, used by the reconciler to tell a re-created pod from the old one.
    #[serde(default)]
    pub pod_uid: Option<String>,
    /// The Kubernetes node the plugin runs on; GC and per-node permissions use it.
    #[serde(default)]
    pub node: Option<String>,
    /// The CNI network `name` of the configuration (GC is per CNI network).
    pub cni_network: String,
}

impl Attachment {
    /// An attachment known only by its owner and CNI network (no pod, no node).
    pub fn new(owner: Owner, cni_network: impl Into<String>) -> Attachment {
        Attachment { owner, pod: None, pod_uid: None, node: None, cni_network: cni_network.into() }
    }

    /// Adds the pod `namespace/name`.
    pub fn with_pod(mut self, namespace: impl Into<String>, name: impl Into<String>) -> Attachment {
        self.pod = Some(PodRef { namespace: namespace.into(), name: name.into() });
        self
    }

    /// Adds the node name.
    pub fn with_node(mut self, node: impl Into<String>) -> Attachment {
        self.node = Some(node.into());
        self
    }
}

/// An interned string: an index into the state's [`Interner`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Sym(pub u32);

/// Strings that repeat across many allocations, stored once. Symbols are handed out in order of
/// first use, so replaying the same log gives the same symbols on every node.
#[derive(Clone, Debug, Default)]
pub struct Interner {
    names: Vec<Box<str>>,
    ids: HashMap<Box<str>, Sym>,
}

impl Interner {
    /// Rebuilds an interner from its names in symbol order (from a snapshot).
    pub fn from_names(names: Vec<String>) -> Interner {
        let mut interner = Interner::default();
        for name in names {
            interner.intern(&name);
        }
        interner
    }

    /// The symbol of `s`, adding it if new.
    pub fn intern(&mut self, s: &str) -> Sym {
        if let Some(&sym) = self.ids.get(s) {
            return sym;
        }
        let sym = Sym(u32::try_from(self.names.len()).expect("fewer than 2^32 distinct names"));
        self.names.push(s.into());
        self.ids.insert(s.into(), sym);
        sym
    }

    /// The symbol of `s` if it was ever interned.
    pub fn lookup(&self, s: &str) -> Option<Sym> {
        self.ids.get(s).copied()
    }

    /// The string of `sym`.
    pub fn name(&self, sym: Sym) -> &str {
        &self.names[sym.0 as usize]
    }

    /// All names in symbol order (for snapshots).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }
}

/// The namespace symbol of an allocation without a pod.
const NO_POD: Sym = Sym(u32::MAX);

/// One held address, as a pool stores it: 48 bytes and one small heap block, because a pool may
/// hold a million. The container id, pod name and pod UID are [`packed`] back to back in one block
/// (a 64-hex container id takes 34 bytes, a UUID 17); the repeated names are interned symbols.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// The packed container id, then (with a pod) the pod name, then (with a UID) the pod UID.
    strings: Box<[u8]>,
    /// Interface name of the owner.
    pub ifname: Sym,
    /// Pod namespace ([`NO_POD`] when the attachment has no pod).
    pod_namespace: Sym,
    /// Node name, when known.
    pub node: Option<Sym>,
    /// CNI network name of the attachment.
    pub cni_network: Sym,
    /// Leader-stamped time of the allocation (ms since the Unix epoch).
    pub since_ms: u64,
    /// The address is reserved across the network: no other pool of the same network name hands
    /// it out to an overlap-aware request. True for allocations made with
    /// `enable_overlapping_ranges` on; false when it was off (whereabouts then writes no
    /// `OverlappingRangeIPReservation`, so the address is invisible to the other ranges).
    pub overlap_reserved: bool,
    has_pod_uid: bool,
}

impl Allocation {
    /// Builds the record for `a`, interning its repeated strings. `overlap_reserved`: see the field.
    pub fn new(a: &Attachment, since_ms: u64, overlap_reserved: bool, names: &mut Interner) -> Allocation {
        let mut strings = Vec::with_capacity(a.owner.container_id.len() + 48);
        packed::push(&mut strings, &a.owner.container_id);
        let pod_namespace = match &a.pod {
            Some(pod) => {
                packed::push(&mut strings, &pod.name);
                names.intern(&pod.namespace)
            }
            None => NO_POD,
        };
        if let Some(uid) = &a.pod_uid {
            packed::push(&mut strings, uid);
        }
        Allocation {
            strings: strings.into_boxed_slice(),
            ifname: names.intern(&a.owner.ifname),
            pod_namespace,
            node: a.node.as_deref().map(|n| names.intern(n)),
            cni_network: names.intern(&a.cni_network),
            since_ms,
            overlap_reserved,
            has_pod_uid: a.pod_uid.is_some(),
        }
    }

    /// Builds a record from parts already packed (a snapshot's), with symbols already interned.
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        container_id: Part<'_>,
        ifname: Sym,
        pod: Option<(Sym, Part<'_>)>,
        pod_uid: Option<Part<'_>>,
        node: Option<Sym>,
        cni_network: Sym,
        since_ms: u64,
        overlap_reserved: bool,
    ) -> Allocation {
        let mut strings = Vec::with_capacity(96);
        packed::push_part(&mut strings, container_id);
        let pod_namespace = match pod {
            Some((ns, name)) => {
                packed::push_part(&mut strings, name);
                ns
            }
            None => NO_POD,
        };
        if let Some(uid) = pod_uid {
            packed::push_part(&mut strings, uid);
        }
        Allocation {
            strings: strings.into_boxed_slice(),
            ifname,
            pod_namespace,
            node,
            cni_network,
            since_ms,
            overlap_reserved,
            has_pod_uid: pod_uid.is_some(),
        }
    }

    /// The packed strings in order: container id, pod name (with a pod), pod UID (with one).
    fn parts(&self) -> (&[u8], Option<&[u8]>, Option<&[u8]>) {
        let (container, rest) = packed::split(&self.strings);
        let (pod, rest) = match self.pod_namespace {
            NO_POD => (None, rest),
            _ => {
                let (name, rest) = packed::split(rest);
                (Some(name), rest)
            }
        };
        let uid = self.has_pod_uid.then(|| packed::split(rest).0);
        (container, pod, uid)
    }

    /// The packed container id (compare it with [`packed::pack`] of a query).
    pub fn container_packed(&self) -> &[u8] {
        packed::split(&self.strings).0
    }

    /// The container id of the owner.
    pub fn container_id(&self) -> String {
        packed::unpack(self.container_packed())
    }

    /// The pod's namespace and packed name, when the attachment has a pod.
    pub fn pod_packed(&self) -> Option<(Sym, &[u8])> {
        self.parts().1.map(|name| (self.pod_namespace, name))
    }

    /// The pod's namespace and name, when the attachment has a pod.
    pub fn pod(&self) -> Option<(Sym, String)> {
        self.pod_packed().map(|(ns, name)| (ns, packed::unpack(name)))
    }

    /// The pod UID, when known.
    pub fn pod_uid(&self) -> Option<String> {
        self.parts().2.map(packed::unpack)
    }

    /// The stored parts, for a snapshot: (container id, pod name, pod UID).
    pub fn packed_parts(&self) -> (Part<'_>, Option<Part<'_>>, Option<Part<'_>>) {
        let (c, p, u) = self.parts();
        (packed::part(c), p.map(packed::part), u.map(packed::part))
    }

    /// True when this allocation belongs to `container_id` + `ifname`.
    pub fn is_owned_by(&self, container_id: &str, ifname: Sym) -> bool {
        self.ifname == ifname && self.container_packed() == packed::pack(container_id).as_slice()
    }

    /// True when this allocation belongs to the packed `container` + `ifname`.
    pub fn is_owned_by_packed(&self, container: &[u8], ifname: Sym) -> bool {
        self.ifname == ifname && self.container_packed() == container
    }

    /// True when the pod of this allocation has no namespace (podman sends `K8S_POD_NAME` only):
    /// such a pod name is unique on its host at most, so it never identifies an attachment.
    pub fn has_namespaceless_pod(&self, names: &Interner) -> bool {
        self.pod_namespace != NO_POD && names.name(self.pod_namespace).is_empty()
    }

    /// True when this allocation belongs to pod `namespace` + packed `name` on `ifname`.
    pub fn is_for_pod_packed(&self, namespace: Sym, name: &[u8], ifname: Sym) -> bool {
        self.ifname == ifname && self.pod_namespace == namespace && self.pod_packed().is_some_and(|(_, n)| n == name)
    }

    /// The owner in its public form.
    pub fn owner(&self, names: &Interner) -> Owner {
        Owner { container_id: self.container_id(), ifname: names.name(self.ifname).to_string() }
    }

    /// The attachment in its public form.
    pub fn attachment(&self, names: &Interner) -> Attachment {
        Attachment {
            owner: self.owner(names),
            pod: self.pod().map(|(ns, name)| PodRef { namespace: names.name(ns).into(), name }),
            pod_uid: self.pod_uid(),
            node: self.node.map(|n| names.name(n).into()),
            cni_network: names.name(self.cni_network).into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interner_is_deterministic_and_round_trips() {
        let mut a = Interner::default();
        assert_eq!(a.intern("eth0"), Sym(0));
        assert_eq!(a.intern("net1"), Sym(1));
        assert_eq!(a.intern("eth0"), Sym(0));
        let b = Interner::from_names(a.names().map(String::from).collect());
        assert_eq!(b.lookup("net1"), Some(Sym(1)));
        assert_eq!(b.name(Sym(0)), "eth0");
        assert_eq!(b.lookup("missing"), None);
    }

    #[test]
    fn allocation_keeps_the_attachment() {
        let mut names = Interner::default();
        let att = Attachment {
            owner: Owner { container_id: "c1".into(), ifname: "eth0".into() },
            pod: Some(PodRef { namespace: "ns".into(), name: "p".into() }),
            pod_uid: Some("uid".into()),
            node: Some("n1".into()),
            cni_network: "net".into(),
        };
        let alloc = Allocation::new(&att, 7, true, &mut names);
        assert_eq!(alloc.attachment(&names), att);
        let eth0 = names.lookup("eth0").unwrap();
        assert!(alloc.is_owned_by("c1", eth0) && !alloc.is_owned_by("c2", eth0));
        assert!(alloc.is_for_pod_packed(names.lookup("ns").unwrap(), &packed::pack("p"), eth0));
        assert_eq!(alloc.owner(&names).to_string(), "c1/eth0");
    }

    #[test]
    fn a_record_is_small_and_keeps_every_shape_of_attachment() {
        assert_eq!(std::mem::size_of::<Allocation>(), 48);
        let mut names = Interner::default();
        let cid = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let full = Attachment {
            owner: Owner::new(cid, "net1"),
            pod: Some(PodRef { namespace: "".into(), name: "podman-pod".into() }),
            pod_uid: Some("6f1c2a9e-4b7d-4c3e-a1f0-9d8e7c6b5a43".into()),
            node: None,
            cni_network: "net".into(),
        };
        let bare = Attachment::new(Owner::new("ABC", "eth0"), "net");
        let uid_only = Attachment { pod_uid: Some("u".into()), ..bare.clone() };
        for att in [&full, &bare, &uid_only] {
            let alloc = Allocation::new(att, 1, false, &mut names);
            assert_eq!(alloc.attachment(&names), *att);
            let (c, p, u) = alloc.packed_parts();
            let rebuilt = Allocation::from_parts(
                c,
                alloc.ifname,
                p.map(|p| (alloc.pod_packed().unwrap().0, p)),
                u,
                alloc.node,
                alloc.cni_network,
                1,
                false,
            );
            assert_eq!(rebuilt, alloc);
        }
        let full = Allocation::new(&full, 1, false, &mut names);
        assert!(full.has_namespaceless_pod(&names));
        assert!(full.is_owned_by(cid, names.lookup("net1").unwrap()));
        assert!(!full.is_owned_by(&cid.to_uppercase(), names.lookup("net1").unwrap()));
    }
}
