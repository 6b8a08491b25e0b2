//! The replication lane to one peer: at most one AppendEntries that carries entries is on the wire
//! to a peer at a time, and it is never cancelled half-way.
//!
//! openraft bounds every AppendEntries by its heartbeat interval (100 ms by default) and drops the
//! call when that passes. A follower that needs longer (a slow or busy disk, a large catch-up
//! batch, a loaded machine) would see each request reset by the client and the same entries sent
//! again and again: the cancelled requests never complete, the follower's HTTP/2 layer runs out of
//! patience for reset streams, and replication stalls while the leader needs that follower for its
//! quorum. Here a request runs to its end (bounded by [`WIRE_TIMEOUT`]); a caller whose deadline
//! passes stops waiting, not the request; and a later call that asks for the same entries joins
//! the request already on the wire (or takes its answer, if it came within [`REUSE`]) instead of
//! sending them again. The answer a joining caller gets is the follower's real answer to the same
//! entries of the same leader term: the same as a reply that arrived late, which Raft allows.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use proto::raft as pb;
use tokio::sync::watch;

/// Longest time one AppendEntries may stay on the wire.
pub const WIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a completed answer may be given to a later call asking for the same entries.
pub const REUSE: Duration = Duration::from_millis(500);

/// The outcome of a request that went on the wire.
pub type WireResult = Result<pb::AppendEntriesResponse, tonic::Status>;

/// Which entries a request carries: the leader's vote, the log id before them and the last one.
/// Within one vote, log ids name entries uniquely, so equal `vote` and `prev` with a `last` not
/// past ours means "the same entries, or a prefix of them".
#[derive(Clone, Debug, PartialEq)]
pub struct EntriesKey {
    vote: Option<pb::Vote>,
    prev: Option<pb::LogId>,
    last_index: u64,
}

impl EntriesKey {
    /// The key of `req`, or `None` for a request without entries (a heartbeat, which must always
    /// be sent: a read index counts only answers to requests sent after the read began).
    pub fn of(req: &pb::AppendEntriesRequest) -> Option<EntriesKey> {
        let last = req.entries.last()?.log_id.as_ref()?;
        Some(EntriesKey { vote: req.vote, prev: req.prev_log_id, last_index: last.index })
    }

    fn covers(&self, other: &EntriesKey) -> bool {
        self.vote == other.vote && self.prev == other.prev && other.last_index <= self.last_index
    }
}

#[derive(Clone)]
struct Flight {
    key: EntriesKey,
    answer: watch::Receiver<Option<(WireResult, Instant)>>,
}

impl Flight {
    fn done_at(&self) -> Option<(bool, Instant)> {
        self.answer.borrow().as_ref().map(|(r, at)| (r.is_ok(), *at))
    }

    /// Waits for the answer until `deadline` (`None`: not yet).
    async fn wait(mut self, deadline: Instant) -> Option<WireResult> {
        let got = tokio::time::timeout_at(deadline, self.answer.wait_for(Option::is_some)).await;
        match got {
            Ok(Ok(v)) => v.as_ref().map(|(r, _)| r.clone()),
            // The sender is gone only after it sent; an empty slot means the task was aborted.
            Ok(Err(_)) => Some(Err(tonic::Status::unavailable("the request to the peer was aborted"))),
            Err(_) => None,
        }
    }
}

/// What a caller should do next.
enum Next {
    /// Wait for this flight: it carries our entries.
    Join(Flight),
    /// Another request is on the wire: wait for it to end, then look again.
    Queue(Flight),
    /// Nothing usable: send ours.
    Send,
}

/// The lane of one peer.
#[derive(Default)]
pub struct Lane {
    current: Mutex<Option<Flight>>,
}

impl Lane {
    fn next(&self, key: &EntriesKey, now: Instant) -> Next {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let Some(flight) = current.as_ref() else { return Next::Send };
        match flight.done_at() {
            None if flight.key.covers(key) => Next::Join(flight.clone()),
            None => Next::Queue(flight.clone()),
            Some((true, at)) if flight.key.covers(key) && now.duration_since(at) <= REUSE => Next::Join(flight.clone()),
            Some(_) => Next::Send,
        }
    }

