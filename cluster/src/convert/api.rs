//! `ipam.proto` ↔ domain. Requests are validated here into domain commands: a bad field becomes a
//! [`FieldError`] naming it (the handler answers INVALID_ARGUMENT) and never reaches the log.

use std::net::IpAddr;

use ipam::ip::{parse_cidr_sloppy, parse_ip_sloppy};
use ipam::{
    Allocate, AllocationView, Attachment, FieldError, FieldProblem, Gc, HistoryAction, HistoryEntry, Lease, Owner,
    PodRef, PoolUsage, Range, RangeSpec, Release, ReleaseIp, Warning,
};
use ipnet::IpNet;
use proto::ipam as pb;

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// The request id of a write ("" means none).
pub fn request_id(id: String) -> Option<String> {
    non_empty(id)
}

/// Parses an address field.
pub fn ip(s: &str, field: &str) -> Result<IpAddr, FieldError> {
    parse_ip_sloppy(s).ok_or_else(|| FieldError::new(field, s, FieldProblem::InvalidIp))
}

/// The attachment of a request (required). The pod is optional: a name without a namespace is
/// podman's (`K8S_POD_NAME` only; recorded as `/<name>`, as whereabouts does), neither is a bare
/// CNI caller (the attachment is then known by container id and interface only). A namespace
/// without a name names no pod and is refused.
pub fn attachment(a: Option<pb::Attachment>) -> Result<Attachment, FieldError> {
    let a = a.ok_or_else(|| FieldError::new("attachment", "", FieldProblem::Missing))?;
    let pod = match (a.pod_namespace, non_empty(a.pod_name)) {
        (namespace, Some(name)) => Some(PodRef { namespace, name }),
        (namespace, None) if namespace.is_empty() => None,
        (namespace, None) => return Err(FieldError::new("attachment.pod_name", namespace, FieldProblem::Missing)),
    };
    Ok(Attachment {
        owner: Owner { container_id: a.container_id, ifname: a.ifname },
        pod,
        pod_uid: non_empty(a.pod_uid),
        node: non_empty(a.node),
        cni_network: a.cni_network,
    })
}

/// An Allocate request as a domain command, with the range warnings to log.
pub fn allocate(req: pb::AllocateRequest) -> Result<(Allocate, Vec<Warning>), FieldError> {
    let mut warnings = Vec::new();
    if req.ranges.len() > ipam::event::MAX_RANGES {
        let limit = ipam::event::MAX_RANGES as u64;
        return Err(FieldError::new("ranges", req.ranges.len().to_string(), FieldProblem::TooLarge { limit }));
    }
    let mut ranges = Vec::with_capacity(req.ranges.len());
    for (i, r) in req.ranges.into_iter().enumerate() {
        let spec = RangeSpec {
            range: r.range,
            range_start: non_empty(r.range_start),
            range_end: non_empty(r.range_end),
            exclude: r.exclude,
        };
        let (range, w) = Range::parse(&spec, &format!("ranges[{i}]"))?;
        warnings.extend(w);
        ranges.push(range);
    }
    let statics = req
        .static_ips
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (addr, prefix) = parse_cidr_sloppy(s)
                .ok_or_else(|| FieldError::new(format!("static_ips[{i}]"), s, FieldProblem::InvalidCidr))?;
            Ok(IpNet::new(addr, prefix).expect("prefix checked"))
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    let cmd = Allocate {
        network: req.network_name,
        ranges,
        statics,
        overlapping: req.enable_overlapping_ranges.unwrap_or(true),
        attachment: attachment(req.attachment)?,
    };
    Ok((cmd, warnings))
}

/// A Release request as a domain command.
pub fn release(req: pb::ReleaseRequest) -> Release {
    Release {
        network: req.network_name,
        owner: Owner { container_id: req.container_id, ifname: req.ifname },
        only_node: None,
    }
}

/// A ReleaseIp request as a domain command.
pub fn release_ip(req: pb::ReleaseIpRequest) -> Result<ReleaseIp, FieldError> {
    Ok(ReleaseIp {
        network: req.network_name,
        ip: ip(&req.ip, "ip")?,
        expected: Owner { container_id: req.container_id, ifname: req.ifname },
    })
}

/// A GC request as a domain command.
pub fn gc(req: pb::GcRequest) -> Gc {
    Gc {
        network: req.network_name,
        cni_network: req.cni_network,
        node: req.node,
        keep: req.keep.into_iter().map(|o| Owner { container_id: o.container_id, ifname: o.ifname }).collect(),
    }
}

