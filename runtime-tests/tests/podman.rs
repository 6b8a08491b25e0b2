//! podman 4 with its CNI backend and runc, as a user runs it: a bridge network whose IPAM is
//! `whereabouts`, three containers started at once. podman sends `K8S_POD_NAME=<container name>`
//! with no namespace (issue 17: every ADD used to be refused). Each container must get a distinct
//! address of the range (never the gateway), recorded as pod `/<name>`; after the containers stop
//! (podman's DEL) every address is free again.
//!
//! Needs root and Debian's podman, runc, containernetworking-plugins and busybox-static. Bounded:
//! every podman call has a 90 s timeout.

use std::path::{Path, PathBuf};
use std::process::Command;

use runtime_tests::command::{in_netns, ok, output};
use runtime_tests::host::Host;
use serde_json::json;

const NET: &str = "wbtest";
const RANGE: &str = "10.244.77.0/24";
const GATEWAY: &str = "10.244.77.1";
const IMAGE: &str = "localhost/wb-busybox:1";
const NETWORK_NAME: &str = "podman-e2e";

struct Podman<'h> {
    host: &'h Host,
}

impl Podman<'_> {
    fn dir(&self) -> &Path {
        self.host.dir()
    }

    /// podman with every path pinned under the work directory (flags and environment: conmon's
    /// exit command, which tears the network down, is built from the flags).
    fn cmd(&self, args: &[&str]) -> Command {
        let d = self.dir();
        let mut c = in_netns(&self.host.netns_path(), "podman");
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
            .env("TMPDIR", d.join("tmp"));
        c.arg("--root").arg(d.join("root")).arg("--runroot").arg(d.join("runroot"));
        c.arg("--tmpdir").arg(d.join("libpod-tmp")).args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"]);
        c.args(["--events-backend", "file", "--network-config-dir"]).arg(d.join("net.d"));
        c.args(args);
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        ok(&format!("podman {}", args.join(" ")), &mut self.cmd(args))
    }

    fn write_configs(&self) {
        let d = self.dir();
        for sub in ["root", "runroot", "libpod-tmp", "tmp", "net.d", "cni-bin"] {
            std::fs::create_dir_all(d.join(sub)).expect("podman dir");
        }
        std::fs::copy(runtime_tests::binaries::plugin(), d.join("cni-bin/whereabouts")).expect("install the plugin");
        let conf = format!(
            r#"[containers]
log_driver = "k8s-file"
# root here may lack CAP_SYS_RESOURCE: ask runc for limits every caller already has
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[network]
network_backend = "cni"
cni_plugin_dirs = ["{bin}", "/usr/lib/cni"]
network_config_dir = "{netd}"
default_network = "{NET}"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{events}"
runtime = "runc"
tmp_dir = "{tmp}"
volume_path = "{volumes}"
"#,
            bin = d.join("cni-bin").display(),
            netd = d.join("net.d").display(),
            events = d.join("events.log").display(),
            tmp = d.join("libpod-tmp").display(),
            volumes = d.join("root/volumes").display(),
        );
        std::fs::write(d.join("containers.conf"), conf).expect("containers.conf");
        let storage = format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            d.join("root").display(),
            d.join("runroot").display()
        );
        std::fs::write(d.join("storage.conf"), storage).expect("storage.conf");
        std::fs::write(
            d.join("registries.conf"),
            "unqualified-search-registries = []\nshort-name-mode = \"disabled\"\n",
        )
        .expect("registries.conf");
        let conflist = json!({
            "cniVersion": "1.0.0",
            "name": NET,
            "plugins": [{
                "type": "bridge", "bridge": "wbpod0", "isGateway": true, "hairpinMode": true,
                "ipam": self.host.ipam(RANGE, GATEWAY, NETWORK_NAME),
            }],
        });
        std::fs::write(d.join(format!("net.d/{NET}.conflist")), conflist.to_string()).expect("conflist");
    }

    fn address(&self, name: &str) -> String {
        let format = format!("{{{{(index .NetworkSettings.Networks \"{NET}\").IPAddress}}}}");
        self.ok(&["inspect", "-f", &format, name]).trim().to_string()
    }
}

impl Drop for Podman<'_> {
    fn drop(&mut self) {
        if self.dir().join("containers.conf").exists() {
            let _ = output("podman rm -af", &mut self.cmd(&["rm", "-af", "-t", "1"]));
        }
    }
}

#[test]
fn three_containers_at_once_get_distinct_addresses_freed_when_they_stop() {
    if !runtime_tests::runnable("podman") {
        return;
    }
    runtime_tests::binaries::require(&[
        ("/usr/bin/podman", "podman"),
        ("/usr/sbin/runc", "runc"),
        ("/usr/lib/cni/bridge", "containernetworking-plugins"),
        ("/usr/bin/nsenter", "util-linux"),
    ]);
    let host = Host::new("wbrt-podman", "libpod_parent");
    let podman = Podman { host: &host };
    podman.write_configs();
    let archive: PathBuf = host.dir().join("image.tar");
    runtime_tests::image::build(&archive, IMAGE);
    podman.ok(&["load", "-q", "-i", archive.to_str().expect("utf-8 path")]);

    let names = ["wb-c1", "wb-c2", "wb-c3"];
    let runs: Vec<_> = names
        .iter()
        .map(|name| {
            let mut cmd = podman.cmd(&["run", "-d", "--pull=never", "--name", name, "--network", NET, IMAGE]);
            std::thread::spawn(move || output("podman run", &mut cmd))
        })
        .collect();
    for (name, run) in names.iter().zip(runs) {
        let out = run.join().expect("podman run thread");
        assert!(
            out.status.success(),
            "podman run {name} failed: {}\nplugin log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            host.plugin_log()
        );
    }

    let mut addresses = Vec::new();
    for name in names {
        let ip = podman.address(name);
        let inside = podman.ok(&["exec", name, "ip", "-4", "-o", "addr", "show", "eth0"]);
        assert!(inside.contains(&format!(" {ip}/24 ")), "{name}: podman says {ip}, the container has {inside}");
        assert!(ip.starts_with("10.244.77.") && ip != GATEWAY, "{name} got {ip}");
        addresses.push(ip);
    }
    let distinct: std::collections::BTreeSet<_> = addresses.iter().collect();
    assert_eq!(distinct.len(), 3, "addresses not distinct: {addresses:?}");
    let held = host.held(NETWORK_NAME);
    let pods: Vec<(String, String, String)> =
        held.iter().map(|(ip, ns, name, _)| (ip.clone(), ns.clone(), name.clone())).collect();
    for (name, ip) in names.iter().zip(&addresses) {
        assert!(
            pods.contains(&(ip.clone(), String::new(), name.to_string())),
            "{ip} is not held by pod /{name}: {held:?}"
        );
    }
    let ping = podman.cmd(&["exec", "wb-c1", "ping", "-c1", "-W5", &addresses[1]]).output().expect("ping");
    assert!(ping.status.success(), "wb-c1 cannot reach wb-c2: {}", String::from_utf8_lossy(&ping.stdout));

    podman.ok(&["stop", "-t", "5", "wb-c1", "wb-c2", "wb-c3"]);
    assert_eq!(host.held(NETWORK_NAME), Default::default(), "addresses still held after the containers stopped");
    podman.ok(&["rm", "wb-c1", "wb-c2", "wb-c3"]);
}