    /// Installs a flight for `key` unless another caller got there first (then `None`).
    #[allow(clippy::type_complexity)]
    fn start(&self, key: &EntriesKey) -> Option<(watch::Sender<Option<(WireResult, Instant)>>, Flight)> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.as_ref().is_some_and(|f| f.done_at().is_none()) {
            return None;
        }
        let (tx, answer) = watch::channel(None);
        let flight = Flight { key: key.clone(), answer };
        *current = Some(flight.clone());
        Some((tx, flight))
    }

    /// Gets the follower's answer to the entries of `key` by `deadline`: from a request already on
    /// the wire or just answered, or by sending `send` (spawned, so that it completes even when
    /// this caller stops waiting). `None` when the deadline passed first.
    pub async fn append<F>(&self, key: EntriesKey, deadline: Instant, send: F) -> Option<WireResult>
    where
        F: std::future::Future<Output = WireResult> + Send + 'static,
    {
        let mut send = Some(send);
        loop {
            match self.next(&key, Instant::now()) {
                Next::Join(flight) => return flight.wait(deadline).await,
                Next::Queue(flight) => {
                    // Its outcome is not ours; only that it ended (or that our time is up).
                    let _ended = flight.wait(deadline).await?;
                }
                Next::Send => {
                    let Some((tx, ours)) = self.start(&key) else { continue };
                    let Some(call) = send.take() else { unreachable!("a caller returns after sending") };
                    tokio::spawn(async move {
                        let result = match tokio::time::timeout(WIRE_TIMEOUT, call).await {
                            Ok(r) => r,
                            Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                                "the peer did not answer within {WIRE_TIMEOUT:?}"
                            ))),
                        };
                        let _ = tx.send(Some((result, Instant::now())));
                    });
                    // Our own request's answer, whatever the lane holds by then (it may have
                    // failed at once, or been followed by another caller's request).
                    return ours.wait(deadline).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn req(term: u64, prev: u64, last: u64) -> pb::AppendEntriesRequest {
        let leader = Some(pb::LeaderId { term, node_id: 0 });
        let log_id = |index| pb::LogId { leader_id: leader, index };
        pb::AppendEntriesRequest {
            vote: Some(pb::Vote { leader_id: leader, committed: true }),
            prev_log_id: Some(log_id(prev)),
            entries: (prev + 1..=last).map(|i| pb::Entry { log_id: Some(log_id(i)), payload: vec![] }).collect(),
            leader_commit: None,
        }
    }

    /// A follower that takes `delay` for every request and counts them.
    fn slow(sent: &Arc<AtomicUsize>, delay: Duration) -> impl std::future::Future<Output = WireResult> + Send {
        let sent = sent.clone();
        async move {
            sent.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            Ok(pb::AppendEntriesResponse { result: Some(pb::append_entries_response::Result::Success(true)) })
        }
    }

    #[test]
    fn keys_cover_the_same_entries_or_a_prefix_in_the_same_term_only() {
        let k = |t, p, l| EntriesKey::of(&req(t, p, l)).unwrap();
        assert!(k(2, 5, 9).covers(&k(2, 5, 9)));
        assert!(k(2, 5, 9).covers(&k(2, 5, 7)));
        assert!(!k(2, 5, 9).covers(&k(2, 5, 10)), "more entries than the flight carries");
        assert!(!k(2, 5, 9).covers(&k(2, 4, 9)), "another starting point");
        assert!(!k(2, 5, 9).covers(&k(3, 5, 9)), "another leader term");
        assert_eq!(EntriesKey::of(&req(2, 5, 5)), None, "a heartbeat has no key: it is always sent");
    }

    #[tokio::test(start_paused = true)]
    async fn callers_whose_deadline_passes_join_the_request_on_the_wire_until_it_is_answered() {
        // openraft gives every AppendEntries 100 ms; this follower needs 250 ms each time.
        let lane = Lane::default();
        let sent = Arc::new(AtomicUsize::new(0));
        let key = EntriesKey::of(&req(1, 0, 10)).unwrap();
        let mut answered = None;
        for attempt in 0..10 {
            let deadline = Instant::now() + Duration::from_millis(100);
            if let Some(r) = lane.append(key.clone(), deadline, slow(&sent, Duration::from_millis(250))).await {
                answered = Some((attempt, r));
                break;
            }
        }
        let (attempt, result) = answered.expect("the entries were acknowledged");
        assert!(result.is_ok());
        assert_eq!(attempt, 2, "answered by the third call, when the first request completed");
        assert_eq!(sent.load(Ordering::SeqCst), 1, "the entries went on the wire once");
    }

    #[tokio::test(start_paused = true)]
    async fn new_entries_wait_for_the_request_on_the_wire_then_go_out() {
        let lane = Lane::default();
        let sent = Arc::new(AtomicUsize::new(0));
        let first = EntriesKey::of(&req(1, 0, 10)).unwrap();
        let far = Instant::now() + Duration::from_secs(5);
        let slow_first = slow(&sent, Duration::from_millis(300));
        let t0 = Instant::now();
        let (a, b) = tokio::join!(lane.append(first, far, slow_first), async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            lane.append(EntriesKey::of(&req(1, 10, 20)).unwrap(), far, slow(&sent, Duration::from_millis(300))).await
        });
        assert!(a.unwrap().is_ok() && b.unwrap().is_ok());
        assert_eq!(sent.load(Ordering::SeqCst), 2);
        assert!(t0.elapsed() >= Duration::from_millis(600), "one request on the wire at a time");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_answer_is_not_reused() {
        let lane = Lane::default();
        let key = EntriesKey::of(&req(1, 0, 3)).unwrap();
        let far = Instant::now() + Duration::from_secs(5);
        let failing = async { Err(tonic::Status::unavailable("connection reset")) };
        assert!(lane.append(key.clone(), far, failing).await.unwrap().is_err());
        let sent = Arc::new(AtomicUsize::new(0));
        assert!(lane.append(key, far, slow(&sent, Duration::from_millis(1))).await.unwrap().is_ok());
        assert_eq!(sent.load(Ordering::SeqCst), 1, "sent again after the failure");
    }

    /// Regression (seen in a 30-minute chaos run, with a peer refusing connections at once): a
    /// caller whose own request failed before it looked again took the path of a caller that had
    /// not sent yet, and panicked ("a caller sends at most once"). The failure must come back as
    /// the answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_that_fails_at_once_is_the_answer_not_a_panic() {
        let lane = Arc::new(Lane::default());
        for i in 0..2_000u64 {
            let key = EntriesKey::of(&req(1, i, i + 1)).unwrap();
            let far = Instant::now() + Duration::from_secs(5);
            let refused = async { Err(tonic::Status::unavailable("tcp connect error")) };
            let got = lane.append(key, far, refused).await;
            assert!(got.is_some_and(|r| r.is_err()), "attempt {i}");
        }
    }
}
