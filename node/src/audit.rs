//! What the node serves auditors: sealed checkpoints, settlement statements and record proofs.
//! Each is built from stored data only; the auditor checks everything against the genesis.

use crate::api::ApiError;
use crate::seal::sealed_checkpoint;
use crate::service::Node;
use coalition_client::types::SettlementView;
use coalition_core::checkpoint::{RecordProof, SealedCheckpoint};
use coalition_core::encoding::decode;
use coalition_core::hash::Hash;
use coalition_core::log::LogClose;
use coalition_core::merkle::{Blake3Hasher, InclusionProof};
use coalition_core::record::Epoch;
use coalition_core::settlement::SettlementStatement;
use std::sync::Arc;

/// The sealed checkpoint of `epoch`.
pub async fn checkpoint(node: &Arc<Node>, epoch: Epoch) -> Result<SealedCheckpoint, ApiError> {
    let n = node.clone();
    node.blocking(move |_| sealed_checkpoint(&n, epoch))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("epoch {epoch} has no sealed checkpoint yet")))
}

/// The settlement statement of `epoch`, and whether its checkpoint is sealed.
pub async fn settlement(node: &Arc<Node>, epoch: Epoch) -> Result<SettlementView, ApiError> {
    let bytes = node
        .blocking(move |s| s.statement(epoch))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("epoch {epoch} has not been settled yet")))?;
    let statement: SettlementStatement = decode(&bytes)
        .map_err(|e| ApiError::Internal(format!("stored statement of epoch {epoch}: {e}")))?;
    let sealed = node.seal.lock().await.sealed > epoch;
    Ok(SettlementView {
        epoch,
        sealed,
        statement,
    })
}

/// Proof that the record `record` (a lot id, an order id) is covered by a sealed checkpoint: the
/// first one that covers it, or that of `epoch`.
pub async fn prove(
    node: &Arc<Node>,
    record: Hash,
    epoch: Option<Epoch>,
) -> Result<RecordProof, ApiError> {
    let loc = node
        .blocking(move |s| s.record_location(&record))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no record {record} here")))?;
    let sealed_through = node.seal.lock().await.sealed;
    let partner = loc.partner;
    // The close of the epoch the entry is in, or of the one asked for.
    let entry = node
        .blocking(move |s| s.entry(&partner, loc.seq))
        .await?
        .ok_or_else(|| {
            ApiError::Internal(format!(
                "record {record} is indexed but its entry is missing"
            ))
        })?;
    let epoch = epoch.unwrap_or(entry.entry.epoch);
    if epoch >= sealed_through {
        return Err(ApiError::NotFound(format!(
            "record {record} is in epoch {}; no sealed checkpoint covers it yet",
            entry.entry.epoch
        )));
    }
    let sealed = checkpoint(node, epoch).await?;
    let (index, log) = sealed
        .checkpoint
        .log_of(&partner)
        .map(|(i, l)| (i, *l))
        .ok_or_else(|| ApiError::Internal("checkpoint lacks the record's log".into()))?;
    if loc.seq >= log.size {
        return Err(ApiError::BadRequest(format!(
            "record {record} is at position {} of its log, after checkpoint {epoch}",
            loc.seq
        )));
    }
    let close = LogClose {
        epoch,
        size: log.size,
        root: log.root,
    };
    let leaves = node
        .blocking(move |s| s.leaf_hashes(&partner, close.size))
        .await?;
    let in_log = InclusionProof::from_leaves(&Blake3Hasher, &leaves, loc.seq, close.size)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let logs_leaves: Vec<Hash> = sealed.checkpoint.logs.iter().map(|l| l.leaf()).collect();
    let in_checkpoint = InclusionProof::from_leaves(
        &Blake3Hasher,
        &logs_leaves,
        index as u64,
        logs_leaves.len() as u64,
    )
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let proof = RecordProof {
        entry,
        in_log,
        in_checkpoint,
        sealed,
    };
    proof
        .verify(&node.genesis)
        .map_err(|e| ApiError::Internal(format!("the proof built does not verify: {e}")))?;
    Ok(proof)
}
