use ipam::{Allocate, Attachment, Command, Event, Owner, Range, RangeSpec, Release, SetClusterVersion, State};
use openraft::{CommittedLeaderId, LogId};
use proptest::prelude::*;

use super::*;

fn range(cidr: &str) -> Range {
    Range::parse(&RangeSpec { range: cidr.into(), ..Default::default() }, "ipam").unwrap().0
}

fn add(cid: &str, pool: u8) -> Event {
    let attachment = Attachment::new(Owner::new(cid, "eth0"), "cni-net");
    let ranges = vec![range(&format!("10.{pool}.0.0/28"))];
    let cmd = Allocate { network: "n".into(), ranges, statics: vec![], overlapping: true, attachment };
    Event::new(Command::Allocate(cmd), 1_000).with_request_id(format!("r-{cid}"))
}

fn del(cid: &str) -> Event {
    let cmd = Release { network: "n".into(), owner: Owner::new(cid, "eth0"), only_node: None };
    Event::new(Command::Release(cmd), 2_000)
}

fn set_version(version: u32) -> Event {
    Event::new(Command::SetClusterVersion(SetClusterVersion { version }), 3_000)
}

fn entry(index: u64, batch: Batch) -> typ::Entry {
    typ::Entry { log_id: LogId::new(CommittedLeaderId::new(3, 1), index), payload: EntryPayload::Normal(batch) }
}

/// Format 1 is byte for byte what release 0.1.0 stored and sent: openraft's whole `Entry` in
/// postcard on disk, its payload in postcard on the wire. Pinned, so that no change of ours
/// alters it silently.
#[test]
fn format_1_is_the_bytes_release_0_1_0_wrote() {
    let e = entry(7, Batch { format: 1, events: vec![del("c1")] });
    let stored = encode_entry(&e).unwrap();
    assert_eq!(stored, postcard::to_stdvec(&e).unwrap(), "disk: a whole Entry in postcard");
    let wire = encode_payload(&e.payload, || "e".into()).unwrap();
    assert_eq!(wire, postcard::to_stdvec(&e.payload).unwrap(), "wire: the payload in postcard");
    let pinned: &[u8] = &[
        3, 1, 7, // log id: term 3, node 1, index 7
        1, 1, // Normal, one event
        0, 208, 15, // no request id, time 2,000
        1, 1, b'n', 2, b'c', b'1', 4, b'e', b't', b'h', b'0', 0, // Release { "n", c1/eth0, None }
    ];
    assert_eq!(stored, pinned);
    assert_eq!(decode_entry(pinned).unwrap(), e);
}

#[test]
fn format_2_is_marked_round_trips_and_keeps_its_format() {
    let e = entry(9, Batch::new(vec![add("c1", 1), set_version(2)], 1));
    assert_eq!(payload_format(&e.payload), 2, "a batch with a version change needs format 2");
    let stored = encode_entry(&e).unwrap();
    assert_eq!(peek_entry(&stored).unwrap(), (e.log_id, 2));
    let back = decode_entry(&stored).unwrap();
    assert_eq!(back, e);
    assert_eq!(encode_entry(&back).unwrap(), stored, "a follower stores what it received");

    // A format-2 batch of commands format 1 knows stays format 2 (the cluster version chose it).
    let plain = entry(10, Batch::new(vec![del("c2")], 2));
    assert_eq!(peek_entry(&encode_entry(&plain).unwrap()).unwrap().1, 2);
}

/// A node that reads only format 1 (release 0.1.0 decodes a plain postcard payload) refuses a
/// format-2 entry instead of misreading it.
#[test]
fn a_format_1_reader_refuses_format_2_entries() {
    let payload = EntryPayload::Normal(Batch::new(vec![del("c1")], 2));
    let bytes = encode_payload(&payload, || "e".into()).unwrap();
    assert!(postcard::from_bytes::<EntryPayload<TypeConfig>>(&bytes).is_err());
    let e = entry(4, Batch::new(vec![del("c1")], 2));
    assert!(postcard::from_bytes::<typ::Entry>(&encode_entry(&e).unwrap()).is_err());
}

