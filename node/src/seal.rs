//! Sealing checkpoints (DESIGN.md §5): once every partner has closed an epoch and every entry of that
//! epoch has applied here, the node computes the epoch's settlement statement and checkpoint, signs
//! the checkpoint and gossips the signature; q matching signatures seal it; sealed epochs are
//! appended to the anchor file in order.
//!
//! Signatures travel by gossip and, for a node that missed them (it was down, or joined late), by
//! asking connected peers for the signatures they hold ([`Request::GetCheckpointSigs`]) until the
//! epoch is sealed. Everything computed is stored, so a restart resumes where it stopped.

use crate::anchor;
use crate::api::ApiError;
use crate::p2p::{Gossip, Request, Response};
use crate::service::Node;
use coalition_core::checkpoint::{epoch_activity, Checkpoint, CheckpointSig, SealedCheckpoint};
use coalition_core::encoding::{decode, encode};
use coalition_core::ledger::Lot;
use coalition_core::log::LogClose;
use coalition_core::record::{Epoch, PartnerId};
use coalition_core::settlement::{compute_statement, SettlementStatement};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Most unsealed epochs whose signatures are asked for per round.
const MAX_PULL_EPOCHS: u64 = 16;

/// What this node has computed and sealed. Rebuilt from the store at start.
#[derive(Debug, Default)]
pub struct SealState {
    /// Epochs `0..computed` have a stored checkpoint and statement.
    pub computed: Epoch,
    /// Epochs `0..sealed` are all sealed (contiguous).
    pub sealed: Epoch,
}

impl SealState {
    /// The newest epoch of the contiguous sealed prefix.
    pub fn last_sealed(&self) -> Option<Epoch> {
        self.sealed.checked_sub(1)
    }
}

/// Where sealing stands, for `status`.
pub struct Sealing {
    /// The newest sealed epoch.
    pub last_sealed: Option<Epoch>,
    /// Partners whose close of the next epoch to compute has not arrived here.
    pub awaiting: Vec<String>,
}

/// Rebuilds the state from the store.
pub fn load_state(node: &Node) -> Result<SealState, crate::store::StoreError> {
    let mut st = SealState::default();
    while node.store.checkpoint(st.computed)?.is_some() {
        st.computed += 1;
    }
    while st.sealed < st.computed && sealed_checkpoint(node, st.sealed)?.is_some() {
        st.sealed += 1;
    }
    Ok(st)
}

/// The checkpoint of `epoch` with the signatures that match it, if q of them do.
pub fn sealed_checkpoint(
    node: &Node,
    epoch: Epoch,
) -> Result<Option<SealedCheckpoint>, crate::store::StoreError> {
    let Some(bytes) = node.store.checkpoint(epoch)? else {
        return Ok(None);
    };
    let checkpoint: Checkpoint = decode(&bytes)
        .map_err(|e| crate::store::StoreError::Derive(format!("checkpoint {epoch}: {e}")))?;
    let id = checkpoint.hash();
    let mut signatures: Vec<CheckpointSig> = node
        .store
        .checkpoint_sigs(epoch)?
        .into_iter()
        .filter_map(|(_, b)| decode::<CheckpointSig>(&b).ok())
        .filter(|s| s.checkpoint == id && s.epoch == epoch)
        .collect();
    signatures.sort_by_key(|s| s.partner);
    signatures.dedup_by_key(|s| s.partner);
    let sealed = SealedCheckpoint {
        checkpoint,
        signatures,
    };
    if sealed.signatures.len() < node.genesis.quorum() {
        return Ok(None);
    }
    Ok(Some(sealed))
}

