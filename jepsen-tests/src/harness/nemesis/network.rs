//! Network faults, as nftables rules in the nodes' namespaces: partitions (the leader alone,
//! majority/minority, or a bridge) and random packet loss on every node. Both end with the heal.

use std::time::Duration;

use serde_json::json;

use crate::harness::heal::{heal, HealMoment};
use crate::harness::run_state::RunState;
use crate::harness::testbed::Testbed;
use crate::history::EventType;
use crate::rng::Rng;

/// Two sides of a partition of `members`: the leader alone, a random minority, or (`bridge`)
/// two halves that both still reach one bridge node, which is in neither list.
pub fn split(kind: &str, members: &[u64], leader: Option<u64>, rng: &mut Rng) -> (Vec<u64>, Vec<u64>) {
    let mut m = members.to_vec();
    rng.shuffle(&mut m);
    match (kind, leader) {
        ("leader", Some(l)) => (vec![l], m.into_iter().filter(|x| *x != l).collect()),
        ("bridge", _) if m.len() >= 3 => {
            let rest = m.split_off(1);
            let half = rest.len() / 2;
            (rest[..half].to_vec(), rest[half..].to_vec())
        }
        _ => {
            let minority = (m.len().saturating_sub(1) / 2).max(1);
            let majority = m.split_off(minority);
            (m, majority)
        }
    }
}

/// Partitions the members for `hold` (the kind picked at random), then heals.
pub async fn partition(tb: &mut Testbed, st: &RunState, hold: Duration, rng: &mut Rng) -> anyhow::Result<()> {
    let kind = *rng.pick(&["leader", "halves", "bridge"]).expect("non-empty");
    let leader = if kind == "leader" { tb.leader(st, Duration::from_secs(2)).await } else { None };
    let (a, b) = split(kind, &tb.members(), leader, rng);
    st.note(EventType::Invoke, "partition", json!({"kind": kind, "groups": [a, b]}))?;
    tb.lab.partition(&a, &b)?;
    st.note(EventType::Ok, "partition", json!({"kind": kind, "groups": [a, b]}))?;
    tokio::time::sleep(hold).await;
    heal(tb, st, HealMoment::Episode)
}

/// Drops 10–40 % of the incoming packets of every member for `hold`, then heals.
pub async fn drop_packets(tb: &mut Testbed, st: &RunState, hold: Duration, rng: &mut Rng) -> anyhow::Result<()> {
    let percent = rng.between(10, 40) as u8;
    let nodes = tb.members();
    st.note(EventType::Invoke, "drop", json!({"percent": percent, "nodes": nodes}))?;
    for id in &nodes {
        let mut f = tb.lab.faults(*id);
        f.drop_percent = percent;
        tb.lab.set_faults(*id, f)?;
    }
    st.note(EventType::Ok, "drop", json!({"percent": percent, "nodes": nodes}))?;
    tokio::time::sleep(hold).await;
    heal(tb, st, HealMoment::Episode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_are_partitions() {
        let mut rng = Rng::new(5);
        let members = [0, 1, 2, 3, 4];
        let (a, b) = split("leader", &members, Some(3), &mut rng);
        assert_eq!(a, vec![3]);
        assert_eq!(b.len(), 4);
        let (a, b) = split("halves", &members, None, &mut rng);
        assert_eq!((a.len(), b.len()), (2, 3));
        let (a, b) = split("bridge", &members, None, &mut rng);
        assert_eq!((a.len(), b.len()), (2, 2), "one node bridges both sides");
        let (a, b) = split("halves", &[0, 1, 2], None, &mut rng);
        assert_eq!((a.len(), b.len()), (1, 2));
    }
}
