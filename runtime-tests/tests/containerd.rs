//! containerd's CRI plugin driven as kubelet drives pod networking: RunPodSandbox (CNI ADD),
//! PodSandboxStatus, StopPodSandbox (DEL), RemovePodSandbox (DEL again, with no netns) through
//! the CRI API over containerd's socket. A private containerd (own root, state, socket) runs in
//! the test's network namespace with a bridge network whose IPAM is `whereabouts`; its sandbox
//! ("pause") image is built locally from busybox-static. Three pods started at once get distinct
//! addresses, recorded with their pod namespace and name; once the pods are stopped and removed,
//! every address is free.
//!
//! Needs root and Debian's containerd, runc, containernetworking-plugins and busybox-static.
//! Bounded: each CRI call has a 90 s deadline, containerd must answer within 30 s of starting.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, ListPodSandboxRequest, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata, PodSandboxStatusRequest, RemovePodSandboxRequest, RunPodSandboxRequest,
    StopPodSandboxRequest, VersionRequest,
};
use runtime_tests::command::{in_netns, ok};
use runtime_tests::host::Host;
use serde_json::json;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

const NET: &str = "wbcri";
const RANGE: &str = "10.244.78.0/24";
const GATEWAY: &str = "10.244.78.1";
const IMAGE: &str = "localhost/wb-pause:1";
const NETWORK_NAME: &str = "containerd-e2e";
const NAMESPACE: &str = "wb-ns";
const CGROUP_PARENT: &str = "wbrt-cri";
const CALL_TIMEOUT: Duration = Duration::from_secs(90);

fn write_configs(host: &Host) {
    let d = host.dir();
    for sub in ["root", "state", "net.d", "cni-bin", "logs", "opt"] {
        std::fs::create_dir_all(d.join(sub)).expect("containerd dir");
    }
    // containerd 1.6 takes one bin_dir (CNI_PATH): the delegate plugins sit beside ours.
    for entry in std::fs::read_dir("/usr/lib/cni").expect("/usr/lib/cni").flatten() {
        std::os::unix::fs::symlink(entry.path(), d.join("cni-bin").join(entry.file_name())).expect("link plugin");
    }
    std::fs::copy(runtime_tests::binaries::plugin(), d.join("cni-bin/whereabouts")).expect("install the plugin");
    let conflist = json!({
        "cniVersion": "1.0.0",
        "name": NET,
        "plugins": [{
            "type": "bridge", "bridge": "wbcri0", "isGateway": true, "hairpinMode": true,
            "ipam": host.ipam(RANGE, GATEWAY, NETWORK_NAME),
        }],
    });
    std::fs::write(d.join(format!("net.d/10-{NET}.conflist")), conflist.to_string()).expect("conflist");
    let p = |s: &str| d.join(s).display().to_string();
    let config = format!(
        r#"version = 2
root = "{root}"
state = "{state}"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = "{debug}"
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{opt}"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{IMAGE}"
    # root here may lack CAP_SYS_RESOURCE: the sandbox's oom_score_adj (-998) cannot be set
    restrict_oom_score_adj = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false
    disable_apparmor = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = "/usr/sbin/runc"
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "{bin}"
      conf_dir = "{netd}"
      max_conf_num = 1
"#,
        root = p("root"),
        state = p("state"),
        sock = p("containerd.sock"),
        debug = p("debug.sock"),
        opt = p("opt"),
        bin = p("cni-bin"),
        netd = p("net.d"),
    );
    std::fs::write(d.join("config.toml"), config).expect("config.toml");
}

/// containerd, started in the test's namespace; stopped (by pid) on drop.
struct Containerd {
    child: Child,
}

impl Containerd {
    fn start(host: &Host) -> Containerd {
        let d = host.dir();
        let log = std::fs::File::create(d.join("containerd.log")).expect("containerd log");
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", host.netns_path().display())).arg("--").arg("containerd");
        cmd.arg("--config").arg(d.join("config.toml"));
        cmd.stdin(Stdio::null()).stdout(log.try_clone().expect("log")).stderr(log);
        let child = cmd.spawn().expect("start containerd");
        let sock = d.join("containerd.sock");
        let start = Instant::now();
        let mut daemon = Containerd { child };
        loop {
            let ready = sock.exists() && ctr(host, &["version"]).status().map(|s| s.success()).unwrap_or(false);
            if ready {
                return daemon;
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!(
                    "containerd exited ({status}):\n{}",
                    std::fs::read_to_string(d.join("containerd.log")).unwrap_or_default()
                );
            }
            assert!(start.elapsed() < Duration::from_secs(30), "containerd did not answer within 30 s");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child's.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while matches!(self.child.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// On drop, stops and removes every sandbox containerd still has (a failed test leaves none, so
/// no network namespace stays under /var/run/netns).
struct Sandboxes {
    sock: std::path::PathBuf,
}

impl Drop for Sandboxes {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        runtime.block_on(async {
            let Ok(mut c) = try_connect(&self.sock).await else { return };
            let Ok(list) = c.list_pod_sandbox(ListPodSandboxRequest { filter: None }).await else { return };
            for pod in list.into_inner().items {
                let _ = c.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: pod.id.clone() }).await;
                let _ = c.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: pod.id }).await;
            }
        });
    }
}

