//! A small etcd v3 KV client over gRPC: just the calls the two reference schemes need (whereabouts'
//! whole-pool compare-and-swap, [`crate::scheme`], and one key per address, [`crate::key_per_address`]).
//!
//! The stubs come from `proto/etcd_kv.proto` (a field-compatible subset of etcd's `rpc.proto`), generated
//! with the workspace's tonic 0.14 and a vendored protoc. Endpoints must be loopback: this benchmark
//! never targets anything else.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context};
use tonic::transport::{Channel, Endpoint};

/// Generated etcd messages and the `KV` client.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("etcdserverpb");
}

use pb::compare::{CompareResult, CompareTarget, TargetUnion};
use pb::kv_client::KvClient;
use pb::request_op::Request;

/// etcd's default `--max-txn-ops`: the most operations one txn may hold.
pub const MAX_TXN_OPS: usize = 128;

/// A value read from etcd with the revision it was last modified at.
#[derive(Debug, Clone)]
pub struct Versioned {
    /// The stored bytes.
    pub value: Vec<u8>,
    /// The key's `mod_revision`: what a compare-and-swap compares.
    pub mod_revision: i64,
}

/// One gRPC connection to one etcd member.
#[derive(Debug, Clone)]
pub struct Etcd {
    kv: KvClient<Channel>,
}

