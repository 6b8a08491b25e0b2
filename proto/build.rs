//! Generates the tonic/prost code. protoc comes from the `protoc-bin-vendored` crate, so a fresh
//! machine needs no system protoc. The descriptor set of the same files goes to OUT_DIR as well,
//! for the wire-compatibility test (`tests/wire_compat.rs`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("PROTOC", protoc) };
    println!("cargo:rerun-if-changed=proto/ipam.proto");
    println!("cargo:rerun-if-changed=proto/raft.proto");
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("file_descriptor_set.binpb"))
        // IPAM messages print as JSON in `whereabouts-ctl --output json`.
        .type_attribute(".whereabouts.ipam.v1", "#[derive(serde::Serialize)]")
        .compile_protos(&["proto/ipam.proto", "proto/raft.proto"], &["proto"])?;
    Ok(())
}