/// A lease on the wire.
pub fn lease(l: &Lease) -> pb::Lease {
    pb::Lease { ip: l.ip.to_string(), pool: l.pool.to_string() }
}

/// An allocation on the wire.
pub fn allocation(v: AllocationView) -> pb::Allocation {
    let a = v.attachment;
    let (pod_namespace, pod_name) = a.pod.map(|p| (p.namespace, p.name)).unwrap_or_default();
    pb::Allocation {
        network_name: v.network,
        pool: v.pool.to_string(),
        ip: v.ip.to_string(),
        attachment: Some(pb::Attachment {
            container_id: a.owner.container_id,
            ifname: a.owner.ifname,
            pod_namespace,
            pod_name,
            pod_uid: a.pod_uid.unwrap_or_default(),
            node: a.node.unwrap_or_default(),
            cni_network: a.cni_network,
        }),
        since_ms: v.since_ms,
    }
}

/// A history entry on the wire.
pub fn history(h: HistoryEntry) -> pb::HistoryEntry {
    let action = match h.action {
        HistoryAction::Allocated => "allocated",
        HistoryAction::Reowned => "reowned",
        HistoryAction::Released => "released",
    };
    pb::HistoryEntry {
        event: h.event,
        time_ms: h.time_ms,
        action: action.into(),
        network_name: h.network,
        ip: h.ip.to_string(),
        container_id: h.owner.container_id,
        ifname: h.owner.ifname,
        pod: h.pod.map(|p| p.to_string()).unwrap_or_default(),
    }
}

/// Pool usage on the wire.
pub fn pool_usage(p: PoolUsage) -> pb::PoolUsage {
    pb::PoolUsage { network_name: p.network, cidr: p.cidr.to_string(), usable: p.usable.to_string(), used: p.used }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> pb::AllocateRequest {
        pb::AllocateRequest {
            request_id: "r1".into(),
            network_name: "n".into(),
            ranges: vec![pb::RangeSpec { range: "10.0.0.0/24".into(), ..Default::default() }],
            static_ips: vec!["10.0.0.9/24".into()],
            enable_overlapping_ranges: None,
            attachment: Some(pb::Attachment {
                container_id: "c".into(),
                ifname: "eth0".into(),
                pod_namespace: "ns".into(),
                pod_name: "p".into(),
                cni_network: "net".into(),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn allocate_requests_become_commands() {
        let (cmd, warnings) = allocate(req()).unwrap();
        assert!(cmd.overlapping, "absent means whereabouts' default: true");
        assert_eq!(cmd.statics[0].to_string(), "10.0.0.9/24");
        assert_eq!(cmd.attachment.pod.unwrap().to_string(), "ns/p");
        assert!(warnings.is_empty());
    }

    #[test]
    fn podman_and_bare_callers_are_served() {
        // podman: K8S_POD_NAME only → the pod ref `/<name>`.
        let mut r = req();
        r.attachment.as_mut().unwrap().pod_namespace.clear();
        let (cmd, _) = allocate(r).unwrap();
        assert_eq!(cmd.attachment.pod.unwrap().to_string(), "/p");
        // cnitool or a bare caller: no pod at all, keyed by container id and interface.
        let mut r = req();
        let a = r.attachment.as_mut().unwrap();
        a.pod_namespace.clear();
        a.pod_name.clear();
        let (cmd, _) = allocate(r).unwrap();
        assert_eq!(cmd.attachment.pod, None);
        assert_eq!(cmd.attachment.owner.to_string(), "c/eth0");
    }

    #[test]
    fn bad_fields_are_named() {
        let mut r = req();
        r.ranges[0].range = "10.0.0.0/33".into();
        assert_eq!(allocate(r).unwrap_err().field, "ranges[0].range");
        let mut r = req();
        r.static_ips = vec!["10.0.0.9".into()];
        assert_eq!(allocate(r).unwrap_err().field, "static_ips[0]");
        let mut r = req();
        r.attachment = None;
        assert_eq!(allocate(r).unwrap_err().field, "attachment");
        let mut r = req();
        r.attachment.as_mut().unwrap().pod_name.clear();
        assert_eq!(allocate(r).unwrap_err().field, "attachment.pod_name");
        let bad = pb::ReleaseIpRequest { ip: "10.0.0.300".into(), ..Default::default() };
        assert_eq!(release_ip(bad).unwrap_err().field, "ip");
    }
}
