//! The running node: wires the store, the ledger writer, the network and the API together, runs the
//! background tasks, and shuts everything down on SIGINT or SIGTERM. Nothing here decides anything;
//! each job lives in its own module.
//!
//! Tasks, each named, each a loop that runs until the node stops:
//! - the **ledger writer** thread ([`crate::writer`]) applies every write in turn;
//! - the **network** task ([`crate::p2p`]) owns the libp2p swarm;
//! - **dispatch** ([`crate::dispatch`]) hands inbound gossip and requests to their handlers, a
//!   bounded number at once;
//! - **anti-entropy** ([`crate::sync`]) asks peers for their heads and fetches what is missing;
//! - **rejoin** ([`crate::rejoin`]) confirms with partners, once after the start, that none holds
//!   more of our own log or votes than the store does, before the writer signs anything;
//! - **epoch close** ([`crate::epoch::close`]) closes our log's epochs as they end;
//! - **seal** ([`crate::epoch::seal`]) computes, signs, collects and anchors checkpoints;
//! - **in-flight retry** ([`crate::ops::inflight`]) completes redemptions a restart interrupted;
//! - the **HTTP API** ([`crate::api`]) serves the POS, members and auditors.
//!
//! If any task ends (they never do unless something is badly wrong, a panic say), the node says so
//! and shuts down with an error instead of running on without it.

use crate::api::{self, App};
use crate::config::Config;
use crate::dispatch;
use crate::epoch::{close, seal};
use crate::metrics::Metrics;
use crate::node::{Identity, Node, NodeParts};
use crate::ops::{inflight, redeem::Redeemer};
use crate::p2p::{self, NetworkConfig, NetworkHandle};
use crate::rejoin;
use crate::store::Store;
use crate::sync::Replicator;
use crate::writer::{self, WriterConfig};
use anyhow::Context;
use coalition_core::clock::{self, SharedClock};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The exit status of `coalition-node` after [`StorageFailed`] (`EX_TEMPFAIL`): a supervisor restarts
/// it, and it runs again once the disk has space.
pub const EXIT_STORAGE_FAILED: i32 = 75;

/// The node stopped because a write or sync to disk failed (a full disk, an I/O error). Nothing it
/// acknowledged is lost: every acknowledged write was synced before its answer.
#[derive(Debug, thiserror::Error)]
#[error("storage failed: {reason}; the node stopped: restart it once its disk has space")]
pub struct StorageFailed {
    /// The failed write's error.
    pub reason: String,
}

/// Runs the node on the system clock until SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .with_context(|| format!("binding the API to {}", config.api_listen))?;
    let running = start(&config, clock::system()).await?;
    tracing::info!(
        partner = %running.node.name_of(&config.me),
        id = %config.me.short(),
        api = %config.api_listen,
        p2p = %config.file.p2p_listen,
        "node started"
    );
    running.serve(listener, shutdown_signal()).await
}