#[test]
fn unknown_formats_are_refused_naming_both_versions() {
    let mut bytes = vec![ipam::format::ENTRY_MARKER, 3];
    bytes.extend(postcard::to_stdvec(&EntryPayload::<TypeConfig>::Blank).unwrap());
    let err = decode_payload(&bytes, || "log entry 12".into()).unwrap_err().to_string();
    assert!(err.contains("log entry 12") && err.contains("format version 3") && err.contains("1 to 2"), "{err}");
    // A marker claiming format 1 is not a valid entry either.
    let err = decode_payload(&[ipam::format::ENTRY_MARKER, 1, 0], || "e".into()).unwrap_err();
    assert!(matches!(err, CodecError::Unsupported(_)), "{err}");
    let batch = Batch { format: 3, events: vec![del("c1")] };
    assert!(matches!(encode_payload(&EntryPayload::Normal(batch), || "e".into()), Err(CodecError::Unsupported(_))));
}

#[test]
fn a_command_newer_than_its_batch_format_is_never_written_or_read() {
    let batch = Batch { format: 1, events: vec![set_version(2)] };
    let err = encode_payload(&EntryPayload::Normal(batch.clone()), || "log entry 5".into()).unwrap_err();
    assert!(err.to_string().contains("set_cluster_version event cannot be written in format 1"), "{err}");
    // Bytes a buggy writer might produce: format 1 carrying it.
    let bytes = postcard::to_stdvec(&EntryPayload::<TypeConfig>::Normal(batch)).unwrap();
    assert!(matches!(decode_payload(&bytes, || "e".into()), Err(CodecError::NotInFormat { needs: 2, .. })));
}

#[test]
fn openraft_entries_are_always_format_1() {
    for payload in [EntryPayload::<TypeConfig>::Blank, EntryPayload::Membership(Default::default())] {
        let bytes = encode_payload(&payload, || "e".into()).unwrap();
        assert_eq!(bytes, postcard::to_stdvec(&payload).unwrap());
        assert_eq!(peek_format(&bytes).unwrap(), 1);
    }
}

fn event_strategy() -> impl Strategy<Value = Event> {
    prop_oneof![
        (0u8..6, 0u8..3).prop_map(|(c, p)| add(&format!("c{c}"), p)),
        (0u8..6).prop_map(|c| del(&format!("c{c}"))),
    ]
}

proptest! {
    /// Any batch of format N decodes under format N+1 to the same events, and applying the
    /// decoded log gives the same state whichever format carried it.
    #[test]
    fn a_log_reads_the_same_in_every_format(batches in prop::collection::vec(prop::collection::vec(event_strategy(), 1..6), 1..12)) {
        let mut in_v1 = State::default();
        let mut in_v2 = State::default();
        for (i, events) in batches.into_iter().enumerate() {
            let v1 = entry(i as u64 + 1, Batch::new(events.clone(), 1));
            let v2 = entry(i as u64 + 1, Batch::new(events.clone(), 2));
            let back1 = decode_entry(&encode_entry(&v1).unwrap()).unwrap();
            let back2 = decode_entry(&encode_entry(&v2).unwrap()).unwrap();
            let (EntryPayload::Normal(b1), EntryPayload::Normal(b2)) = (back1.payload, back2.payload) else {
                panic!("normal entries")
            };
            prop_assert_eq!((b1.format, b2.format), (1, 2));
            prop_assert_eq!(&b1.events, &events);
            prop_assert_eq!(&b2.events, &events);
            let r1: Vec<_> = b1.events.iter().map(|e| ipam::apply(&mut in_v1, e)).collect();
            let r2: Vec<_> = b2.events.iter().map(|e| ipam::apply(&mut in_v2, e)).collect();
            prop_assert_eq!(r1, r2);
        }
        prop_assert_eq!(in_v1.allocations(None), in_v2.allocations(None));
        prop_assert_eq!(ipam::snapshot::encode(&in_v1), ipam::snapshot::encode(&in_v2));
    }
}