/// Parses `host:port` (or `http://host:port`) and refuses anything that is not a loopback address.
pub fn loopback_endpoint(spec: &str) -> anyhow::Result<SocketAddr> {
    let hostport = spec.trim().trim_start_matches("http://");
    let addrs: Vec<SocketAddr> =
        hostport.to_socket_addrs().with_context(|| format!("endpoint {spec:?} is not host:port"))?.collect();
    let Some(addr) = addrs.first().copied() else { bail!("endpoint {spec:?} resolves to nothing") };
    if !addrs.iter().all(|a| is_loopback(a.ip())) {
        bail!("endpoint {spec:?} is not a loopback address: this benchmark only targets 127.0.0.0/8 or ::1");
    }
    Ok(addr)
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

impl Etcd {
    /// Opens a dedicated HTTP/2 connection to `addr` (each benchmark client has its own, as each CNI
    /// invocation has its own connection to the API server).
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> anyhow::Result<Self> {
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(timeout)
            .timeout(timeout)
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("connecting to etcd at {addr}"))?;
        // Pool objects of a /20 are hundreds of KiB; etcd accepts requests up to 1.5 MiB by default.
        let kv = KvClient::new(channel).max_decoding_message_size(64 << 20).max_encoding_message_size(64 << 20);
        Ok(Etcd { kv })
    }

    /// Linearizable GET of one key (a quorum read, as kube-apiserver's GET without resourceVersion).
    pub async fn get(&mut self, key: &str) -> Result<Option<Versioned>, tonic::Status> {
        let req = pb::RangeRequest { key: key.as_bytes().to_vec(), ..Default::default() };
        let resp = self.kv.range(req).await?.into_inner();
        Ok(resp.kvs.into_iter().next().map(|kv| Versioned { value: kv.value, mod_revision: kv.mod_revision }))
    }

    /// Writes `value` only if the key's mod_revision is still `mod_revision` (or, with 0, only if the key
    /// does not exist: `create_revision == 0`). `Ok(false)` is a lost race: re-read and retry.
    pub async fn compare_and_swap(
        &mut self,
        key: &str,
        mod_revision: i64,
        value: Vec<u8>,
    ) -> Result<bool, tonic::Status> {
        let (target, union) = if mod_revision == 0 {
            (CompareTarget::Create, TargetUnion::CreateRevision(0))
        } else {
            (CompareTarget::Mod, TargetUnion::ModRevision(mod_revision))
        };
        let compare = pb::Compare {
            result: CompareResult::Equal as i32,
            target: target as i32,
            key: key.as_bytes().to_vec(),
            target_union: Some(union),
        };
        let put = pb::PutRequest { key: key.as_bytes().to_vec(), value, lease: 0 };
        let req = pb::TxnRequest {
            compare: vec![compare],
            success: vec![pb::RequestOp { request: Some(Request::RequestPut(put)) }],
            failure: vec![],
        };
        Ok(self.kv.txn(req).await?.into_inner().succeeded)
    }

    /// Creates `key` with `value` only if it does not exist (a txn comparing `create_revision == 0`).
    /// `Ok(false)`: the key exists, nothing was written.
    pub async fn create_if_absent(&mut self, key: &str, value: Vec<u8>) -> Result<bool, tonic::Status> {
        self.compare_and_swap(key, 0, value).await
    }

    /// Deletes `key` only if its value is still `value` (a txn comparing the value). `Ok(false)`: the
    /// key is missing or holds something else, nothing was deleted.
    pub async fn delete_if_value(&mut self, key: &str, value: &[u8]) -> Result<bool, tonic::Status> {
        let compare = pb::Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Value as i32,
            key: key.as_bytes().to_vec(),
            target_union: Some(TargetUnion::Value(value.to_vec())),
        };
        let delete = pb::DeleteRangeRequest { key: key.as_bytes().to_vec(), range_end: vec![] };
        let req = pb::TxnRequest {
            compare: vec![compare],
            success: vec![pb::RequestOp { request: Some(Request::RequestDeleteRange(delete)) }],
            failure: vec![],
        };
        Ok(self.kv.txn(req).await?.into_inner().succeeded)
    }

    /// Linearizable, keys-only range read of every key under `prefix` (no values, no limit).
    pub async fn keys_with_prefix(&mut self, prefix: &str) -> Result<Vec<Vec<u8>>, tonic::Status> {
        let req = pb::RangeRequest {
            key: prefix.as_bytes().to_vec(),
            range_end: prefix_end(prefix),
            keys_only: true,
            ..Default::default()
        };
        Ok(self.kv.range(req).await?.into_inner().kvs.into_iter().map(|kv| kv.key).collect())
    }

    /// Unconditional PUTs of all `kvs` in one txn (no compare), used only to prefill before the measured
    /// phase. etcd refuses more than `--max-txn-ops` ([`MAX_TXN_OPS`] by default) operations per txn:
    /// callers chunk.
    pub async fn put_all(&mut self, kvs: Vec<(String, Vec<u8>)>) -> Result<(), tonic::Status> {
        let success = kvs
            .into_iter()
            .map(|(key, value)| pb::RequestOp {
                request: Some(Request::RequestPut(pb::PutRequest { key: key.into_bytes(), value, lease: 0 })),
            })
            .collect();
        self.kv.txn(pb::TxnRequest { compare: vec![], success, failure: vec![] }).await?;
        Ok(())
    }

    /// Unconditional PUT (used only to prefill pools before the measured phase).
    pub async fn put(&mut self, key: &str, value: Vec<u8>) -> Result<i64, tonic::Status> {
        let req = pb::PutRequest { key: key.as_bytes().to_vec(), value, lease: 0 };
        Ok(self.kv.put(req).await?.into_inner().header.map_or(0, |h| h.revision))
    }

    /// Deletes every key under `prefix`; returns how many.
    pub async fn delete_prefix(&mut self, prefix: &str) -> Result<i64, tonic::Status> {
        let req = pb::DeleteRangeRequest { key: prefix.as_bytes().to_vec(), range_end: prefix_end(prefix) };
        Ok(self.kv.delete_range(req).await?.into_inner().deleted)
    }

    /// Compacts history up to the current revision, as kube-apiserver does periodically (keeps the
    /// backend from filling with old revisions of whole-pool objects). Not part of any measured op.
    pub async fn compact_now(&mut self) -> Result<i64, tonic::Status> {
        let req = pb::RangeRequest { key: vec![0], count_only: true, ..Default::default() };
        let rev = self.kv.range(req).await?.into_inner().header.map_or(0, |h| h.revision);
        if rev > 1 {
            match self.kv.compact(pb::CompactionRequest { revision: rev, physical: false }).await {
                // Already compacted there (etcd's own auto-compaction got first): fine.
                Err(e) if e.code() == tonic::Code::OutOfRange => {}
                other => {
                    other?;
                }
            }
        }
        Ok(rev)
    }
}

/// The etcd `range_end` that selects every key starting with `prefix`.
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_endpoints_are_accepted() {
        assert_eq!(loopback_endpoint("127.0.0.1:2379").unwrap().port(), 2379);
        assert!(loopback_endpoint("http://127.0.0.1:22379").is_ok());
        assert!(loopback_endpoint("[::1]:2379").is_ok());
        assert!(loopback_endpoint("10.0.0.1:2379").is_err());
        assert!(loopback_endpoint("192.168.1.5:2379").is_err());
        assert!(loopback_endpoint("127.0.0.1").is_err());
    }

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(prefix_end("/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end("ab"), b"ac".to_vec());
    }
}
