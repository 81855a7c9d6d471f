//! Checkpoints (DESIGN.md §5): what the coalition agrees on at the end of an epoch, how it is
//! sealed by q partner signatures, how an epoch's settlement activity is derived from the ledger,
//! and the proof that one record is covered by a sealed checkpoint.
//!
//! A checkpoint of epoch `e` names, for every partner in genesis order, its log size and Merkle root
//! right after its `EpochClose { e }`; the Merkle root over those heads; the hash of checkpoint
//! `e − 1` (so checkpoints form a chain from the genesis); and the hash of epoch `e`'s settlement
//! statement. Every input is fixed by the signed logs, so honest nodes compute byte-identical
//! checkpoints and their signatures agree.
//!
//! DESIGN.md also lists a "state root". We leave it out: the ledger state is a deterministic function
//! of the logs the checkpoint already commits to, every verifier replays the logs anyway, and a Merkle
//! root over every lot would cost the node a full rewrite of a tree each epoch for no check that
//! needs it. The statement hash commits to the per-issuer outstanding liability, the part of the
//! state that settlement depends on.

use crate::crypto::{self, Keypair, Signature, SignatureError};
use crate::encoding::encode;
use crate::genesis::Genesis;
use crate::hash::{tag, Hash};
use crate::log::{entry_leaf, LogClose};
use crate::merkle::{Blake3Hasher, InclusionProof, MerkleError, MerkleFrontier, MerkleHasher};
use crate::record::{Epoch, PartnerId, SignedEntry};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One partner's log as a checkpoint records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointLog {
    /// The partner.
    pub partner: PartnerId,
    /// Its log size right after its close of the epoch.
    pub size: u64,
    /// Its log's Merkle root at that size.
    pub root: Hash,
}

impl CheckpointLog {
    /// The leaf hash of this log head in the checkpoint's tree of logs.
    pub fn leaf(&self) -> Hash {
        Blake3Hasher.hash_leaf(&encode(self))
    }
}

/// What the coalition agrees on at the end of an epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The genesis hash: a checkpoint of one coalition is never valid in another.
    pub coalition: Hash,
    /// The epoch.
    pub epoch: Epoch,
    /// Every partner's log at its close of the epoch, in genesis order.
    pub logs: Vec<CheckpointLog>,
    /// Merkle root over `logs` (leaf = [`CheckpointLog::leaf`]).
    pub logs_root: Hash,
    /// Hash of the previous epoch's checkpoint; the genesis hash for epoch 0.
    pub prev: Hash,
    /// Hash of the epoch's settlement statement.
    pub statement: Hash,
}

