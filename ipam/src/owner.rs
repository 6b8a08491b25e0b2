//! Who holds an address. A request describes its [`Attachment`] (container, interface, pod,
//! node, CNI network); a pool keeps it as a compact [`Allocation`] whose repeated strings (ifnames,
//! namespaces, node and network names) are interned [`Sym`]bols.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

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

/// One held address, as a pool stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// Container id of the owner.
    pub container_id: Box<str>,
    /// Interface name of the owner.
    pub ifname: Sym,
    /// Pod namespace and name, when known.
    pub pod: Option<(Sym, Box<str>)>,
    /// Pod UID, when known.
    pub pod_uid: Option<Box<str>>,
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
}

impl Allocation {
    /// Builds the record for `a`, interning its repeated strings. `overlap_reserved`: see the field.
    pub fn new(a: &Attachment, since_ms: u64, overlap_reserved: bool, names: &mut Interner) -> Allocation {
        Allocation {
            container_id: a.owner.container_id.as_str().into(),
            ifname: names.intern(&a.owner.ifname),
            pod: a.pod.as_ref().map(|p| (names.intern(&p.namespace), p.name.as_str().into())),
            pod_uid: a.pod_uid.as_deref().map(Into::into),
            node: a.node.as_deref().map(|n| names.intern(n)),
            cni_network: names.intern(&a.cni_network),
            since_ms,
            overlap_reserved,
        }
    }

    /// True when this allocation belongs to `container_id` + `ifname`.
    pub fn is_owned_by(&self, container_id: &str, ifname: Sym) -> bool {
        self.ifname == ifname && &*self.container_id == container_id
    }

    /// True when the pod of this allocation has no namespace (podman sends `K8S_POD_NAME` only):
    /// such a pod name is unique on its host at most, so it never identifies an attachment.
    pub fn has_namespaceless_pod(&self, names: &Interner) -> bool {
        self.pod.as_ref().is_some_and(|(ns, _)| names.name(*ns).is_empty())
    }

    /// True when this allocation belongs to pod `namespace/name` on `ifname`.
    pub fn is_for_pod(&self, namespace: Sym, name: &str, ifname: Sym) -> bool {
        self.ifname == ifname && matches!(&self.pod, Some((ns, n)) if *ns == namespace && &**n == name)
    }

    /// The owner in its public form.
    pub fn owner(&self, names: &Interner) -> Owner {
        Owner { container_id: self.container_id.to_string(), ifname: names.name(self.ifname).to_string() }
    }

    /// The attachment in its public form.
    pub fn attachment(&self, names: &Interner) -> Attachment {
        Attachment {
            owner: self.owner(names),
            pod: self.pod.as_ref().map(|(ns, n)| PodRef { namespace: names.name(*ns).into(), name: n.to_string() }),
            pod_uid: self.pod_uid.as_deref().map(Into::into),
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
        assert!(alloc.is_for_pod(names.lookup("ns").unwrap(), "p", eth0));
        assert_eq!(alloc.owner(&names).to_string(), "c1/eth0");
    }
}
