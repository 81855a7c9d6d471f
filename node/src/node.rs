//! [`Node`]: the handles every operation and task of a running node shares. It holds no task
//! state: each task owns its own and publishes what others read through a handle here (the seal
//! task's progress, say).

use crate::error::NodeResult;
use crate::metrics::Metrics;
use crate::p2p::{Gossip, NetworkHandle};
use crate::store::{Store, StoreError};
use crate::writer::Writer;
use coalition_core::clock::SharedClock;
use coalition_core::crypto::Keypair;
use coalition_core::genesis::Genesis;
use coalition_core::record::{Epoch, PartnerId, SignedEntry, Timestamp};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::watch;

/// Which partner this node is.
#[derive(Clone)]
pub struct Identity {
    /// The partner.
    pub me: PartnerId,
    /// Its key: signs log entries, votes and checkpoints; its libp2p identity too.
    pub keypair: Arc<Keypair>,
}

/// How far this node has computed and sealed checkpoints: published by the seal task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SealProgress {
    /// Epochs `0..computed` have a stored checkpoint and statement.
    pub computed: Epoch,
    /// Epochs `0..sealed` are all sealed (contiguous).
    pub sealed: Epoch,
}

impl SealProgress {
    /// The newest epoch of the contiguous sealed prefix.
    pub fn last_sealed(&self) -> Option<Epoch> {
        self.sealed.checked_sub(1)
    }
}

/// The parts a node is made of.
pub struct NodeParts {
    /// The coalition.
    pub genesis: Arc<Genesis>,
    /// This partner.
    pub identity: Identity,
    /// Reads of the store.
    pub store: Store,
    /// The only writer.
    pub writer: Writer,
    /// The network.
    pub net: NetworkHandle,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Time.
    pub clock: SharedClock,
    /// The seal task's progress.
    pub seal: watch::Receiver<SealProgress>,
    /// Where sealed checkpoints are anchored (a backup copies it).
    pub anchor_file: PathBuf,
}

/// One partner's running node, shared by the API handlers and the background tasks.
pub struct Node {
    parts: NodeParts,
}

impl Node {
    /// A node of these parts.
    pub fn new(parts: NodeParts) -> Node {
        Node { parts }
    }
    /// The coalition.
    pub fn genesis(&self) -> &Arc<Genesis> {
        &self.parts.genesis
    }
    /// This partner.
    pub fn me(&self) -> PartnerId {
        self.parts.identity.me
    }
    /// This partner's key.
    pub fn keypair(&self) -> &Keypair {
        &self.parts.identity.keypair
    }
    /// Reads of the store (from blocking threads: see [`Node::blocking`]).
    pub fn store(&self) -> &Store {
        &self.parts.store
    }
    /// The ledger writer.
    pub fn writer(&self) -> &Writer {
        &self.parts.writer
    }
    /// The network.
    pub fn net(&self) -> &NetworkHandle {
        &self.parts.net
    }
    /// The anchor file.
    pub fn anchor_file(&self) -> &Path {
        &self.parts.anchor_file
    }
    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.parts.metrics
    }
    /// Now, by the node's clock.
    pub fn now(&self) -> Timestamp {
        self.parts.clock.now()
    }
    /// The seal task's progress, now.
    pub fn seal_progress(&self) -> SealProgress {
        *self.parts.seal.borrow()
    }
    /// The partner's display name (a key prefix for a stranger).
    pub fn name_of(&self, p: &PartnerId) -> String {
        self.genesis()
            .partner(p)
            .map(|g| g.name.clone())
            .unwrap_or_else(|| p.short())
    }

    /// Runs blocking store reads off the async executor.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> NodeResult<T> {
        let store = self.store().clone();
        Ok(tokio::task::spawn_blocking(move || f(&store)).await??)
    }

    /// Sends an entry of ours to every partner, in the background: a lost gossip is delivered by
    /// anti-entropy.
    pub fn gossip_entry(&self, entry: SignedEntry) {
        let net = self.net().clone();
        tokio::spawn(async move {
            if let Err(e) = net.publish(Gossip::Entry(entry)).await {
                tracing::debug!(error = %e, "gossip not sent; anti-entropy will deliver it");
            }
        });
    }
}
