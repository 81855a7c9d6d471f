//! Sealing checkpoints (DESIGN.md §5): once every partner has closed an epoch and every entry of that
//! epoch has applied here, the seal task computes the epoch's settlement statement and checkpoint,
//! signs the checkpoint and gossips the signature; q matching signatures seal it; sealed epochs are
//! appended to the anchor file in order.
//!
//! Signatures travel by gossip ([`on_signature`]) and, for a node that missed them (it was down, or
//! joined late), by asking connected peers for the signatures they hold
//! ([`Request::GetCheckpointSigs`]) until the epoch is sealed: all peers and epochs at once, a
//! bounded number in flight, each with a short timeout, so one slow partner holds nothing up.
//! Everything computed is stored, so a restart resumes where it stopped. The task is the only one
//! that moves [`SealProgress`]; others read it from the node.

use super::anchor;
use crate::node::{Node, SealProgress};
use crate::p2p::{Gossip, Request, Response};
use crate::store::{SigOutcome, Store, StoreError};
use crate::writer::WriterError;
use coalition_core::checkpoint::{Checkpoint, CheckpointError, CheckpointSig};
use coalition_core::genesis::Genesis;
use coalition_core::log::LogClose;
use coalition_core::record::{Epoch, PartnerId};
use coalition_core::settlement::{compute_statement, ActivityBuilder, SettlementError};
use coalition_core::state::Overflow;
use futures::stream::{self, StreamExt};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the task looks for work.
const EVERY: Duration = Duration::from_secs(1);
/// Most unsealed epochs whose signatures are asked for per round.
const MAX_PULL_EPOCHS: u64 = 16;
/// Signature requests in flight at once.
const PULL_CONCURRENCY: usize = 8;
/// How long one signature request may take.
const PULL_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a round of sealing stopped.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing through the writer failed.
    #[error(transparent)]
    Writer(#[from] WriterError),
    /// The epoch's settlement cannot be computed.
    #[error("settlement of epoch {epoch}: {source}")]
    Settlement {
        /// The epoch.
        epoch: Epoch,
        /// Why.
        source: SettlementError,
    },
    /// The epoch's checkpoint cannot be computed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A sum of points overflows.
    #[error(transparent)]
    Overflow(#[from] Overflow),
    /// The statement or checkpoint of the epoch before is not stored.
    #[error("the {what} of epoch {epoch} is missing")]
    Missing {
        /// "statement" or "checkpoint".
        what: &'static str,
        /// Its epoch.
        epoch: Epoch,
    },
    /// The anchor file cannot be written.
    #[error("anchor file {}: {source}", .path.display())]
    Anchor {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Blocking work panicked.
    #[error("task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Where sealing stands, rebuilt from the store at start.
pub fn load_progress(store: &Store, quorum: usize) -> Result<SealProgress, StoreError> {
    let mut p = SealProgress::default();
    while store.checkpoint(p.computed)?.is_some() {
        p.computed += 1;
    }
    while p.sealed < p.computed && store.sealed_checkpoint(quorum, p.sealed)?.is_some() {
        p.sealed += 1;
    }
    Ok(p)
}

/// The seal task.
pub struct Sealer {
    node: Arc<Node>,
    anchor_file: PathBuf,
    progress: watch::Sender<SealProgress>,
}

impl Sealer {
    /// A sealer for `node`, anchoring into `anchor_file`, publishing its progress on `progress`.
    pub fn new(
        node: Arc<Node>,
        anchor_file: PathBuf,
        progress: watch::Sender<SealProgress>,
    ) -> Sealer {
        Sealer {
            node,
            anchor_file,
            progress,
        }
    }

    /// Recovers what a crash left undone, then seals as epochs become ready, until the node stops.
    pub async fn run(self) {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A store that lost entries would compute, and sign, another checkpoint than the one it
        // signed before: nothing is signed until the node has rejoined (crate::rejoin).
        while !self.node.writer().is_open() {
            tick.tick().await;
        }
        if let Err(e) = self.recover().await {
            tracing::error!(error = %e, "cannot recover checkpoint state");
        }
        loop {
            tick.tick().await;
            self.round().await;
        }
    }

    /// One round: compute what can be computed, collect signatures, seal, anchor.
    async fn round(&self) {
        if let Err(e) = self.compute_ready().await {
            tracing::error!(error = %e, "cannot compute checkpoint");
        }
        let SealProgress { computed, sealed } = *self.progress.borrow();
        if sealed < computed {
            self.pull_signatures(sealed, computed.min(sealed + MAX_PULL_EPOCHS))
                .await;
        }
        if let Err(e) = self.advance_sealed().await {
            tracing::error!(error = %e, "cannot record sealed checkpoint");
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, SealError> + Send + 'static,
    ) -> Result<T, SealError> {
        let store = self.node.store().clone();
        tokio::task::spawn_blocking(move || f(&store)).await?
    }

    /// After a restart: signs every computed checkpoint that lacks our signature (a database
    /// written before checkpoints and signatures were stored in one batch), and writes anchor lines
    /// for epochs sealed before the crash.
    async fn recover(&self) -> Result<(), SealError> {
        let SealProgress { computed, sealed } = *self.progress.borrow();
        let node = &self.node;
        let me = node.me();
        for epoch in sealed..computed {
            let (held, checkpoint) = self
                .blocking(move |s| Ok((s.checkpoint_sigs(epoch)?, s.checkpoint(epoch)?)))
                .await?;
            if held.iter().any(|s| s.partner == me) {
                continue;
            }
            let checkpoint = checkpoint.ok_or(SealError::Missing {
                what: "checkpoint",
                epoch,
            })?;
            let sig = CheckpointSig::sign(&checkpoint, node.keypair());
            node.writer().put_checkpoint_sig(sig).await?;
            tracing::info!(epoch, "signed a checkpoint left unsigned by a restart");
        }
        for epoch in 0..sealed {
            let quorum = node.genesis().quorum();
            let found = self
                .blocking(move |s| Ok(s.sealed_checkpoint(quorum, epoch)?))
                .await?;
            let Some(cp) = found else { break };
            self.anchor(epoch, &cp.checkpoint).await?;
        }
        Ok(())
    }

    /// Computes, stores, signs and gossips the checkpoint of every epoch that is ready, in order.
    async fn compute_ready(&self) -> Result<(), SealError> {
        let node = &self.node;
        loop {
            let epoch = self.progress.borrow().computed;
            let genesis = node.genesis().clone();
            let Some(closes) = self
                .blocking(move |s| closes_of(s, &genesis, epoch))
                .await?
            else {
                return Ok(());
            };
            // Every entry of this epoch must have applied: a parked certificate would change the
            // lots.
            if node
                .writer()
                .pending_min_epoch()
                .await
                .is_some_and(|e| e <= epoch)
            {
                return Ok(());
            }
            let genesis = node.genesis().clone();
            let (checkpoint, statement) = self
                .blocking(move |s| compute(s, &genesis, epoch, &closes))
                .await?;
            let sig = CheckpointSig::sign(&checkpoint, node.keypair());
            let transfers = statement.transfers.len();
            node.writer()
                .put_epoch(statement, checkpoint.clone(), sig.clone())
                .await?;
            self.progress.send_modify(|p| p.computed = epoch + 1);
            tracing::info!(
                epoch,
                checkpoint = %checkpoint.hash().short(),
                transfers,
                "checkpoint computed and signed"
            );
            if let Err(e) = node.net().publish(Gossip::CheckpointSig(sig)).await {
                tracing::debug!(error = %e, "checkpoint signature not gossiped; peers will ask for it");
            }
        }
    }

    /// Asks every connected partner for the signatures it holds of epochs `from..to`.
    async fn pull_signatures(&self, from: Epoch, to: Epoch) {
        let node = &self.node;
        let peers = node.net().connected_peers().await.unwrap_or_default();
        let asks: Vec<(Epoch, PartnerId)> = (from..to)
            .flat_map(|epoch| peers.iter().map(move |p| (epoch, *p)))
            .collect();
        let net = node.net().clone();
        // Each answer is stored as it arrives, not after the slowest.
        stream::iter(asks)
            .map(move |(epoch, peer)| {
                let net = net.clone();
                async move {
                    let req = Request::GetCheckpointSigs { epoch };
                    (peer, net.request_with_timeout(peer, req, PULL_TIMEOUT).await)
                }
            })
            .buffer_unordered(PULL_CONCURRENCY)
            .for_each(|(peer, answer)| {
                let node = node.clone();
                async move {
                    match answer {
                        Ok(Response::CheckpointSigs(sigs)) => {
                            for sig in sigs {
                                on_signature(&node, peer, sig).await;
                            }
                        }
                        Ok(other) => {
                            tracing::debug!(peer = %node.name_of(&peer), answer = other.kind(), "unexpected answer to a signature request")
                        }
                        Err(e) => {
                            tracing::debug!(peer = %node.name_of(&peer), error = %e, "signature request failed")
                        }
                    }
                }
            })
            .await;
    }

    /// Moves the sealed prefix forward and appends each newly sealed epoch to the anchor file.
    async fn advance_sealed(&self) -> Result<(), SealError> {
        let node = &self.node;
        loop {
            let SealProgress { computed, sealed } = *self.progress.borrow();
            if sealed >= computed {
                return Ok(());
            }
            let quorum = node.genesis().quorum();
            let found = self
                .blocking(move |s| Ok(s.sealed_checkpoint(quorum, sealed)?))
                .await?;
            let Some(cp) = found else {
                self.warn_if_disagreeing(sealed).await?;
                return Ok(());
            };
            self.anchor(sealed, &cp.checkpoint).await?;
            self.progress.send_modify(|p| p.sealed = sealed + 1);
            node.metrics().checkpoints_sealed.inc();
            tracing::info!(epoch = sealed, checkpoint = %cp.checkpoint.hash().short(), signatures = cp.signatures.len(), "checkpoint sealed");
        }
    }

    /// Appends the line of a sealed epoch to the anchor file (idempotent).
    async fn anchor(&self, epoch: Epoch, checkpoint: &Checkpoint) -> Result<(), SealError> {
        let path = self.anchor_file.clone();
        let (genesis_hash, hash) = (self.node.genesis().hash(), checkpoint.hash());
        tokio::task::spawn_blocking(move || {
            anchor::append(&path, &genesis_hash, epoch, &hash)
                .map_err(|source| SealError::Anchor { path, source })
        })
        .await?
    }

    /// Logs loudly when a quorum signed a checkpoint other than ours: our state has diverged.
    async fn warn_if_disagreeing(&self, epoch: Epoch) -> Result<(), SealError> {
        let (ours, sigs) = self
            .blocking(move |s| Ok((s.checkpoint(epoch)?, s.checkpoint_sigs(epoch)?)))
            .await?;
        let ours = ours.map(|c| c.hash());
        let mut votes: BTreeMap<_, usize> = BTreeMap::new();
        for s in sigs {
            *votes.entry(s.checkpoint).or_default() += 1;
        }
        for (hash, count) in votes {
            if Some(hash) != ours && count >= self.node.genesis().quorum() {
                tracing::error!(epoch, theirs = %hash.short(), "a quorum sealed a checkpoint that differs from ours");
            }
        }
        Ok(())
    }
}

/// Every partner's close of `epoch`, if all are here.
fn closes_of(
    store: &Store,
    genesis: &Genesis,
    epoch: Epoch,
) -> Result<Option<BTreeMap<PartnerId, LogClose>>, SealError> {
    let mut out = BTreeMap::new();
    for p in &genesis.partners {
        match store.close(&p.id, epoch)? {
            Some(c) => {
                out.insert(p.id, c);
            }
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// The statement and checkpoint of `epoch`, from the lots (streamed, not held) and the epoch
/// before.
fn compute(
    store: &Store,
    genesis: &Genesis,
    epoch: Epoch,
    closes: &BTreeMap<PartnerId, LogClose>,
) -> Result<(Checkpoint, coalition_core::settlement::SettlementStatement), SealError> {
    let mut activity = ActivityBuilder::new(genesis, epoch);
    store.try_for_each_lot(|lot| activity.add(lot).map_err(SealError::from))?;
    let activity = activity.finish();
    let (prev_statement, prev_checkpoint) = match epoch.checked_sub(1) {
        None => (None, None),
        Some(p) => {
            let missing = |what| SealError::Missing { what, epoch: p };
            let statement = store.statement(p)?.ok_or_else(|| missing("statement"))?;
            let checkpoint = store.checkpoint(p)?.ok_or_else(|| missing("checkpoint"))?;
            (Some(statement), Some(checkpoint.hash()))
        }
    };
    let statement = compute_statement(genesis, &activity, prev_statement.as_ref())
        .map_err(|source| SealError::Settlement { epoch, source })?;
    let checkpoint =
        Checkpoint::compute(genesis, epoch, closes, prev_checkpoint, statement.hash())?;
    Ok((checkpoint, statement))
}

/// The signatures we hold for `epoch`, to answer a peer.
pub async fn signatures_for(node: &Node, epoch: Epoch) -> Response {
    match node.blocking(move |s| s.checkpoint_sigs(epoch)).await {
        Ok(sigs) => Response::CheckpointSigs(sigs).fit_to_limits(),
        Err(e) => Response::Error {
            message: e.to_string(),
        },
    }
}

/// A checkpoint signature arrived (gossip from `from`, or relayed in an answer): keep it if it is a
/// valid signature of a genesis partner for an epoch that can exist.
pub async fn on_signature(node: &Node, from: PartnerId, sig: CheckpointSig) {
    let from_name = node.name_of(&from);
    if !node.genesis().is_partner(&sig.partner) {
        tracing::warn!(from = %from_name, "checkpoint signature by a non-partner");
        return;
    }
    if sig.epoch > node.genesis().epoch_at(node.now()) {
        tracing::warn!(from = %from_name, epoch = sig.epoch, "checkpoint signature for a future epoch");
        return;
    }
    if let Err(e) = sig.verify() {
        tracing::warn!(from = %from_name, error = %e, "bad checkpoint signature");
        return;
    }
    let (epoch, signer) = (sig.epoch, sig.partner);
    match node.writer().put_checkpoint_sig(sig).await {
        Ok(SigOutcome::Conflict { .. }) => tracing::error!(
            partner = %node.name_of(&signer),
            epoch,
            "partner signed two different checkpoints for one epoch; keeping the first"
        ),
        Ok(SigOutcome::Stored | SigOutcome::Duplicate) => {}
        Err(e) => tracing::warn!(error = %e, "cannot store checkpoint signature"),
    }
}