fn ctr(host: &Host, args: &[&str]) -> Command {
    let mut c = in_netns(&host.netns_path(), "ctr");
    c.arg("--address").arg(host.dir().join("containerd.sock")).args(["-n", "k8s.io"]).args(args);
    c
}

async fn try_connect(sock: &Path) -> Result<RuntimeServiceClient<Channel>, tonic::transport::Error> {
    let sock = sock.to_path_buf();
    let channel = Endpoint::try_from("http://[::]:0")
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(10))
        .timeout(CALL_TIMEOUT)
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let sock = sock.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(sock).await?)) }
        }))
        .await?;
    Ok(RuntimeServiceClient::new(channel))
}

async fn connect(sock: &Path) -> RuntimeServiceClient<Channel> {
    try_connect(sock).await.expect("connect to containerd's CRI socket")
}

/// The PodSandboxConfig kubelet sends for a pod (the fields it always sets).
fn sandbox(host: &Host, name: &str, uid: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            namespace: NAMESPACE.into(),
            uid: uid.into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: host.dir().join("logs").join(name).display().to_string(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("/{CGROUP_PARENT}/pod{uid}"),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Pod as i32,
                    pid: NamespaceMode::Container as i32,
                    ipc: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn pods_get_distinct_addresses_with_their_names_freed_on_removal() {
    if !runtime_tests::runnable("containerd") {
        return;
    }
    runtime_tests::binaries::require(&[
        ("/usr/bin/containerd", "containerd"),
        ("/usr/bin/ctr", "containerd"),
        ("/usr/sbin/runc", "runc"),
        ("/usr/lib/cni/bridge", "containernetworking-plugins"),
        ("/usr/bin/nsenter", "util-linux"),
    ]);
    let host = Host::new("wbrt-ctrd", CGROUP_PARENT);
    write_configs(&host);
    let daemon = Containerd::start(&host);
    let sandboxes = Sandboxes { sock: host.dir().join("containerd.sock") };
    let archive = host.dir().join("pause.tar");
    runtime_tests::image::build(&archive, IMAGE);
    ok(
        "ctr images import",
        ctr(&host, &["images", "import", archive.to_str().expect("utf-8 path")]).stdout(Stdio::null()),
    );

    let sock = host.dir().join("containerd.sock");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let pods = [
        ("wb-pod-1", "00000000-0000-0000-0000-000000000001"),
        ("wb-pod-2", "00000000-0000-0000-0000-000000000002"),
        ("wb-pod-3", "00000000-0000-0000-0000-000000000003"),
    ];
    let ids: Vec<String> = runtime.block_on(async {
        let client = connect(&sock).await;
        let version = client.clone().version(VersionRequest { version: "v1".into() }).await.expect("CRI Version");
        assert_eq!(version.get_ref().runtime_name, "containerd");
        // All three at once, as kubelet's pod workers do.
        let mut runs = tokio::task::JoinSet::new();
        for (i, (name, uid)) in pods.iter().enumerate() {
            let mut c = client.clone();
            let config = sandbox(&host, name, uid);
            runs.spawn(async move {
                let reply =
                    c.run_pod_sandbox(RunPodSandboxRequest { config: Some(config), runtime_handler: String::new() });
                (i, reply.await)
            });
        }
        let mut ids = vec![String::new(); pods.len()];
        while let Some(joined) = runs.join_next().await {
            let (i, reply) = joined.expect("RunPodSandbox task");
            match reply {
                Ok(reply) => ids[i] = reply.into_inner().pod_sandbox_id,
                Err(e) => panic!("RunPodSandbox {}: {e}\nplugin log:\n{}", pods[i].0, host.plugin_log()),
            }
        }
        ids
    });

    let mut addresses = Vec::new();
    for id in &ids {
        let status = runtime.block_on(async {
            connect(&sock)
                .await
                .pod_sandbox_status(PodSandboxStatusRequest { pod_sandbox_id: id.clone(), verbose: false })
                .await
        });
        let status = status.expect("PodSandboxStatus").into_inner().status.expect("status");
        let ip = status.network.map(|n| n.ip).unwrap_or_default();
        assert!(ip.starts_with("10.244.78.") && ip != GATEWAY, "pod {id} got {ip:?}");
        addresses.push(ip);
    }
    let distinct: std::collections::BTreeSet<_> = addresses.iter().collect();
    assert_eq!(distinct.len(), 3, "addresses not distinct: {addresses:?}");
    let held = host.held(NETWORK_NAME);
    for ((name, _), (ip, id)) in pods.iter().zip(addresses.iter().zip(&ids)) {
        let want = (ip.clone(), NAMESPACE.to_string(), name.to_string(), id.clone());
        assert!(held.contains(&want), "{ip} is not held by pod {NAMESPACE}/{name} (sandbox {id}): {held:?}");
    }

    runtime.block_on(async {
        let mut c = connect(&sock).await;
        for id in &ids {
            c.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: id.clone() }).await.expect("StopPodSandbox");
        }
    });
    assert_eq!(host.held(NETWORK_NAME), Default::default(), "addresses still held after StopPodSandbox");
    runtime.block_on(async {
        let mut c = connect(&sock).await;
        for id in &ids {
            c.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id.clone() })
                .await
                .expect("RemovePodSandbox");
        }
    });
    assert_eq!(host.held(NETWORK_NAME), Default::default(), "addresses held again after RemovePodSandbox");
    drop(sandboxes);
    drop(daemon);
}
