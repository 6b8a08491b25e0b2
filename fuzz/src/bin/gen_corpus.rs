//! Writes the seed corpora of the fuzz targets into `fuzz/corpus/<target>/`: the whereabouts
//! configurations of docs/configuration.md, CNI invocations, encoded events and batches, encoded
//! states (snapshots) and a backup file. Run from anywhere:
//! `cargo run --manifest-path fuzz/Cargo.toml --bin gen-corpus`.

use std::path::{Path, PathBuf};

use ipam::{apply, snapshot, Attachment, Command, Event, Limits, Owner, Range, RangeSpec, State};
use raft_store::{encode_backup, BackupHeader};
use raft_store::types::Batch;

/// Configurations from docs/configuration.md (endpoints added where the docs put them in the
/// flat file), plus a configuration list.
const CONFIGS: &[&str] = &[
    r#"{"cniVersion":"0.3.0","name":"whereaboutsexample","type":"macvlan","master":"eth0","mode":"bridge","ipam":{"type":"whereabouts","range":"192.168.2.225/28","exclude":["192.168.2.229/30","192.168.2.236/32"],"endpoints":["whereabouts-0.whereabouts:7000","whereabouts-1.whereabouts:7000"]}}"#,
    r#"{"cniVersion":"0.3.0","name":"whereaboutsexample","type":"macvlan","master":"eth0","mode":"bridge","ipam":{"type":"whereabouts","range":"2001::0/116","gateway":"2001::f:1","endpoints":["n0:7000"]}}"#,
    r#"{"cniVersion":"0.3.0","name":"whereaboutsexample","type":"macvlan","ipam":{"type":"whereabouts","range":"abcd::1/64","ipRanges":[{"range":"192.168.10.1/24"},{"range":"176.168.10.1/16"}],"endpoints":["n0:7000"]}}"#,
    r#"{"cniVersion":"1.0.0","name":"dual","type":"macvlan","ipam":{"type":"whereabouts","ipRanges":[{"range":"192.168.10.1/24","range_start":"192.168.10.5","range_end":"192.168.10.50","exclude":["192.168.10.8/30"]},{"range":"abcd::1/64"}],"endpoints":["n0:7000"]}}"#,
    r#"{"cniVersion":"0.4.0","name":"net","type":"macvlan","ipam":{"type":"whereabouts","range":"192.168.2.225-192.168.2.230/28","endpoints":["n0:7000"]}}"#,
    r#"{"cniVersion":"1.1.0","name":"net","type":"macvlan","ipam":{"type":"whereabouts","range":"10.10.0.0/16","network_name":"tenant-a","enable_overlapping_ranges":true,"endpoints":["n0:7000"],"timeout_seconds":20}}"#,
    r#"{"cniVersion":"0.3.1","name":"mynet","type":"ipvlan","master":"foo0","ipam":{"type":"whereabouts","range":"192.168.1.0/24","routes":[{"dst":"0.0.0.0/0"},{"dst":"192.168.0.0/16","gw":"10.10.5.1"}],"dns":{"nameservers":["8.8.8.8"],"domain":"example.com","search":["example.com"]},"addresses":[{"address":"10.10.0.1/24","gateway":"10.10.0.254"}],"endpoints":["n0:7000"]}}"#,
    r#"{"cniVersion":"1.0.0","name":"net","type":"macvlan","runtimeConfig":{"ips":["192.168.2.230"]},"args":{"cni":{"ips":["192.168.2.231/28"]}},"ipam":{"type":"whereabouts","range":"192.168.2.225/28","log_level":"debug","endpoints":["n0:7000"],"tls_ca":"/ca.pem","tls_cert":"/c.pem","tls_key":"/k.pem","kubernetes":{"kubeconfig":"/x"},"etcd_host":"h","bogus_key":1}}"#,
    r#"{"cniVersion":"1.1.0","cniVersions":["1.0.0","1.1.0"],"name":"list","plugins":[{"type":"macvlan","ipam":{"type":"whereabouts","range":"10.1.0.0/24","endpoints":["n0:7000"]}},{"type":"tuning"}],"cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]}"#,
];
/// The flat file of docs/configuration.md.
const FLAT: &str =
    r#"{"endpoints":["whereabouts-0.whereabouts.kube-system:7000"],"timeout_seconds":20,"log_level":"verbose"}"#;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("create corpus directory");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

fn range(r: &str, start: Option<&str>, end: Option<&str>, exclude: &[&str]) -> Range {
    let spec = RangeSpec {
        range: r.into(),
        range_start: start.map(Into::into),
        range_end: end.map(Into::into),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
    };
    Range::parse(&spec, "range").expect("seed ranges are valid").0
}

fn who(container: &str, pod: &str, node: &str) -> Attachment {
    Attachment::new(Owner::new(container, "eth0"), "net").with_pod("ns", pod).with_node(node)
}

fn allocate(network: &str, ranges: Vec<Range>, statics: &[&str], att: Attachment) -> Command {
    Command::Allocate(ipam::Allocate {
        network: network.into(),
        ranges,
        statics: statics.iter().map(|s| s.parse().expect("seed static")).collect(),
        overlapping: true,
        attachment: att,
    })
}

