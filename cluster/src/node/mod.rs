//! Starting and stopping a node: open the store, build Raft with its gRPC network, serve the Raft
//! and IPAM services (and metrics), bootstrap the static membership when this is the first start.

pub mod bootstrap;
pub mod http;
mod options;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use proto::ipam::ipam_server::IpamServer;
use proto::raft::raft_server::RaftServer;
use raft_store::types::{display_id, incarnation, typ};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;

use bootstrap::{Discovery, Gate, Rejoin};
pub use options::{parse_cluster_name, parse_initial_cluster, ClusterState, InitialCluster, LogFormat, NodeOptions};

use crate::leader_lease::LeaderLease;
use crate::metrics::Metrics;
use crate::proposer::{Proposer, RaftLog};
use crate::raft_net::server::RaftService;
use crate::raft_net::{client::PeerNetwork, MAX_RAFT_MESSAGE_BYTES};
use crate::service::{Context, IpamService, PeerClients};
use crate::tls::Transport;

/// A running node.
pub struct Node {
    /// Its id.
    pub id: u64,
    /// The address its gRPC server listens on.
    pub addr: SocketAddr,
    /// The address its metrics server listens on, if any.
    pub metrics_addr: Option<SocketAddr>,
    /// Its Raft handle.
    pub raft: typ::Raft,
    /// The Kubernetes exporter's and reconciler's metrics (also served on `/metrics`).
    #[cfg(feature = "kubernetes")]
    pub kube_metrics: Arc<crate::kube::KubeMetrics>,
    /// What its handlers share.
    pub ctx: Arc<Context>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    store_alive: std::sync::Weak<()>,
    restart: watch::Receiver<Option<String>>,
}

fn raft_config(opts: &NodeOptions) -> anyhow::Result<openraft::Config> {
    let config = openraft::Config {
        cluster_name: opts.cluster_name.clone(),
        heartbeat_interval: opts.heartbeat_ms,
        election_timeout_min: opts.election_timeout_ms,
        election_timeout_max: opts.election_timeout_ms * 2,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(opts.snapshot_threshold.max(1)),
        max_in_snapshot_log_to_keep: (opts.snapshot_threshold / 10).min(1_000),
        max_payload_entries: 64,
        snapshot_max_chunk_size: 4 << 20,
        install_snapshot_timeout: 10_000,
        ..Default::default()
    };
    config.validate().context("invalid Raft timing options")
}

impl Node {
    /// Binds `opts.listen` (and the metrics address) and starts the node.
    pub async fn start(opts: NodeOptions) -> anyhow::Result<Node> {
        let listener =
            TcpListener::bind(opts.listen).await.with_context(|| format!("cannot listen on {}", opts.listen))?;
        Node::start_on(opts, listener).await
    }

    /// Starts the node on an already bound listener (tests bind port 0 first).
    pub async fn start_on(opts: NodeOptions, listener: TcpListener) -> anyhow::Result<Node> {
        let transport = transport(&opts)?;
        let network = PeerNetwork::new(&opts.cluster_name, transport);
        Node::start_with(opts, listener, network).await
    }

