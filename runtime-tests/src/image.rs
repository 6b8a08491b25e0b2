//! A container image built here from Debian's `busybox-static`, so nothing is pulled: one layer
//! (`/bin/busybox` and a link per applet), written as an OCI image archive that `podman load` and
//! `ctr images import` both accept. Its entrypoint is a pause that stops at once on SIGTERM (a
//! shell as PID 1 ignores the signal unless it traps it). Deterministic: same bytes every run.

use std::path::Path;
use std::process::Command;

use serde_json::json;

/// The static busybox the image is made of.
pub const BUSYBOX: &str = "/bin/busybox";

/// The pause entrypoint.
const PAUSE: [&str; 3] = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; sleep 2147483647 & wait"];

fn run(what: &str, cmd: &mut Command) -> String {
    crate::command::ok(what, cmd)
}

fn sha256(path: &Path) -> String {
    let out = run("sha256sum", Command::new("sha256sum").arg(path));
    out.split_whitespace().next().expect("sha256sum prints a digest").to_string()
}

/// Moves `file` into the archive's blob directory under its digest; returns (digest, size).
fn add_blob(blobs: &Path, file: &Path) -> (String, u64) {
    let digest = sha256(file);
    let size = std::fs::metadata(file).expect("blob").len();
    std::fs::rename(file, blobs.join(&digest)).expect("move blob");
    (format!("sha256:{digest}"), size)
}

fn tar(dir: &Path, out: &Path) {
    run(
        "tar",
        Command::new("tar")
            .args(["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-C"])
            .arg(dir)
            .arg("-cf")
            .arg(out)
            .arg("."),
    );
}

/// Writes the OCI archive of image `name` (e.g. `localhost/wb-busybox:1`) to `out`.
pub fn build(out: &Path, name: &str) {
    assert!(Path::new(BUSYBOX).is_file(), "{BUSYBOX} is missing (apt-get install busybox-static)");
    let work = tempfile::tempdir().expect("image work dir");
    let root = work.path().join("rootfs");
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "run", "var"] {
        std::fs::create_dir_all(root.join(d)).expect("rootfs dir");
    }
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).expect("copy busybox");
    let applets = run("busybox --list", Command::new(BUSYBOX).arg("--list"));
    for applet in applets.lines().map(str::trim).filter(|a| !a.is_empty() && *a != "busybox") {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("applet link");
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").expect("passwd");
    std::fs::write(root.join("etc/group"), "root:x:0:\n").expect("group");

    let oci = work.path().join("oci");
    let blobs = oci.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("blobs dir");
    let layer = work.path().join("layer.tar");
    tar(&root, &layer);
    let (layer_digest, layer_size) = add_blob(&blobs, &layer);

    let write_json = |file: &str, value: serde_json::Value| {
        let path = work.path().join(file);
        std::fs::write(&path, serde_json::to_vec(&value).expect("json")).expect("write json");
        path
    };
    let epoch = "1970-01-01T00:00:00Z";
    let config = write_json(
        "config.json",
        json!({
            "architecture": "amd64", "os": "linux", "created": epoch,
            "config": {"Env": ["PATH=/bin"], "Entrypoint": PAUSE, "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "history": [{"created": epoch, "created_by": "runtime-tests image::build (busybox-static)"}],
        }),
    );
    let (config_digest, config_size) = add_blob(&blobs, &config);
    let manifest = write_json(
        "manifest.json",
        json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}],
        }),
    );
    let (manifest_digest, manifest_size) = add_blob(&blobs, &manifest);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_size,
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": name, "io.containerd.image.name": name},
        }],
    });
    std::fs::write(oci.join("index.json"), serde_json::to_vec(&index).expect("json")).expect("index");
    std::fs::write(oci.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
    tar(&oci, out);
}
