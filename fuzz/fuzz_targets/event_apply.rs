//! Raft log payloads, decoded and applied: postcard-encoded `Event`s one after another (first byte
//! even) or one log entry payload as `raft_store::entry_codec` reads it (first byte odd; a bare
//! postcard `Batch` is also tried), applied to a small state. Decoding never panics, a decoded
//! payload encodes back to bytes that decode to the same payload in the same format;
//! applying keeps every invariant (see `whereabouts_fuzz::check_state`), a failed event changes
//! nothing, and a follower restored from a snapshot taken half-way answers the rest of the log
//! exactly as the original.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ipam::{Event, Limits, State};
use raft_store::entry_codec;
use raft_store::types::Batch;
use whereabouts_fuzz::{apply_checked, observable, snapshot_round_trip};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else { return };
    let mut events = Vec::new();
    if mode % 2 == 0 {
        while let Ok((event, tail)) = postcard::take_from_bytes::<Event>(rest) {
            events.push(event);
            rest = tail;
            if events.len() >= 64 {
                break;
            }
        }
    } else if let Ok(payload) = entry_codec::decode_payload(rest, || "fuzz".into()) {
        let bytes = entry_codec::encode_payload(&payload, || "fuzz".into()).expect("a decoded payload encodes");
        let again = entry_codec::decode_payload(&bytes, || "fuzz".into()).expect("an encoded payload decodes");
        assert_eq!(again, payload, "the codec round trip changed the payload");
        assert_eq!(entry_codec::payload_format(&again), entry_codec::payload_format(&payload));
        if let openraft::EntryPayload::Normal(batch) = payload {
            events = batch.events;
            events.truncate(64);
        }
    } else if let Ok(batch) = postcard::from_bytes::<Batch>(rest) {
        events = batch.events;
        events.truncate(64);
    }
    let limits = Limits { request_cache: usize::from(mode >> 1) % 5, history: usize::from(mode >> 4) };
    let mut state = State::new(limits);
    let half = events.len() / 2;
    for event in &events[..half] {
        apply_checked(&mut state, event);
    }
    let mut restored = snapshot_round_trip(&state);
    for event in &events[half..] {
        let reply = apply_checked(&mut state, event);
        assert_eq!(apply_checked(&mut restored, event), reply, "a restored follower answered differently");
    }
    assert_eq!(observable(&restored), observable(&state));
    snapshot_round_trip(&state);
});