    /// Starts the node with a given Raft network (tests wrap [`PeerNetwork`] to inject link faults).
    pub async fn start_with<N>(opts: NodeOptions, listener: TcpListener, network: N) -> anyhow::Result<Node>
    where
        N: openraft::network::RaftNetworkFactory<raft_store::types::TypeConfig>,
    {
        let addr = listener.local_addr()?;
        let transport = transport(&opts)?;
        let metrics_listener = match opts.metrics_listen {
            Some(a) => Some(http::bind(a).await.with_context(|| format!("cannot serve metrics on {a}"))?),
            None => None,
        };
        for (flag, set) in [("--request-cache", opts.request_cache.is_some()), ("--history", opts.history.is_some())] {
            if set {
                tracing::warn!(
                    flag,
                    "ignored: the state's limits are replicated (every node must apply the same); set them with \
                     `whereabouts-ctl settings`"
                );
            }
        }
        check_founders(&opts)?;
        let opened = raft_store::open(&opts.data_dir, &opts.cluster_name, opts.id)
            .with_context(|| format!("cannot open data directory {}", opts.data_dir.display()))?;
        let (log, id) = (opened.log.clone(), opened.id);
        let pristine = log.is_pristine().context("cannot read the Raft log")?;
        let replaces = log.replaces().context("cannot read the Raft log")?;
        // An empty node takes no part in Raft until it knows whether a cluster exists and knew it.
        let deciding = pristine && incarnation(id) == 0 && replaces.is_empty();
        if deciding && opts.initial_cluster_state == ClusterState::Existing {
            check_peers_to_ask(&opts)?;
        }
        let rejoining = !replaces.is_empty() || (pristine && incarnation(id) > 0);
        let gate = Gate::new(!deciding);
        let store_alive = log.closed_when_gone();
        let machine = opened.state_machine.shared();
        let raft_log_machine = machine.clone();
        let formats = opened.formats.clone();
        let config = Arc::new(raft_config(&opts)?);
        let raft = openraft::Raft::new(id, config, network, opened.log, opened.state_machine)
            .await
            .context("cannot start Raft")?;

        #[cfg(feature = "kubernetes")]
        let kube_metrics = Arc::new(crate::kube::KubeMetrics::default());
        #[cfg(feature = "kubernetes")]
        let metrics = Metrics::new(&[&*kube_metrics]);
        #[cfg(not(feature = "kubernetes"))]
        let metrics = Metrics::default();
        let ctx = Arc::new(Context {
            id,
            cluster: opts.cluster_name.clone(),
            raft: raft.clone(),
            machine,
            proposer: Proposer::start(
                RaftLog { raft: raft.clone(), machine: raft_log_machine },
                opts.max_batch,
                opts.max_in_flight,
            ),
            peers: PeerClients::new(transport.clone()),
            metrics: Arc::new(metrics),
            request_timeout: Duration::from_millis(opts.request_timeout_ms),
            transport: transport.clone(),
            lease: LeaderLease::for_election_timeout(Duration::from_millis(opts.election_timeout_ms * 2)),
        });
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();

        let wait = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let ipam = IpamServer::new(IpamService::new(ctx.clone()))
            .max_decoding_message_size(proto::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(proto::MAX_MESSAGE_BYTES * 16);
        let raft_svc = RaftServer::new(RaftService::new(
            raft.clone(),
            id,
            &opts.cluster_name,
            transport.is_tls(),
            gate.clone(),
            ctx.machine.clone(),
            formats.clone(),
        ))
        .max_decoding_message_size(MAX_RAFT_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_RAFT_MESSAGE_BYTES);
        let router = tonic::transport::Server::builder()
            .concurrency_limit_per_connection(1024)
            // After a pause (SIGSTOP, a VM stall, a long GC of the host) a node finds many streams
            // its callers already gave up on; at h2's default of 20 it tears the connection down
            // with ENHANCE_YOUR_CALM, failing every call still in flight on it (a follower's
            // forwarded calls share one connection). Still bounded, as the rapid-reset defence
            // needs.
            .http2_max_pending_accept_reset_streams(Some(1024))
            .http2_keepalive_interval(Some(Duration::from_secs(10)))
            .add_service(ipam)
            .add_service(raft_svc);
        let shutdown = wait(stopped.clone());
        tasks.push(match &transport {
            Transport::Insecure => {
                let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
                tokio::spawn(
                    async move { log_server_end(router.serve_with_incoming_shutdown(incoming, shutdown).await) },
                )
            }
            Transport::Tls(material) => {
                let incoming = crate::tls::incoming::accept(listener, material.clone());
                tokio::spawn(
                    async move { log_server_end(router.serve_with_incoming_shutdown(incoming, shutdown).await) },
                )
            }
        });
        let metrics_addr = match metrics_listener {
            Some(l) => {
                let a = l.local_addr()?;
                let ctx = ctx.clone();
                let shutdown = wait(stopped.clone());
                tasks.push(tokio::spawn(async move {
                    if let Err(e) = http::serve(l, ctx, shutdown).await {
                        tracing::error!(error = %e, "metrics server failed");
                    }
                }));
                Some(a)
            }
            None => None,
        };

        #[cfg(feature = "kubernetes")]
        tasks.extend(crate::kube::start(&opts.kube, ctx.clone(), kube_metrics.clone(), stopped.clone()));
        #[cfg(not(feature = "kubernetes"))]
        tasks.extend(crate::kube::start(&opts.kube, ctx.clone(), stopped.clone()));
        let (restart_tx, restart) = watch::channel(None);
        if deciding {
            let discovery = Discovery {
                me: opts.id,
                cluster: opts.cluster_name.clone(),
                founders: opts.initial_cluster.0.clone(),
                wait: Duration::from_millis(opts.bootstrap_wait_ms),
                transport: transport.clone(),
                existing: opts.initial_cluster_state == ClusterState::Existing,
            };
            let settle = bootstrap::settle(discovery, ctx.clone(), log.clone(), gate, stopped.clone(), restart_tx);
            tasks.push(tokio::spawn(settle));
        }
        if rejoining {
            let rejoin = Rejoin {
                id,
                addr: opts.advertised(),
                replaces,
                members: opts.initial_cluster.0.values().cloned().collect(),
                log: log.clone(),
                ctx: ctx.clone(),
            };
            tasks.push(tokio::spawn(rejoin.run(stopped.clone())));
        }
        tracing::info!(id = %display_id(id), %addr, advertise = %opts.advertised(), data_dir = %opts.data_dir.display(), deciding, rejoining, "node started");
        Ok(Node {
            id,
            addr,
            metrics_addr,
            raft,
            #[cfg(feature = "kubernetes")]
            kube_metrics,
            ctx,
            stop,
            tasks,
            store_alive,
            restart,
        })
    }

    /// Stops serving and shuts Raft down; the data directory can be opened again afterwards.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        self.raft.shutdown().await.map_err(|e| anyhow::anyhow!("raft shutdown failed: {e}"))?;
        drop(self.ctx);
        drop(self.raft);
        // openraft's replication tasks drop their log readers shortly after shutdown; wait (bounded)
        // until the store is closed so the data directory can be reopened at once.
        for _ in 0..500 {
            if self.store_alive.strong_count() == 0 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        anyhow::bail!("the Raft log store was still open 5 s after shutdown")
    }
}

impl Node {
    /// Resolves when this node must be started again under a new identity (an empty founder that
    /// found the cluster existing recorded its new incarnation), with the reason.
    pub async fn restart_requested(&self) -> String {
        let mut restart = self.restart.clone();
        let reason = match restart.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            Err(_) => None,
        };
        match reason {
            Some(reason) => reason,
            None => std::future::pending().await,
        }
    }