/// A small log touching every command: dynamic, bounded, dual-stack, overlapping, static, repeated
/// request ids, releases, a guarded release, a GC.
fn events() -> Vec<Event> {
    let small = range("10.0.0.0/29", None, None, &[]);
    let wide = range("10.0.0.0/24", Some("10.0.0.2"), Some("10.0.0.20"), &["10.0.0.4/30"]);
    let v6 = range("fd00::/120", None, None, &["fd00::5"]);
    let cmds = vec![
        allocate("", vec![small.clone()], &[], who("aa01", "p0", "n0")),
        allocate("", vec![small.clone()], &[], who("aa02", "p1", "n0")),
        allocate("", vec![wide.clone(), v6.clone()], &[], who("aa03", "p2", "n1")),
        allocate("", vec![wide], &["10.0.0.9/24"], who("aa04", "p3", "n1")),
        allocate("tenant", vec![small.clone()], &[], who("aa01", "p0", "n0")),
        allocate("", vec![], &["192.168.7.7/32"], who("aa05", "p4", "n0")),
        Command::ReleaseIp(ipam::ReleaseIp {
            network: String::new(),
            ip: "10.0.0.1".parse().expect("ip"),
            expected: Owner::new("aa09", "eth0"),
        }),
        Command::Release(ipam::Release {
            network: String::new(),
            owner: Owner::new("aa02", "eth0"),
            only_node: Some("n0".into()),
        }),
        Command::Gc(ipam::Gc {
            network: String::new(),
            cni_network: "net".into(),
            node: "n1".into(),
            keep: vec![Owner::new("aa03", "eth0")],
        }),
        allocate("", vec![small], &[], who("aa06", "p5", "n0")),
    ];
    cmds.into_iter()
        .enumerate()
        .map(|(i, c)| Event::new(c, 1_700_000_000_000 + i as u64).with_request_id(format!("req-{}", i % 7)))
        .collect()
}

fn state_after(events: &[Event]) -> State {
    let mut state = State::new(Limits { request_cache: 4, history: 6 });
    for e in events {
        let _ = apply(&mut state, e);
    }
    state
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");

    let dir = root.join("config_load");
    for (i, c) in CONFIGS.iter().enumerate() {
        write(&dir, &format!("doc-{i}"), c.as_bytes());
    }
    write(
        &dir,
        "flat-file",
        [CONFIGS[2].replace(r#","endpoints":["n0:7000"]"#, ""), FLAT.to_string()].join("\0").as_bytes(),
    );

    let dir = root.join("plugin_run");
    let invocations: [(u8, &str, &str); 6] = [
        (0, "CNI_ARGS=K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;IP=192.168.2.230", CONFIGS[0]),
        (1, "", CONFIGS[3]),
        (
            2,
            "",
            r#"{"cniVersion":"1.0.0","name":"net","type":"macvlan","ipam":{"type":"whereabouts","range":"10.1.0.0/24","endpoints":["n0:7000"]},"prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.1.0.1/24"}]}}"#,
        ),
        (3, "NODE_NAME=n9", CONFIGS[8]),
        (4, "", CONFIGS[5]),
        (5, "", r#"{"cniVersion":"0.4.0"}"#),
    ];
    for (i, (selector, env, stdin)) in invocations.iter().enumerate() {
        let mut bytes = vec![*selector];
        bytes.extend_from_slice(env.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(stdin.as_bytes());
        write(&dir, &format!("invocation-{i}"), &bytes);
    }
    write(
        &dir,
        "addresses-only",
        &[&[0u8, 0][..], CONFIGS[6].replace(r#""range":"192.168.1.0/24","#, "").as_bytes()].concat(),
    );

    let events = events();
    let dir = root.join("event_apply");
    let mut stream = vec![0x14u8];
    for e in &events {
        stream.extend(postcard::to_stdvec(e).expect("encode event"));
    }
    write(&dir, "event-stream", &stream);
    let mut batch = vec![0x15u8];
    batch.extend(postcard::to_stdvec(&Batch::new(events.clone(), ipam::FORMAT_MIN)).expect("encode batch"));
    write(&dir, "batch", &batch);
    for (i, e) in events.iter().enumerate().take(4) {
        write(&dir, &format!("event-{i}"), &[&[0x22u8][..], &postcard::to_stdvec(e).expect("encode")].concat());
    }

    let dir = root.join("snapshot_decode");
    write(&dir, "empty-state", &snapshot::encode(&State::default()));
    let full = state_after(&events);
    let data = snapshot::encode(&full);
    write(&dir, "state-after-log", &data);
    write(&dir, "state-half-log", &snapshot::encode(&state_after(&events[..5])));
    let header = BackupHeader {
        format: String::new(),
        version: 0,
        cluster: "whereabouts".into(),
        applied_index: 12,
        applied_term: 2,
        taken_at_ms: 1_700_000_000_000,
        allocations: full.allocation_count() as u64,
        data_len: 0,
        crc32: 0,
    };
    write(&dir, "backup", &encode_backup(header, &data));

    // Structured input: any bytes are a valid (possibly short) list of operations.
    let dir = root.join("event_ops");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..4 {
        let bytes: Vec<u8> = (0..96 * (i + 1))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        write(&dir, &format!("random-{i}"), &bytes);
    }
    println!("seed corpora written under {}", root.display());
}
