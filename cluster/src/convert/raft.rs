//! `raft.proto` ↔ openraft: typed votes and log ids, postcard-encoded entry payloads, JSON
//! snapshot metadata.

use openraft::{CommittedLeaderId, LeaderId};
use proto::raft as pb;
use raft_store::entry_codec;
use raft_store::types::{typ, NodeId, TypeConfig};

/// A message that could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("malformed raft message: {0}")]
pub struct DecodeError(pub String);

fn missing(what: &str) -> DecodeError {
    DecodeError(format!("{what} is missing"))
}

/// openraft vote → protobuf.
pub fn vote_to_pb(v: &typ::Vote) -> pb::Vote {
    pb::Vote {
        leader_id: Some(pb::LeaderId { term: v.leader_id.term, node_id: v.leader_id.node_id }),
        committed: v.committed,
    }
}

/// protobuf vote → openraft.
pub fn vote_from_pb(v: Option<pb::Vote>) -> Result<typ::Vote, DecodeError> {
    let v = v.ok_or_else(|| missing("vote"))?;
    let l = v.leader_id.ok_or_else(|| missing("vote.leader_id"))?;
    Ok(openraft::Vote { leader_id: LeaderId::new(l.term, l.node_id), committed: v.committed })
}

/// openraft log id → protobuf.
pub fn log_id_to_pb(id: &typ::LogId) -> pb::LogId {
    pb::LogId {
        leader_id: Some(pb::LeaderId { term: id.leader_id.term, node_id: id.leader_id.node_id }),
        index: id.index,
    }
}

/// protobuf log id → openraft.
pub fn log_id_from_pb(id: pb::LogId) -> Result<typ::LogId, DecodeError> {
    let l = id.leader_id.ok_or_else(|| missing("log_id.leader_id"))?;
    Ok(openraft::LogId::new(CommittedLeaderId::new(l.term, l.node_id), id.index))
}

fn opt_log_id_from_pb(id: Option<pb::LogId>) -> Result<Option<typ::LogId>, DecodeError> {
    id.map(log_id_from_pb).transpose()
}

/// AppendEntries request → protobuf (entry payloads postcard-encoded).
pub fn append_to_pb(
    req: &openraft::raft::AppendEntriesRequest<TypeConfig>,
) -> Result<pb::AppendEntriesRequest, DecodeError> {
    let entries = req
        .entries
        .iter()
        .map(|e| {
            let payload = entry_codec::encode_payload(&e.payload, || format!("log entry {}", e.log_id.index))
                .map_err(|err| DecodeError(err.to_string()))?;
            Ok(pb::Entry { log_id: Some(log_id_to_pb(&e.log_id)), payload })
        })
        .collect::<Result<_, DecodeError>>()?;
    Ok(pb::AppendEntriesRequest {
        vote: Some(vote_to_pb(&req.vote)),
        prev_log_id: req.prev_log_id.as_ref().map(log_id_to_pb),
        entries,
        leader_commit: req.leader_commit.as_ref().map(log_id_to_pb),
    })
}

/// protobuf → AppendEntries request.
pub fn append_from_pb(
    req: pb::AppendEntriesRequest,
) -> Result<openraft::raft::AppendEntriesRequest<TypeConfig>, DecodeError> {
    let entries = req
        .entries
        .into_iter()
        .map(|e| {
            let log_id = log_id_from_pb(e.log_id.ok_or_else(|| missing("entry.log_id"))?)?;
            let payload = entry_codec::decode_payload(&e.payload, || format!("log entry {}", log_id.index))
                .map_err(|err| DecodeError(err.to_string()))?;
            Ok(typ::Entry { log_id, payload })
        })
        .collect::<Result<_, DecodeError>>()?;
    Ok(openraft::raft::AppendEntriesRequest {
        vote: vote_from_pb(req.vote)?,
        prev_log_id: opt_log_id_from_pb(req.prev_log_id)?,
        entries,
        leader_commit: opt_log_id_from_pb(req.leader_commit)?,
    })
}

/// AppendEntries response → protobuf.
pub fn append_resp_to_pb(resp: openraft::raft::AppendEntriesResponse<NodeId>) -> pb::AppendEntriesResponse {
    use openraft::raft::AppendEntriesResponse as R;
    use pb::append_entries_response::Result as P;
    let result = match resp {
        R::Success => P::Success(true),
        R::PartialSuccess(matching) => {
            P::PartialSuccess(pb::PartialSuccess { matching: matching.as_ref().map(log_id_to_pb) })
        }
        R::Conflict => P::Conflict(true),
        R::HigherVote(v) => P::HigherVote(vote_to_pb(&v)),
    };
    pb::AppendEntriesResponse { result: Some(result) }
}

/// protobuf → AppendEntries response.
pub fn append_resp_from_pb(
    resp: pb::AppendEntriesResponse,
) -> Result<openraft::raft::AppendEntriesResponse<NodeId>, DecodeError> {
    use openraft::raft::AppendEntriesResponse as R;
    use pb::append_entries_response::Result as P;
    Ok(match resp.result.ok_or_else(|| missing("append_entries result"))? {
        P::Success(_) => R::Success,
        P::PartialSuccess(p) => R::PartialSuccess(opt_log_id_from_pb(p.matching)?),
        P::Conflict(_) => R::Conflict,
        P::HigherVote(v) => R::HigherVote(vote_from_pb(Some(v))?),
    })
}

