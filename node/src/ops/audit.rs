//! What the node serves auditors: sealed checkpoints, settlement statements and record proofs.
//! Each is built from stored data only; the auditor checks everything against the genesis.

use crate::error::{Inconsistency, InvalidRequest, NodeResult, NotFound};
use crate::node::Node;
use coalition_client::types::SettlementView;
use coalition_core::checkpoint::{RecordProof, SealedCheckpoint};
use coalition_core::hash::Hash;
use coalition_core::merkle::{Blake3Hasher, InclusionProof};
use coalition_core::record::Epoch;

/// The sealed checkpoint of `epoch`.
pub async fn checkpoint(node: &Node, epoch: Epoch) -> NodeResult<SealedCheckpoint> {
    let quorum = node.genesis().quorum();
    let sealed = node
        .blocking(move |s| s.sealed_checkpoint(quorum, epoch))
        .await?;
    Ok(sealed.ok_or_else(|| not_over(node, epoch).unwrap_or(NotFound::NotSealed { epoch }))?)
}

/// [`NotFound::EpochNotOver`] if `epoch` is the current one or later: "not sealed yet" alone would
/// leave someone who typed 99 for 9 waiting.
fn not_over(node: &Node, epoch: Epoch) -> Option<NotFound> {
    let genesis = node.genesis();
    let current = genesis.epoch_at(node.now());
    (epoch >= current).then(|| NotFound::EpochNotOver {
        epoch,
        current,
        ends_at: genesis.epoch_end(epoch),
    })
}

/// The settlement statement of `epoch`, and whether its checkpoint is sealed.
pub async fn settlement(node: &Node, epoch: Epoch) -> NodeResult<SettlementView> {
    let statement = node
        .blocking(move |s| s.statement(epoch))
        .await?
        .ok_or_else(|| not_over(node, epoch).unwrap_or(NotFound::NotSettled { epoch }))?;
    let sealed = node.seal_progress().sealed > epoch;
    Ok(SettlementView {
        epoch,
        sealed,
        statement,
    })
}

/// Proof that the record `record` (a lot id, an order id) is covered by a sealed checkpoint: the
/// first one that covers it, or that of `epoch`.
pub async fn prove(node: &Node, record: Hash, epoch: Option<Epoch>) -> NodeResult<RecordProof> {
    let located = node
        .blocking(move |s| match s.record_location(&record)? {
            Some(at) => Ok(Some((at, s.entry(&at.partner, at.seq)?))),
            None => Ok(None),
        })
        .await?;
    let (loc, entry) = match located {
        Some((loc, Some(entry))) => (loc, entry),
        Some((_, None)) => return Err(Inconsistency::IndexedNotStored { record }.into()),
        None => return Err(NotFound::NoRecord { record }.into()),
    };
    // The close of the epoch the entry is in, or of the one asked for.
    let epoch = epoch.unwrap_or(entry.entry.epoch);
    if epoch >= node.seal_progress().sealed {
        return Err(NotFound::NotCovered {
            record,
            epoch: entry.entry.epoch,
        }
        .into());
    }
    let sealed = checkpoint(node, epoch).await?;
    let partner = loc.partner;
    let (index, log) = sealed
        .checkpoint
        .log_of(&partner)
        .map(|(i, l)| (i, *l))
        .ok_or(Inconsistency::CheckpointLacksLog { epoch, partner })?;
    if loc.seq >= log.size {
        return Err(InvalidRequest::AfterCheckpoint {
            record,
            seq: loc.seq,
            epoch,
        }
        .into());
    }
    let leaves = node
        .blocking(move |s| s.leaf_hashes(&partner, log.size))
        .await?;
    let in_log = InclusionProof::from_leaves(&Blake3Hasher, &leaves, loc.seq, log.size)?;
    let logs_leaves: Vec<Hash> = sealed.checkpoint.logs.iter().map(|l| l.leaf()).collect();
    let in_checkpoint = InclusionProof::from_leaves(
        &Blake3Hasher,
        &logs_leaves,
        index as u64,
        logs_leaves.len() as u64,
    )?;
    let proof = RecordProof {
        entry,
        in_log,
        in_checkpoint,
        sealed,
    };
    proof.verify(node.genesis())?;
    Ok(proof)
}
