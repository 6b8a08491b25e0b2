//! The plugin's handling of one invocation (`plugin::run`): environment and stdin, with a client
//! factory that never connects. Input: a selector byte for `CNI_COMMAND`, then `KEY=VALUE` lines
//! that override the environment, a NUL byte, and stdin. The plugin must exit 0 or 1, print a
//! well-formed CNI error on failure, and never report an internal error (999) or a code that
//! needs an answer from the cluster.

#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use plugin::env::SharedWriter;
use plugin::Env;
use whereabouts_fuzz::{contain_stdin, Capture, NoNetwork};

const COMMANDS: [Option<&str>; 8] =
    [Some("ADD"), Some("DEL"), Some("CHECK"), Some("GC"), Some("STATUS"), Some("VERSION"), None, Some("add")];
/// Codes possible without a reachable cluster (docs/configuration.md, "Error codes").
const POSSIBLE: [u64; 7] = [1, 4, 5, 6, 7, 11, 50];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let (env_block, stdin) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&[][..], rest),
    };
    let mut vars: HashMap<String, String> = [
        ("CNI_CONTAINERID", "c1"),
        ("CNI_NETNS", "/var/run/netns/x"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin"),
        ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_UID=u"),
        ("NODE_NAME", "n1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(command) = COMMANDS[usize::from(selector) % COMMANDS.len()] {
        vars.insert("CNI_COMMAND".into(), command.into());
    }
    for line in String::from_utf8_lossy(env_block).lines() {
        if let Some((k, v)) = line.split_once('=') {
            vars.insert(k.to_string(), v.to_string());
        }
    }
    let stdin = contain_stdin(stdin).unwrap_or_else(|| stdin.to_vec());
    let (out, err) = (Capture::default(), Capture::default());
    let env = Env {
        vars,
        stdin: Box::new(std::io::Cursor::new(stdin)),
        stdin_is_terminal: false,
        stdout: SharedWriter::new(out.clone()),
        stderr: SharedWriter::new(err),
        files: Box::new(plugin::config::NoFiles),
        hostname: Some("fuzz-host".into()),
        // A DEL that cannot reach the cluster (there is none here) waits in this directory.
        state_dir: std::env::temp_dir().join("whereabouts-fuzz-state"),
    };
    let status = plugin::run(env, &NoNetwork);
    let stdout = out.bytes();
    match status {
        0 => {
            if !stdout.is_empty() {
                serde_json::from_slice::<serde_json::Value>(&stdout).expect("a result is JSON");
            }
        }
        1 => {
            let v: serde_json::Value = serde_json::from_slice(&stdout).expect("a CNI error is JSON");
            let code = v["code"].as_u64().expect("a CNI error has a code");
            assert!(POSSIBLE.contains(&code), "code {code} without a cluster: {v}");
            assert!(v["msg"].as_str().is_some_and(|m| !m.is_empty()), "no message: {v}");
            assert!(v["cniVersion"].is_string(), "no cniVersion: {v}");
        }
        other => panic!("exit status {other}"),
    }
});
