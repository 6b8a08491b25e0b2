//! Membership faults: membership changes under load — add a fresh node as a learner, then
//! promote it and remove another voter (a replacement), or remove the learner again. The harness
//! re-reads the membership from the leader after every step.

use std::time::Duration;

use serde_json::json;

use crate::harness::admin::{add_learner, promote, refresh, remove_node};
use crate::harness::lab::{node_addr, MAX_NODE_ID};
use crate::harness::run_state::RunState;
use crate::harness::testbed::Testbed;
use crate::history::EventType;
use crate::rng::Rng;

/// Takes a member out of the cluster for good: removes it, kills it, deletes its namespace.
async fn remove(tb: &mut Testbed, st: &RunState, id: u64) -> anyhow::Result<()> {
    st.note(EventType::Invoke, "remove", json!({"node": id}))?;
    let result = remove_node(tb, st, id).await;
    refresh(tb, st).await;
    let gone = !tb.voters.contains(&id) && !tb.learners.contains(&id);
    let kind = if gone { EventType::Ok } else { EventType::Info };
    st.note(kind, "remove", json!({"node": id, "result": result, "voters": tb.voters}))?;
    if gone {
        tb.forget(id);
    }
    Ok(())
}

/// Adds a fresh node as a learner; then either promotes it and removes another voter (a
/// replacement, 70 %), or removes the learner again. Holds nothing: each step takes as long as
/// the cluster needs.
pub async fn change(tb: &mut Testbed, st: &RunState, _hold: Duration, rng: &mut Rng) -> anyhow::Result<()> {
    let id = tb.next_id;
    if id > MAX_NODE_ID {
        return Ok(());
    }
    tb.next_id += 1;
    let replace = rng.chance(70);
    tb.join(id)?;
    let addr = node_addr(id);
    st.note(EventType::Invoke, "add-learner", json!({"node": id, "addr": addr}))?;
    let result = add_learner(tb, st, id, &addr).await;
    refresh(tb, st).await;
    let joined = tb.learners.contains(&id) || tb.voters.contains(&id);
    st.note(
        if joined { EventType::Ok } else { EventType::Info },
        "add-learner",
        json!({"node": id, "result": result}),
    )?;
    if !joined {
        tb.forget(id);
        return Ok(());
    }
    let lag = tb.caught_up(st, id, Duration::from_secs(20)).await;
    if !replace {
        return remove(tb, st, id).await;
    }
    st.note(EventType::Invoke, "promote", json!({"node": id, "caught_up_ms": lag.map(|d| d.as_millis() as u64)}))?;
    let result = promote(tb, st, id).await;
    refresh(tb, st).await;
    let promoted = tb.voters.contains(&id);
    st.note(if promoted { EventType::Ok } else { EventType::Info }, "promote", json!({"node": id, "result": result}))?;
    let others: Vec<u64> = tb.voters.iter().copied().filter(|v| *v != id).collect();
    let old = if promoted { rng.pick(&others).copied() } else { Some(id) };
    match old {
        Some(old) => remove(tb, st, old).await,
        None => Ok(()),
    }
}