/// Why a checkpoint, a seal or a record proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The logs are not exactly the genesis partners in genesis order.
    #[error("checkpoint of epoch {epoch} does not list the genesis partners in order")]
    Partners {
        /// The epoch.
        epoch: Epoch,
    },
    /// A close handed to [`Checkpoint::compute`] is of another epoch.
    #[error("close of partner {partner} is for epoch {found}, not {epoch}")]
    WrongClose {
        /// The partner.
        partner: PartnerId,
        /// The checkpoint's epoch.
        epoch: Epoch,
        /// The close's epoch.
        found: Epoch,
    },
    /// `logs_root` is not the root over `logs`.
    #[error("checkpoint of epoch {epoch}: logs root does not match its logs")]
    LogsRoot {
        /// The epoch.
        epoch: Epoch,
    },
    /// The checkpoint belongs to another coalition.
    #[error("checkpoint of epoch {epoch} is for another coalition")]
    Coalition {
        /// The epoch.
        epoch: Epoch,
    },
    /// A signature is not by a genesis partner.
    #[error("checkpoint signature of epoch {epoch} by {signer}, who is not a genesis partner")]
    NotPartner {
        /// The epoch.
        epoch: Epoch,
        /// The signer.
        signer: PartnerId,
    },
    /// A partner signed twice.
    #[error("checkpoint of epoch {epoch} carries two signatures of {signer}")]
    DuplicateSigner {
        /// The epoch.
        epoch: Epoch,
        /// The signer.
        signer: PartnerId,
    },
    /// A signature does not verify.
    #[error("checkpoint signature of epoch {epoch} by {signer}: {source}")]
    BadSignature {
        /// The epoch.
        epoch: Epoch,
        /// The signer.
        signer: PartnerId,
        /// Why.
        source: SignatureError,
    },
    /// Too few signatures to seal.
    #[error("checkpoint of epoch {epoch} has {have} of {need} signatures")]
    NotSealed {
        /// The epoch.
        epoch: Epoch,
        /// Valid distinct partner signatures.
        have: usize,
        /// The quorum.
        need: usize,
    },
    /// A record proof does not lead to the checkpoint.
    #[error("record proof: {0}")]
    Proof(#[from] ProofError),
    /// A Merkle computation failed.
    #[error("merkle: {0}")]
    Merkle(#[from] MerkleError),
}

impl Checkpoint {
    /// The checkpoint of `epoch` from every partner's close of it (any order), the previous
    /// checkpoint's hash (`None` for epoch 0) and the statement's hash.
    pub fn compute(
        genesis: &Genesis,
        epoch: Epoch,
        closes: &BTreeMap<PartnerId, LogClose>,
        prev: Option<Hash>,
        statement: Hash,
    ) -> Result<Checkpoint, CheckpointError> {
        let mut logs = Vec::with_capacity(genesis.partners.len());
        for p in &genesis.partners {
            let close = closes
                .get(&p.id)
                .ok_or(CheckpointError::Partners { epoch })?;
            if close.epoch != epoch {
                return Err(CheckpointError::WrongClose {
                    partner: p.id,
                    epoch,
                    found: close.epoch,
                });
            }
            logs.push(CheckpointLog {
                partner: p.id,
                size: close.size,
                root: close.root,
            });
        }
        let logs_root = logs_root(&logs)?;
        Ok(Checkpoint {
            coalition: genesis.hash(),
            epoch,
            logs,
            logs_root,
            prev: prev.unwrap_or_else(|| genesis.hash()),
            statement,
        })
    }

    /// The checkpoint's id, which partners sign.
    pub fn hash(&self) -> Hash {
        Hash::tagged(tag::CHECKPOINT, &encode(self))
    }

    /// Structural checks against the genesis: coalition, partners in order, logs root.
    pub fn check(&self, genesis: &Genesis) -> Result<(), CheckpointError> {
        let epoch = self.epoch;
        if self.coalition != genesis.hash() {
            return Err(CheckpointError::Coalition { epoch });
        }
        let in_order = self.logs.len() == genesis.partners.len()
            && self
                .logs
                .iter()
                .zip(&genesis.partners)
                .all(|(l, p)| l.partner == p.id);
        if !in_order {
            return Err(CheckpointError::Partners { epoch });
        }
        if logs_root(&self.logs)? != self.logs_root {
            return Err(CheckpointError::LogsRoot { epoch });
        }
        Ok(())
    }

    /// The log of `partner` in this checkpoint, with its index.
    pub fn log_of(&self, partner: &PartnerId) -> Option<(usize, &CheckpointLog)> {
        self.logs
            .iter()
            .enumerate()
            .find(|(_, l)| &l.partner == partner)
    }
}

/// Merkle root over the checkpoint's log heads.
pub fn logs_root(logs: &[CheckpointLog]) -> Result<Hash, MerkleError> {
    let mut f: MerkleFrontier = MerkleFrontier::new();
    for l in logs {
        f.push(l.leaf())?;
    }
    Ok(f.root())
}

/// One partner's signature over a checkpoint: what nodes gossip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointSig {
    /// The epoch.
    pub epoch: Epoch,
    /// The checkpoint's hash.
    pub checkpoint: Hash,
    /// The signer.
    pub partner: PartnerId,
    /// Signature over `checkpoint`.
    pub signature: Signature,
}

impl CheckpointSig {
    /// Signs `checkpoint` as `key`.
    pub fn sign(checkpoint: &Checkpoint, key: &Keypair) -> CheckpointSig {
        let id = checkpoint.hash();
        CheckpointSig {
            epoch: checkpoint.epoch,
            checkpoint: id,
            partner: PartnerId(key.public()),
            signature: key.sign(&id),
        }
    }

