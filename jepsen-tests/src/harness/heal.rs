//! The one heal of a run: it ends every fault the nemesis may have left — resumes paused nodes,
//! removes every nftables rule, puts every wall clock back on the real time, makes every disk
//! fast again, restarts members that are not running (except a wiped node parked until its
//! repair) — and records it. Fault
//! episodes, the final heal under load and the final phase all call [`heal`]; only how it is
//! recorded differs ([`HealMoment`]).

use serde_json::json;

use super::run_state::RunState;
use super::testbed::Testbed;
use crate::history::EventType;

/// When a heal happens. It decides how the heal is recorded, never what it heals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealMoment {
    /// The end of a fault episode: recorded as `heal`.
    Episode,
    /// The last heal, while the clients still run (the checker measures how fast service comes
    /// back): recorded as `heal` with `"final": true`.
    Final,
    /// After the clients stopped, before the final reads: normally a no-op, so no `heal` is
    /// recorded (the liveness check measures recovery after the last one under load).
    BeforeFinalReads,
}

/// Heals everything (see the module doc) and records it: `heal` as [`HealMoment`] says (with
/// `clocks` and `slow_disks` naming the nodes whose clock or disk it reset, when any), then
/// `restart` for the members it restarted, if any; its `exited` lists those the harness had not
/// killed (their process ended by itself: a crash the node's log explains).
pub fn heal(tb: &mut Testbed, st: &RunState, moment: HealMoment) -> anyhow::Result<()> {
    let value = match moment {
        HealMoment::Episode => Some(json!({})),
        HealMoment::Final => Some(json!({"final": true})),
        HealMoment::BeforeFinalReads => None,
    };
    if let Some(v) = &value {
        st.note(EventType::Invoke, "heal", v.clone())?;
    }
    tb.nodes.resume_all()?;
    tb.lab.clear_faults()?;
    let clocks = match &mut tb.clocks {
        Some(c) => c.reset_all()?,
        None => Vec::new(),
    };
    let slow_disks = match &mut tb.disks {
        Some(d) => d.clear_delays()?,
        None => Vec::new(),
    };
    let mut restarted = Vec::new();
    let mut exited = Vec::new();
    for id in tb.members() {
        if !tb.nodes.is_running(id) && !tb.parked.contains(&id) {
            if !tb.down.contains(&id) {
                exited.push(id);
            }
            tb.restart(id, None)?;
            restarted.push(id);
        }
    }
    if let Some(mut v) = value {
        if !clocks.is_empty() {
            v["clocks"] = json!(clocks);
        }
        if !slow_disks.is_empty() {
            v["slow_disks"] = json!(slow_disks);
        }
        st.note(EventType::Ok, "heal", v)?;
    }
    if !restarted.is_empty() {
        st.note(EventType::Invoke, "restart", json!({"nodes": restarted}))?;
        st.note(EventType::Ok, "restart", json!({"nodes": restarted, "exited": exited}))?;
    }
    Ok(())
}