/// After a restart: signs every computed checkpoint that lacks our signature (a crash between
/// storing it and signing it), and writes anchor lines for epochs sealed before the crash.
pub async fn recover(node: &Arc<Node>, anchor_file: &Path) -> Result<(), ApiError> {
    let (computed, sealed) = {
        let st = node.seal.lock().await;
        (st.computed, st.sealed)
    };
    let me = node.me;
    for epoch in sealed..computed {
        let held = node.blocking(move |s| s.checkpoint_sigs(epoch)).await?;
        if held.iter().any(|(p, _)| *p == me) {
            continue;
        }
        let bytes = node.blocking(move |s| s.checkpoint(epoch)).await?;
        let checkpoint: Checkpoint =
            stored(bytes, "checkpoint", epoch).map_err(|e| ApiError::Internal(e.to_string()))?;
        let sig = encode(&CheckpointSig::sign(&checkpoint, &node.keypair));
        node.blocking(move |s| s.put_checkpoint_sig(epoch, &me, &sig))
            .await?;
        tracing::info!(epoch, "signed a checkpoint left unsigned by a restart");
    }
    for epoch in 0..sealed {
        let n = node.clone();
        let Some(cp) = node.blocking(move |_| sealed_checkpoint(&n, epoch)).await? else {
            break;
        };
        let (path, g, h) = (
            anchor_file.to_path_buf(),
            node.genesis.hash(),
            cp.checkpoint.hash(),
        );
        tokio::task::spawn_blocking(move || anchor::append(&path, &g, epoch, &h))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| {
                ApiError::Internal(format!("anchor file {}: {e}", anchor_file.display()))
            })?;
    }
    Ok(())
}

/// One round: compute what can be computed, collect signatures, seal, anchor.
pub async fn tick(node: &Arc<Node>, anchor_file: &Path) {
    if let Err(e) = compute_ready(node).await {
        tracing::error!(error = %e, "cannot compute checkpoint");
    }
    let (computed, sealed) = {
        let st = node.seal.lock().await;
        (st.computed, st.sealed)
    };
    if sealed < computed {
        pull_signatures(node, sealed, computed.min(sealed + MAX_PULL_EPOCHS)).await;
    }
    if let Err(e) = advance_sealed(node, anchor_file).await {
        tracing::error!(error = %e, "cannot record sealed checkpoint");
    }
}

/// Computes, stores, signs and gossips the checkpoint of every epoch that is ready, in order.
async fn compute_ready(node: &Arc<Node>) -> Result<(), ApiError> {
    loop {
        let epoch = node.seal.lock().await.computed;
        let Some(closes) = closes_of(node, epoch).await? else {
            return Ok(());
        };
        // Every entry of this epoch must have applied: a parked certificate would change the lots.
        if node
            .writer
            .pending_min_epoch()
            .await
            .is_some_and(|e| e <= epoch)
        {
            return Ok(());
        }
        let genesis = node.genesis.clone();
        let (checkpoint, statement) = node
            .blocking(move |s| {
                let mut lots: Vec<Lot> = Vec::new();
                s.for_each_lot(|l| lots.push(l.clone()))?;
                let prev_statement = match epoch.checked_sub(1) {
                    Some(p) => Some(stored::<SettlementStatement>(
                        s.statement(p)?,
                        "statement",
                        p,
                    )?),
                    None => None,
                };
                let prev_checkpoint = match epoch.checked_sub(1) {
                    Some(p) => {
                        Some(stored::<Checkpoint>(s.checkpoint(p)?, "checkpoint", p)?.hash())
                    }
                    None => None,
                };
                let activity = epoch_activity(&genesis, epoch, &lots)
                    .map_err(|e| crate::store::StoreError::Derive(e.to_string()))?;
                let statement = compute_statement(&genesis, &activity, prev_statement.as_ref())
                    .map_err(|e| {
                        crate::store::StoreError::Derive(format!(
                            "settlement of epoch {epoch}: {e}"
                        ))
                    })?;
                let checkpoint = Checkpoint::compute(
                    &genesis,
                    epoch,
                    &closes,
                    prev_checkpoint,
                    statement.hash(),
                )
                .map_err(|e| crate::store::StoreError::Derive(e.to_string()))?;
                s.put_statement(epoch, &encode(&statement))?;
                s.put_checkpoint(epoch, &encode(&checkpoint))?;
                Ok((checkpoint, statement))
            })
            .await?;
        let sig = CheckpointSig::sign(&checkpoint, &node.keypair);
        let bytes = encode(&sig);
        let me = node.me;
        let stored_sig = bytes.clone();
        node.blocking(move |s| s.put_checkpoint_sig(epoch, &me, &stored_sig))
            .await?;
        node.seal.lock().await.computed = epoch + 1;
        tracing::info!(
            epoch,
            checkpoint = %checkpoint.hash().short(),
            transfers = statement.transfers.len(),
            "checkpoint computed and signed"
        );
        if let Err(e) = node.net.publish(Gossip::CheckpointSig(bytes)).await {
            tracing::debug!(error = %e, "checkpoint signature not gossiped; peers will ask for it");
        }
    }
}