    /// Checks the signature (not whether the signer is a partner).
    pub fn verify(&self) -> Result<(), SignatureError> {
        crypto::verify(&self.partner.0, &self.checkpoint, &self.signature)
    }
}

/// A checkpoint with the partner signatures that seal it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// At least q signatures of distinct genesis partners over its hash (nodes list them by partner;
    /// verification accepts any order).
    pub signatures: Vec<CheckpointSig>,
}

impl SealedCheckpoint {
    /// Checks the checkpoint's structure and that q distinct genesis partners signed it.
    pub fn verify(&self, genesis: &Genesis) -> Result<(), CheckpointError> {
        self.checkpoint.check(genesis)?;
        let epoch = self.checkpoint.epoch;
        let id = self.checkpoint.hash();
        let mut seen = BTreeSet::new();
        for s in &self.signatures {
            let signer = s.partner;
            if !genesis.is_partner(&signer) {
                return Err(CheckpointError::NotPartner { epoch, signer });
            }
            if !seen.insert(signer) {
                return Err(CheckpointError::DuplicateSigner { epoch, signer });
            }
            if s.checkpoint != id || s.epoch != epoch {
                return Err(CheckpointError::BadSignature {
                    epoch,
                    signer,
                    source: SignatureError::Invalid {
                        key: signer.0.to_hex(),
                    },
                });
            }
            s.verify().map_err(|source| CheckpointError::BadSignature {
                epoch,
                signer,
                source,
            })?;
        }
        let need = genesis.quorum();
        if seen.len() < need {
            return Err(CheckpointError::NotSealed {
                epoch,
                have: seen.len(),
                need,
            });
        }
        Ok(())
    }
}

/// Proof that a log entry is covered by a sealed checkpoint: the entry, its inclusion in its
/// partner's log at the checkpoint's size, that log head's inclusion in the checkpoint, and the
/// sealed checkpoint. Verifiable with only the genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordProof {
    /// The entry carrying the record.
    pub entry: SignedEntry,
    /// Its inclusion in its author's log of the checkpoint's size.
    pub in_log: InclusionProof,
    /// The log head's inclusion in the checkpoint's tree of logs.
    pub in_checkpoint: InclusionProof,
    /// The sealed checkpoint.
    pub sealed: SealedCheckpoint,
}

/// Why a [`RecordProof`] does not lead from its entry to its sealed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The entry's author is not a genesis partner.
    #[error("entry author {partner} is not a genesis partner")]
    AuthorNotPartner {
        /// The claimed author.
        partner: PartnerId,
    },
    /// The entry's signature does not verify.
    #[error("entry signature: {source}")]
    EntrySignature {
        /// Why.
        source: SignatureError,
    },
    /// The checkpoint holds no log of the entry's author.
    #[error("entry author not in checkpoint")]
    AuthorNotInCheckpoint,
    /// The inclusion proof in the log is for another position or log size.
    #[error(
        "log proof is for position {index} of {size}, the entry is at {seq} of a log of {log_size}"
    )]
    LogPosition {
        /// The proof's leaf index.
        index: u64,
        /// The proof's tree size.
        size: u64,
        /// The entry's position.
        seq: u64,
        /// The log's size in the checkpoint.
        log_size: u64,
    },
    /// The entry is not in its author's log at the checkpoint's size.
    #[error("entry not in {partner}'s log: {source}")]
    NotInLog {
        /// The author.
        partner: PartnerId,
        /// Why the inclusion proof fails.
        source: MerkleError,
    },
    /// The inclusion proof in the checkpoint is for another position.
    #[error("checkpoint proof is for another position")]
    CheckpointPosition,
    /// The log head is not in the checkpoint's tree of logs.
    #[error("log head not in checkpoint: {source}")]
    NotInCheckpoint {
        /// Why the inclusion proof fails.
        source: MerkleError,
    },
}