/// A started node: its tasks run, its API is ready to be served ([`Running::serve`]).
pub struct Running {
    node: Arc<Node>,
    app: axum::Router,
    net: NetworkHandle,
    writer_thread: std::thread::JoinHandle<()>,
    /// Holds the tasks; aborting it stops them all.
    supervisor: tokio::task::JoinHandle<()>,
    /// The name of the first task that ended, once one has.
    task_ended: watch::Receiver<Option<&'static str>>,
    /// TLS for the API, when configured.
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Opens the store, starts the writer, the network and every task, with time from `clock`.
pub async fn start(config: &Config, clock: SharedClock) -> anyhow::Result<Running> {
    // Read before anything starts, so a bad certificate is a clear refusal at start.
    let tls = match (&config.file.tls_cert, &config.file.tls_key) {
        (Some(cert), Some(key)) => Some(api::tls::acceptor(cert, key)?),
        _ => None,
    };
    let genesis = config.genesis.clone();
    let store = Store::open(&config.file.data_dir, genesis.hash(), config.me)
        .with_context(|| format!("opening the store in {}", config.file.data_dir.display()))?;
    let reader = store.reader();
    let progress = seal::load_progress(&reader, genesis.quorum()).context("reading checkpoints")?;
    let writer_config = WriterConfig {
        genesis: genesis.clone(),
        keypair: config.keypair.clone(),
        clock: clock.clone(),
        closed_until_rejoined: rejoin::confirmations_needed(&genesis) > 0,
    };
    let (writer, writer_thread) =
        writer::spawn(writer_config, store).context("starting the ledger writer")?;
    let writer_ended = writer_thread.ended;
    let writer_thread = writer_thread.handle;

    let net_config = NetworkConfig::new(
        config.keypair.secret_bytes(),
        config.file.p2p_listen.clone(),
        config.file.peers.clone(),
        genesis.clone(),
    );
    let (net, events) = p2p::spawn(net_config)
        .await
        .context("starting the network")?;

    let (progress_tx, progress_rx) = watch::channel(progress);
    let metrics = Arc::new(Metrics::new());
    metrics.initialise_labels(&crate::error::NodeError::REDEMPTION_REASONS);
    let node = Arc::new(Node::new(NodeParts {
        genesis: genesis.clone(),
        identity: Identity {
            me: config.me,
            keypair: config.keypair.clone(),
        },
        store: reader,
        writer,
        net: net.clone(),
        metrics,
        clock,
        seal: progress_rx,
        anchor_file: config.anchor_file.clone(),
    }));

    let replicator = Replicator::new(node.clone());
    let redeemer = Redeemer::new(
        node.clone(),
        Duration::from_millis(config.file.vote_timeout_ms),
    );
    let mut tasks = Tasks::default();
    // The writer thread stops only with the node, or when a sync to disk fails: then nothing can be
    // written any more, and the node stops rather than answer every write with an error.
    tasks.spawn("ledger writer", async move {
        let _ = writer_ended.await;
    });
    tasks.spawn(
        "dispatch",
        dispatch::run(node.clone(), replicator.clone(), events),
    );
    tasks.spawn(
        "anti-entropy",
        replicator
            .clone()
            .run(Duration::from_secs(config.file.anti_entropy_secs)),
    );
    tasks.spawn("store verification", verify_store(node.clone()));
    tasks.spawn("rejoin", rejoin::run(node.clone(), replicator));
    tasks.spawn("epoch close", close::run(node.clone()));
    let sealer = seal::Sealer::new(node.clone(), config.anchor_file.clone(), progress_tx);
    tasks.spawn("seal", sealer.run());
    tasks.spawn(
        "in-flight retry",
        inflight::run(redeemer.clone(), inflight::RETRY_INFLIGHT_EVERY),
    );
    // A task that ends stops the node: the supervisor names it, and the API shuts down as on a
    // signal. Aborting the supervisor drops the task set, which stops every task.
    let (stop_tx, task_ended) = watch::channel(None::<&'static str>);
    let supervisor = tokio::spawn(async move {
        let ended = tasks.first_to_end().await;
        let _ = stop_tx.send(Some(ended));
        std::future::pending::<()>().await;
    });

    let app = api::router(App {
        node: node.clone(),
        redeemer,
        token: config.file.api_token.clone(),
        auditor_tokens: config.file.auditor_tokens.clone(),
    });
    Ok(Running {
        node,
        app,
        net,
        writer_thread,
        supervisor,
        task_ended,
        tls,
    })
}

impl Running {
    /// The node.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Serves the API on `listener` until `shutdown` completes or a task ends, then stops every
    /// task, the network and the writer (the store closes cleanly). An error if a task ended.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Running {
            node,
            app,
            net,
            writer_thread,
            supervisor,
            task_ended,
            tls,
        } = self;
        let mut ended = task_ended.clone();
        let stopping = async move {
            tokio::select! {
                _ = shutdown => {}
                _ = ended.wait_for(Option::is_some) => {}
            }
        };
        let limits = api::Limits::for_descriptors(api::raise_descriptor_limit());
        tracing::info!(
            max_connections = limits.max_connections,
            max_per_client = limits.max_per_client,
            "API connection limits"
        );
        if tls.is_some() {
            tracing::info!("the API serves TLS");
        }
        let served = api::serve(listener, app, limits, tls, stopping)
            .await
            .context("serving the API");
        let failed_task = *task_ended.borrow();
        let storage_failure = node.writer().storage_failure().map(str::to_owned);

        tracing::info!("shutting down");
        supervisor.abort();
        let _ = supervisor.await;
        net.shutdown().await;
        drop(node);
        // The writer stops once the last handle is gone; wait so the store closes cleanly.
        let _ = tokio::task::spawn_blocking(move || writer_thread.join()).await;
        tracing::info!("stopped");
        served?;
        if let Some(reason) = storage_failure {
            return Err(StorageFailed { reason }.into());
        }
        match failed_task {
            Some(name) => anyhow::bail!("the {name} task stopped unexpectedly; the node shut down"),
            None => Ok(()),
        }
    }
}