/// Vote request → protobuf.
pub fn vote_req_to_pb(req: &openraft::raft::VoteRequest<NodeId>) -> pb::VoteRequest {
    pb::VoteRequest { vote: Some(vote_to_pb(&req.vote)), last_log_id: req.last_log_id.as_ref().map(log_id_to_pb) }
}

/// protobuf → vote request.
pub fn vote_req_from_pb(req: pb::VoteRequest) -> Result<openraft::raft::VoteRequest<NodeId>, DecodeError> {
    Ok(openraft::raft::VoteRequest { vote: vote_from_pb(req.vote)?, last_log_id: opt_log_id_from_pb(req.last_log_id)? })
}

/// Vote response → protobuf.
pub fn vote_resp_to_pb(resp: &openraft::raft::VoteResponse<NodeId>) -> pb::VoteResponse {
    pb::VoteResponse {
        vote: Some(vote_to_pb(&resp.vote)),
        vote_granted: resp.vote_granted,
        last_log_id: resp.last_log_id.as_ref().map(log_id_to_pb),
    }
}

/// protobuf → vote response.
pub fn vote_resp_from_pb(resp: pb::VoteResponse) -> Result<openraft::raft::VoteResponse<NodeId>, DecodeError> {
    Ok(openraft::raft::VoteResponse {
        vote: vote_from_pb(resp.vote)?,
        vote_granted: resp.vote_granted,
        last_log_id: opt_log_id_from_pb(resp.last_log_id)?,
    })
}

/// Snapshot chunk → protobuf.
pub fn snapshot_to_pb(
    req: &openraft::raft::InstallSnapshotRequest<TypeConfig>,
) -> Result<pb::InstallSnapshotRequest, DecodeError> {
    Ok(pb::InstallSnapshotRequest {
        vote: Some(vote_to_pb(&req.vote)),
        meta: serde_json::to_vec(&req.meta).map_err(|e| DecodeError(e.to_string()))?,
        offset: req.offset,
        data: req.data.clone(),
        done: req.done,
    })
}

/// protobuf → snapshot chunk.
pub fn snapshot_from_pb(
    req: pb::InstallSnapshotRequest,
) -> Result<openraft::raft::InstallSnapshotRequest<TypeConfig>, DecodeError> {
    Ok(openraft::raft::InstallSnapshotRequest {
        vote: vote_from_pb(req.vote)?,
        meta: serde_json::from_slice(&req.meta).map_err(|e| DecodeError(format!("snapshot meta: {e}")))?,
        offset: req.offset,
        data: req.data,
        done: req.done,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::EntryPayload;
    use raft_store::types::Batch;

    #[test]
    fn append_entries_round_trip() {
        let log_id = |t, i| openraft::LogId::new(CommittedLeaderId::new(t, 1), i);
        let req = openraft::raft::AppendEntriesRequest::<TypeConfig> {
            vote: openraft::Vote::new_committed(3, 1),
            prev_log_id: Some(log_id(2, 9)),
            entries: vec![
                typ::Entry { log_id: log_id(3, 10), payload: EntryPayload::Blank },
                typ::Entry { log_id: log_id(3, 11), payload: EntryPayload::Normal(Batch::new(vec![], 1)) },
                // The wire keeps each entry's format: a follower stores what the leader wrote.
                typ::Entry { log_id: log_id(3, 12), payload: EntryPayload::Normal(Batch::new(vec![], 2)) },
            ],
            leader_commit: None,
        };
        let back = append_from_pb(append_to_pb(&req).unwrap()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{req:?}"));
        let make = |i| match i {
            0 => openraft::raft::AppendEntriesResponse::Success,
            1 => openraft::raft::AppendEntriesResponse::PartialSuccess(Some(log_id(1, 2))),
            2 => openraft::raft::AppendEntriesResponse::Conflict,
            _ => openraft::raft::AppendEntriesResponse::HigherVote(openraft::Vote::new(7, 2)),
        };
        for i in 0..4 {
            assert_eq!(append_resp_from_pb(append_resp_to_pb(make(i))).unwrap(), make(i));
        }
    }

    #[test]
    fn garbage_is_an_error() {
        let bad = pb::AppendEntriesRequest {
            vote: Some(vote_to_pb(&openraft::Vote::new(1, 1))),
            prev_log_id: None,
            entries: vec![pb::Entry {
                log_id: Some(log_id_to_pb(&openraft::LogId::new(CommittedLeaderId::new(1, 1), 1))),
                payload: vec![0xff; 3],
            }],
            leader_commit: None,
        };
        assert!(append_from_pb(bad).is_err());
        assert!(vote_from_pb(None).is_err());
        assert!(append_resp_from_pb(pb::AppendEntriesResponse { result: None }).is_err());
    }
}