impl RecordProof {
    /// Verifies every link, from the entry's signature to the checkpoint's seal.
    pub fn verify(&self, genesis: &Genesis) -> Result<(), CheckpointError> {
        self.sealed.verify(genesis)?;
        let e = &self.entry.entry;
        if !genesis.is_partner(&e.partner) {
            return Err(ProofError::AuthorNotPartner { partner: e.partner }.into());
        }
        self.entry
            .verify_signature()
            .map_err(|source| ProofError::EntrySignature { source })?;
        let cp = &self.sealed.checkpoint;
        let (index, log) = cp
            .log_of(&e.partner)
            .ok_or(ProofError::AuthorNotInCheckpoint)?;
        if self.in_log.index != e.seq || self.in_log.size != log.size {
            return Err(ProofError::LogPosition {
                index: self.in_log.index,
                size: self.in_log.size,
                seq: e.seq,
                log_size: log.size,
            }
            .into());
        }
        self.in_log
            .verify(&Blake3Hasher, &entry_leaf(&self.entry.id()), &log.root)
            .map_err(|source| ProofError::NotInLog {
                partner: e.partner,
                source,
            })?;
        let position = u64::try_from(index).ok();
        let count = u64::try_from(cp.logs.len()).ok();
        if Some(self.in_checkpoint.index) != position || Some(self.in_checkpoint.size) != count {
            return Err(ProofError::CheckpointPosition.into());
        }
        self.in_checkpoint
            .verify(&Blake3Hasher, &log.leaf(), &cp.logs_root)
            .map_err(|source| ProofError::NotInCheckpoint { source })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::test_genesis;

    /// Epochs of 10 s from time 1000.
    fn genesis(n: usize) -> (Genesis, Vec<Keypair>) {
        let (g, keys) = test_genesis(n);
        let g = Genesis {
            genesis_time: 1000,
            epoch_secs: 10,
            ..g
        };
        (g, keys)
    }

    fn closes(g: &Genesis, epoch: Epoch) -> BTreeMap<PartnerId, LogClose> {
        g.partners
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    p.id,
                    LogClose {
                        epoch,
                        size: i as u64 + 1,
                        root: Hash([i as u8; 32]),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn seal_needs_quorum_of_distinct_partners() {
        let (g, keys) = genesis(4);
        let cp = Checkpoint::compute(&g, 0, &closes(&g, 0), None, Hash::ZERO).unwrap();
        cp.check(&g).unwrap();
        let sigs: Vec<_> = keys.iter().map(|k| CheckpointSig::sign(&cp, k)).collect();
        let mut sealed = SealedCheckpoint {
            checkpoint: cp.clone(),
            signatures: sigs[..2].to_vec(),
        };
        assert!(matches!(
            sealed.verify(&g),
            Err(CheckpointError::NotSealed {
                have: 2,
                need: 3,
                ..
            })
        ));
        sealed.signatures.push(sigs[0].clone());
        assert!(matches!(
            sealed.verify(&g),
            Err(CheckpointError::DuplicateSigner { .. })
        ));
        sealed.signatures.pop();
        sealed.signatures.push(sigs[2].clone());
        sealed.verify(&g).unwrap();
        sealed
            .signatures
            .push(CheckpointSig::sign(&cp, &Keypair::generate()));
        assert!(matches!(
            sealed.verify(&g),
            Err(CheckpointError::NotPartner { .. })
        ));
        sealed.signatures.pop();
        sealed.checkpoint.statement = Hash([1; 32]);
        assert!(matches!(
            sealed.verify(&g),
            Err(CheckpointError::BadSignature { .. })
        ));
    }

    #[test]
    fn compute_is_independent_of_close_order_and_chains() {
        let (g, _) = genesis(3);
        let a = Checkpoint::compute(&g, 0, &closes(&g, 0), None, Hash::ZERO).unwrap();
        let b = Checkpoint::compute(&g, 1, &closes(&g, 1), Some(a.hash()), Hash::ZERO).unwrap();
        assert_eq!(a.prev, g.hash());
        assert_eq!(b.prev, a.hash());
        assert!(Checkpoint::compute(&g, 1, &closes(&g, 0), None, Hash::ZERO).is_err());
        let mut partial = closes(&g, 0);
        partial.pop_first();
        assert!(Checkpoint::compute(&g, 0, &partial, None, Hash::ZERO).is_err());
    }
}