/// Every partner's close of `epoch`, if all are here.
async fn closes_of(
    node: &Node,
    epoch: Epoch,
) -> Result<Option<BTreeMap<PartnerId, LogClose>>, ApiError> {
    let partners: Vec<PartnerId> = node.genesis.partners.iter().map(|p| p.id).collect();
    node.blocking(move |s| {
        let mut out = BTreeMap::new();
        for p in partners {
            match s.close(&p, epoch)? {
                Some(c) => {
                    out.insert(p, c);
                }
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    })
    .await
}

fn stored<T: serde::de::DeserializeOwned>(
    bytes: Option<Vec<u8>>,
    what: &str,
    epoch: Epoch,
) -> Result<T, crate::store::StoreError> {
    let bytes = bytes.ok_or_else(|| {
        crate::store::StoreError::Derive(format!("{what} of epoch {epoch} is missing"))
    })?;
    decode(&bytes)
        .map_err(|e| crate::store::StoreError::Derive(format!("{what} of epoch {epoch}: {e}")))
}

/// Asks every connected partner for the signatures it holds of epochs `from..to`.
async fn pull_signatures(node: &Arc<Node>, from: Epoch, to: Epoch) {
    let peers: Vec<PartnerId> = node
        .connected
        .lock()
        .map(|c| c.iter().copied().collect())
        .unwrap_or_default();
    for epoch in from..to {
        for peer in &peers {
            if let Ok(Response::CheckpointSigs(sigs)) = node
                .net
                .request(*peer, Request::GetCheckpointSigs { epoch })
                .await
            {
                for bytes in sigs {
                    on_signature(node, *peer, bytes).await;
                }
            }
        }
    }
}

/// The signatures we hold for `epoch`, to answer a peer.
pub async fn signatures_for(node: &Node, epoch: Epoch) -> Response {
    match node.blocking(move |s| s.checkpoint_sigs(epoch)).await {
        Ok(sigs) => {
            Response::CheckpointSigs(sigs.into_iter().map(|(_, b)| b).collect()).fit_to_limits()
        }
        Err(e) => Response::Error {
            message: e.to_string(),
        },
    }
}

/// A checkpoint signature arrived (gossip from `from`, or relayed in an answer): keep it if it is a
/// valid signature of a genesis partner for an epoch that can exist.
pub async fn on_signature(node: &Arc<Node>, from: PartnerId, bytes: Vec<u8>) {
    let sig: CheckpointSig = match decode(&bytes) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(from = %node.name_of(&from), error = %e, "malformed checkpoint signature");
            return;
        }
    };
    if !node.genesis.is_partner(&sig.partner) {
        tracing::warn!(from = %node.name_of(&from), "checkpoint signature by a non-partner");
        return;
    }
    if sig.epoch > node.genesis.epoch_at(crate::writer::now()) {
        tracing::warn!(from = %node.name_of(&from), epoch = sig.epoch, "checkpoint signature for a future epoch");
        return;
    }
    if let Err(e) = sig.verify() {
        tracing::warn!(from = %node.name_of(&from), error = %e, "bad checkpoint signature");
        return;
    }
    let (epoch, signer) = (sig.epoch, sig.partner);
    let result = node
        .blocking(move |s| {
            let held = s.checkpoint_sigs(epoch)?;
            match held.iter().find(|(p, _)| *p == signer) {
                Some((_, b)) if *b == bytes => Ok(false),
                Some((_, b)) => {
                    let first = decode::<CheckpointSig>(b).ok().map(|s| s.checkpoint);
                    Ok(first != Some(sig.checkpoint))
                }
                None => {
                    s.put_checkpoint_sig(epoch, &signer, &bytes)?;
                    Ok(false)
                }
            }
        })
        .await;
    match result {
        Ok(true) => tracing::error!(
            partner = %node.name_of(&signer),
            epoch,
            "partner signed two different checkpoints for one epoch; keeping the first"
        ),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "cannot store checkpoint signature"),
    }
}

