//! Generates the etcd KV client from `proto/etcd_kv.proto` and the echo floor's client and server
//! from `proto/echo.proto`, with a vendored protoc (no system protoc needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    println!("cargo:rerun-if-changed=proto/etcd_kv.proto");
    println!("cargo:rerun-if-changed=proto/echo.proto");
    tonic_prost_build::configure().build_server(false).compile_protos(&["proto/etcd_kv.proto"], &["proto"])?;
    tonic_prost_build::configure().compile_protos(&["proto/echo.proto"], &["proto"])?;
    Ok(())
}
