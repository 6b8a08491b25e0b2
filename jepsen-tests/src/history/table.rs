//! The `allocations` of a final read: network → ip → owner.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Owners holding one address in one network: written as a string when one (the normal case),
/// as an array when several (possible only with `overlapping: false` and overlapping CIDRs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Holders(pub BTreeSet<String>);

impl Holders {
    /// Whether `owner` is among the holders.
    pub fn contains(&self, owner: &str) -> bool {
        self.0.contains(owner)
    }

    /// Number of distinct holders.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nobody holds the address (never produced by a read).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The holders in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl std::fmt::Display for Holders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v: Vec<&str> = self.iter().collect();
        f.write_str(&v.join("+"))
    }
}

impl Serialize for Holders {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.first() {
            Some(one) if self.0.len() == 1 => s.serialize_str(one),
            _ => self.0.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Holders {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            One(String),
            Many(BTreeSet<String>),
        }
        Ok(match Wire::deserialize(d)? {
            Wire::One(o) => Holders(BTreeSet::from([o])),
            Wire::Many(v) => Holders(v),
        })
    }
}

/// Every allocation a node holds: `{"<network>": {"<ip>": "<owner>"}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FinalTable(pub BTreeMap<String, BTreeMap<IpAddr, Holders>>);

impl FinalTable {
    /// Records that `owner` holds `ip` in `network`.
    pub fn insert(&mut self, network: &str, ip: IpAddr, owner: &str) {
        self.0.entry(network.to_string()).or_default().entry(ip).or_default().0.insert(owner.to_string());
    }

    /// Holders of `ip` in `network`, if any.
    pub fn holders(&self, network: &str, ip: IpAddr) -> Option<&Holders> {
        self.0.get(network).and_then(|m| m.get(&ip))
    }

    /// The addresses of one network (empty when the network is absent).
    pub fn network(&self, network: &str) -> impl Iterator<Item = (&IpAddr, &Holders)> {
        self.0.get(network).into_iter().flatten()
    }

    /// Network names present in the table.
    pub fn networks(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Every (network, ip, holders) triple in order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &IpAddr, &Holders)> {
        self.0.iter().flat_map(|(n, m)| m.iter().map(move |(ip, h)| (n.as_str(), ip, h)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_owner_is_a_string_and_several_an_array() {
        let mut t = FinalTable::default();
        t.insert("n1", "10.1.0.1".parse().unwrap(), "c1/eth0");
        t.insert("n1", "10.1.0.2".parse().unwrap(), "c2/eth0");
        t.insert("n1", "10.1.0.2".parse().unwrap(), "c3/eth0");
        let s = serde_json::to_string(&t).unwrap();
        assert_eq!(s, r#"{"n1":{"10.1.0.1":"c1/eth0","10.1.0.2":["c2/eth0","c3/eth0"]}}"#);
        let back: FinalTable = serde_json::from_str(&s).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn ipv6_keys_parse() {
        let t: FinalTable = serde_json::from_str(r#"{"n":{"fd00::1":"a/eth0"}}"#).unwrap();
        let h = t.holders("n", "fd00::1".parse().unwrap()).unwrap();
        assert!(h.contains("a/eth0"));
        assert_eq!(t.network("missing").count(), 0);
    }
}