    /// Resolves when Raft stopped on a fatal error (a storage failure such as a full disk), with
    /// the reason. Acknowledged writes are on a majority's disk, so the safe reaction is to stop
    /// this process and let its supervisor restart it once the cause is fixed.
    pub async fn fatal(&self) -> String {
        let mut metrics = self.raft.metrics();
        loop {
            if let Err(e) = &metrics.borrow().running_state {
                return e.to_string();
            }
            if metrics.changed().await.is_err() {
                return "raft stopped".into();
            }
        }
    }
}

fn log_server_end(result: Result<(), tonic::transport::Error>) {
    if let Err(e) = result {
        tracing::error!(error = %e, "gRPC server failed");
    }
}

/// The transport the options ask for: TLS with the given files, or plain TCP only with an explicit
/// `--insecure`, which is logged loudly.
fn transport(opts: &NodeOptions) -> anyhow::Result<Transport> {
    let transport = Transport::from_options(&opts.tls, Duration::from_secs(opts.tls_reload_seconds.max(1)))
        .context("cannot set up TLS")?;
    if !transport.is_tls() {
        tracing::warn!(
            listen = %opts.listen,
            "--insecure: running WITHOUT TLS (plain TCP): no authentication, anyone who can reach this port can change IPAM state"
        );
    }
    Ok(transport)
}

/// Runs a node until SIGINT or SIGTERM (clean shutdown) or a fatal Raft error (exit with an error);
/// starts it again in place when it takes a new identity (see [`bootstrap`]).
pub async fn run(opts: NodeOptions) -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let node = Node::start(opts.clone()).await?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted, shutting down"),
            _ = term.recv() => tracing::info!("terminated, shutting down"),
            reason = node.fatal() => {
                tracing::error!(%reason, "raft stopped on a fatal error; exiting so that the node restarts once the cause is fixed");
                anyhow::bail!("raft stopped on a fatal error: {reason}");
            }
            reason = node.restart_requested() => {
                tracing::info!(%reason, "starting again under the new identity");
                node.shutdown().await?;
                continue;
            }
        }
        return node.shutdown().await;
    }
}

/// An empty node joining an existing cluster asks the members in `--initial-cluster` whether its
/// id was a voter whose data was lost before it takes part; with no one to ask it would wait
/// forever (an `add-learner` would then add a node that never answers), so it refuses to start.
fn check_peers_to_ask(opts: &NodeOptions) -> anyhow::Result<()> {
    if opts.initial_cluster.0.keys().any(|peer| *peer != opts.id) {
        return Ok(());
    }
    anyhow::bail!(
        "--initial-cluster-state existing with an empty data directory needs --initial-cluster listing members of \
         the cluster (ID=HOST:PORT,..., e.g. the founders): this node asks them whether id {} was a member whose \
         data was lost before it takes part (docs/operations.md, \"Scale (3 → 5 → 3)\")",
        opts.id
    )
}

/// Refuses founder lists that cannot work, before anything is opened.
fn check_founders(opts: &NodeOptions) -> anyhow::Result<()> {
    let members = &opts.initial_cluster.0;
    if opts.initial_cluster_state != ClusterState::New {
        return Ok(());
    }
    if members.is_empty() {
        anyhow::bail!("--initial-cluster is empty: a new cluster needs its founding members (or use --initial-cluster-state existing)");
    }
    if !members.contains_key(&opts.id) {
        anyhow::bail!("node id {} is not in --initial-cluster ({:?})", opts.id, members.keys().collect::<Vec<_>>());
    }
    Ok(())
}