/// Reads the whole database once, in the background, so a damaged SST file stops the node at start
/// instead of failing whichever request first reads it. Runs until the node stops; returns (and so
/// stops the node) only on damage.
async fn verify_store(node: Arc<Node>) {
    /// Stops the pass when this task is dropped (the node is stopping).
    struct CancelOnDrop(Arc<AtomicBool>);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let cancelled = Arc::new(AtomicBool::new(false));
    let _cancel = CancelOnDrop(cancelled.clone());
    let started = std::time::Instant::now();
    match node
        .blocking(move |store| store.verify_all(&cancelled))
        .await
    {
        Ok(Some(values)) => tracing::info!(
            values,
            secs = started.elapsed().as_secs_f64(),
            "database verified: every block's checksum holds"
        ),
        Ok(None) => {}
        Err(e) if e.to_string().contains("Corruption") => {
            tracing::error!(
                error = %e,
                "the database is damaged; the node stops. Keep the directory as it is and do not \
                 start this partner on an older copy or an empty directory: see \"A damaged \
                 database\" in docs/operating.md"
            );
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read the database to verify it; the node stops");
            return;
        }
    }
    std::future::pending::<()>().await
}

/// The node's background tasks, by name.
#[derive(Default)]
struct Tasks {
    set: JoinSet<()>,
    names: HashMap<tokio::task::Id, &'static str>,
}

impl Tasks {
    /// Starts `task` under `name`.
    fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        tracing::debug!(task = name, "task started");
        let id = self.set.spawn(task).id();
        self.names.insert(id, name);
    }

    /// Waits for the first task to end (by returning or by a panic) and names it, loudly.
    async fn first_to_end(&mut self) -> &'static str {
        let Some(ended) = self.set.join_next_with_id().await else {
            return std::future::pending().await;
        };
        let (id, panic) = match ended {
            Ok((id, ())) => (id, None),
            Err(e) => (e.id(), Some(e)),
        };
        let name = self.names.get(&id).copied().unwrap_or("unnamed");
        match panic {
            None => tracing::error!(task = name, "a node task ended; shutting down"),
            Some(e) => {
                tracing::error!(task = name, error = %e, "a node task panicked; shutting down")
            }
        }
        name
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_task_to_end_is_named_even_when_it_panics() {
        let mut tasks = Tasks::default();
        tasks.spawn("forever", std::future::pending());
        tasks.spawn("panics", async { panic!("boom") });
        assert_eq!(tasks.first_to_end().await, "panics");
        let mut tasks = Tasks::default();
        tasks.spawn("forever", std::future::pending());
        tasks.spawn("returns", async {});
        assert_eq!(tasks.first_to_end().await, "returns");
    }
}
