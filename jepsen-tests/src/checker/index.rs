//! Operations grouped by (network, owner): the durability and uniqueness checks only ever
//! compare an operation with operations of the same owner in the same network, and scanning
//! that group instead of the whole history keeps them fast on long runs (hundreds of thousands
//! of operations).

use std::collections::HashMap;

use super::operation::{ClientOp, OpKind};

/// The allocations and releases of each (network, owner), in invoke order.
pub struct ByOwner<'a>(HashMap<&'a str, HashMap<&'a str, Vec<&'a ClientOp>>>);

impl<'a> ByOwner<'a> {
    /// Groups `ops` (kept in their order, which is invoke order).
    pub fn new(ops: &'a [ClientOp]) -> ByOwner<'a> {
        let mut map: HashMap<&str, HashMap<&str, Vec<&ClientOp>>> = HashMap::new();
        for op in ops {
            let (network, owner) = match &op.kind {
                OpKind::Allocate { network, owner, .. }
                | OpKind::Release { network, owner, .. }
                | OpKind::ReleaseIp { network, owner, .. } => (network.as_str(), owner.as_str()),
                OpKind::ReadOwner { .. } | OpKind::FinalRead { .. } => continue,
            };
            map.entry(network).or_default().entry(owner).or_default().push(op);
        }
        ByOwner(map)
    }

    /// The operations of `owner` in `network` (empty when none).
    pub fn get(&self, network: &str, owner: &str) -> &[&'a ClientOp] {
        self.0.get(network).and_then(|m| m.get(owner)).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::pair;
    use crate::history::parse_history;

    #[test]
    fn groups_writes_by_network_and_owner_in_invoke_order() {
        let text = r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"allocate","value":{"request_id":"a","network":"n","owner":"a/eth0","ranges":[{"range":"10.0.0.0/29"}]}}
{"index":1,"time":1,"process":1,"type":"invoke","f":"release","value":{"request_id":"b","network":"n","owner":"b/eth0","ranges":[{"range":"10.0.0.0/29"}]}}
{"index":2,"time":2,"process":2,"type":"invoke","f":"release","value":{"request_id":"c","network":"n","ip":"10.0.0.1","owner":"a/eth0"}}
{"index":3,"time":3,"process":3,"type":"invoke","f":"read","value":{"network":"n","owner":"a/eth0"}}
{"index":4,"time":4,"process":4,"type":"invoke","f":"allocate","value":{"request_id":"d","network":"m","owner":"a/eth0","ranges":[{"range":"10.0.0.0/29"}]}}
"#;
        let ops = pair(&parse_history(text.as_bytes()).unwrap()).unwrap().ops;
        let idx = ByOwner::new(&ops);
        let calls: Vec<u64> = idx.get("n", "a/eth0").iter().map(|o| o.call).collect();
        assert_eq!(calls, vec![0, 2], "reads are not grouped; other networks are apart");
        assert_eq!(idx.get("m", "a/eth0").len(), 1);
        assert!(idx.get("n", "nobody/eth0").is_empty());
    }
}