/// Moves the sealed prefix forward and appends each newly sealed epoch to the anchor file.
async fn advance_sealed(node: &Arc<Node>, anchor_file: &Path) -> Result<(), ApiError> {
    loop {
        let (sealed, computed) = {
            let st = node.seal.lock().await;
            (st.sealed, st.computed)
        };
        if sealed >= computed {
            return Ok(());
        }
        let n = node.clone();
        let Some(cp) = node
            .blocking(move |_| sealed_checkpoint(&n, sealed))
            .await?
        else {
            warn_if_disagreeing(node, sealed).await;
            return Ok(());
        };
        let path = anchor_file.to_path_buf();
        let hash = cp.checkpoint.hash();
        let genesis_hash = node.genesis.hash();
        tokio::task::spawn_blocking(move || anchor::append(&path, &genesis_hash, sealed, &hash))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| {
                ApiError::Internal(format!("anchor file {}: {e}", anchor_file.display()))
            })?;
        node.seal.lock().await.sealed = sealed + 1;
        node.metrics.checkpoints_sealed.inc();
        tracing::info!(epoch = sealed, checkpoint = %hash.short(), signatures = cp.signatures.len(), "checkpoint sealed");
    }
}

/// Logs loudly when a quorum signed a checkpoint other than ours: our state has diverged.
async fn warn_if_disagreeing(node: &Arc<Node>, epoch: Epoch) {
    let ours = match node.store.checkpoint(epoch) {
        Ok(Some(b)) => decode::<Checkpoint>(&b).ok().map(|c| c.hash()),
        _ => None,
    };
    let Ok(sigs) = node.store.checkpoint_sigs(epoch) else {
        return;
    };
    let mut votes: BTreeMap<_, usize> = BTreeMap::new();
    for (_, b) in sigs {
        if let Ok(s) = decode::<CheckpointSig>(&b) {
            *votes.entry(s.checkpoint).or_default() += 1;
        }
    }
    for (hash, count) in votes {
        if Some(hash) != ours && count >= node.genesis.quorum() {
            tracing::error!(epoch, theirs = %hash.short(), "a quorum sealed a checkpoint that differs from ours");
        }
    }
}

/// Where sealing stands: the sealed prefix and who the next epoch waits for.
pub async fn status(node: &Node) -> Result<Sealing, ApiError> {
    let (computed, last_sealed) = {
        let st = node.seal.lock().await;
        (st.computed, st.last_sealed())
    };
    let partners: Vec<(PartnerId, String)> = node
        .genesis
        .partners
        .iter()
        .map(|p| (p.id, p.name.clone()))
        .collect();
    // Nobody is late before the epoch has ended.
    if crate::writer::now() < node.genesis.epoch_end(computed) {
        return Ok(Sealing {
            last_sealed,
            awaiting: Vec::new(),
        });
    }
    let awaiting = node
        .blocking(move |s| {
            let mut out = Vec::new();
            for (id, name) in partners {
                if s.close(&id, computed)?.is_none() {
                    out.push(name);
                }
            }
            Ok(out)
        })
        .await?;
    Ok(Sealing {
        last_sealed,
        awaiting,
    })
}
