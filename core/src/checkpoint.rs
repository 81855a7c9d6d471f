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
use crate::ledger::Lot;
use crate::log::{entry_leaf, LogClose};
use crate::merkle::{Blake3Hasher, InclusionProof, MerkleError, MerkleFrontier, MerkleHasher};
use crate::record::{Epoch, PartnerId, SignedEntry};
use crate::settlement::{EpochActivity, Redemption};
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
    Proof(String),
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

/// The epoch in which a lot's points become a liability: its issue's epoch, or the epoch of an
/// earlier spend. (With skewed clocks a redeemer's log can carry a spend in an epoch before the one
/// the issuer's log placed the issue in; the liability then starts with the spend, so no issuer's
/// outstanding points ever go negative.)
pub fn liability_epoch(lot: &Lot) -> Epoch {
    lot.spends
        .iter()
        .map(|s| s.epoch)
        .fold(lot.issued_epoch, Epoch::min)
}

/// The epoch in which what is left of a lot counts as breakage: the epoch its expiry time falls in,
/// and never before its liability epoch.
pub fn expiry_epoch(genesis: &Genesis, lot: &Lot) -> Epoch {
    genesis.epoch_at(lot.expires_at).max(liability_epoch(lot))
}

/// Settlement activity of `epoch`, derived from every lot in the ledger (any order). Valid once
/// every entry of epochs up to `epoch` in every log has been applied; entries of later epochs may
/// be applied too, they change nothing here.
pub fn epoch_activity<'a>(
    genesis: &Genesis,
    epoch: Epoch,
    lots: impl IntoIterator<Item = &'a Lot>,
) -> Result<EpochActivity, crate::ledger::Overflow> {
    let mut a = EpochActivity {
        epoch,
        ..EpochActivity::default()
    };
    let add = |m: &mut BTreeMap<PartnerId, u64>, k: PartnerId, v: u64| {
        let slot = m.entry(k).or_insert(0);
        *slot = slot.checked_add(v).ok_or(crate::ledger::Overflow {
            what: "epoch activity",
        })?;
        Ok::<(), crate::ledger::Overflow>(())
    };
    for lot in lots {
        if liability_epoch(lot) == epoch {
            add(&mut a.issued, lot.issuer, lot.points)?;
        }
        let expiry = expiry_epoch(genesis, lot);
        for s in lot.spends.iter().filter(|s| s.epoch == epoch) {
            a.redemptions.push(Redemption {
                issuer: lot.issuer,
                redeemer: s.redeemer,
                points: s.points,
            });
            if s.epoch > expiry {
                add(&mut a.restored, lot.issuer, s.points)?;
            }
        }
        if expiry == epoch {
            let left = lot.remaining_at_epoch(epoch)?;
            if left > 0 {
                add(&mut a.expired, lot.issuer, left)?;
            }
        }
    }
    a.issued.retain(|_, v| *v > 0);
    Ok(a)
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

impl RecordProof {
    /// Verifies every link, from the entry's signature to the checkpoint's seal.
    pub fn verify(&self, genesis: &Genesis) -> Result<(), CheckpointError> {
        let fail = |m: String| CheckpointError::Proof(m);
        self.sealed.verify(genesis)?;
        let e = &self.entry.entry;
        if !genesis.is_partner(&e.partner) {
            return Err(fail(format!(
                "entry author {} is not a genesis partner",
                e.partner
            )));
        }
        self.entry
            .verify_signature()
            .map_err(|err| fail(format!("entry signature: {err}")))?;
        let cp = &self.sealed.checkpoint;
        let (index, log) = cp
            .log_of(&e.partner)
            .ok_or_else(|| fail("entry author not in checkpoint".into()))?;
        if self.in_log.index != e.seq || self.in_log.size != log.size {
            return Err(fail(format!(
                "log proof is for position {} of {}, the entry is at {} of a log of {}",
                self.in_log.index, self.in_log.size, e.seq, log.size
            )));
        }
        self.in_log
            .verify(&Blake3Hasher, &entry_leaf(&self.entry.id()), &log.root)
            .map_err(|err| fail(format!("entry not in {}'s log: {err}", e.partner)))?;
        if self.in_checkpoint.index != index as u64
            || self.in_checkpoint.size != cp.logs.len() as u64
        {
            return Err(fail("checkpoint proof is for another position".into()));
        }
        self.in_checkpoint
            .verify(&Blake3Hasher, &log.leaf(), &cp.logs_root)
            .map_err(|err| fail(format!("log head not in checkpoint: {err}")))?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::genesis::{GenesisPartner, PointValue};
    use crate::ledger::Spend;
    use crate::record::MemberId;

    fn genesis(keys: &[Keypair]) -> Genesis {
        Genesis {
            coalition: "test".into(),
            genesis_time: 1000,
            epoch_secs: 10,
            partners: keys
                .iter()
                .enumerate()
                .map(|(i, k)| GenesisPartner {
                    name: format!("p{i}"),
                    id: PartnerId(k.public()),
                    settlement_account: format!("acct-{i}"),
                })
                .collect(),
            fault_tolerance: None,
            point_value: PointValue {
                minor_units: 1,
                per_points: 1,
            },
            currency: "EUR".into(),
            fee_bps: 0,
            max_clock_skew_secs: 5,
        }
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
        let keys: Vec<Keypair> = (0..4).map(|_| Keypair::generate()).collect();
        let g = genesis(&keys);
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
        let keys: Vec<Keypair> = (0..3).map(|_| Keypair::generate()).collect();
        let g = genesis(&keys);
        let a = Checkpoint::compute(&g, 0, &closes(&g, 0), None, Hash::ZERO).unwrap();
        let b = Checkpoint::compute(&g, 1, &closes(&g, 1), Some(a.hash()), Hash::ZERO).unwrap();
        assert_eq!(a.prev, g.hash());
        assert_eq!(b.prev, a.hash());
        assert!(Checkpoint::compute(&g, 1, &closes(&g, 0), None, Hash::ZERO).is_err());
        let mut partial = closes(&g, 0);
        partial.pop_first();
        assert!(Checkpoint::compute(&g, 0, &partial, None, Hash::ZERO).is_err());
    }

    #[test]
    fn activity_counts_breakage_once_and_restores_late_spends() {
        let keys: Vec<Keypair> = (0..2).map(|_| Keypair::generate()).collect();
        let g = genesis(&keys);
        let (p0, p1) = (g.partners[0].id, g.partners[1].id);
        let member = MemberId(Keypair::generate().public());
        // Issued in epoch 0, expires in epoch 1 (time 1015), 3 spent in 0, 2 spent late in 2.
        let lot = Lot {
            id: Hash([7; 32]),
            issuer: p0,
            member,
            points: 10,
            remaining: 5,
            expires_at: 1015,
            issued_epoch: 0,
            spends: vec![
                Spend {
                    epoch: 0,
                    redeemer: p1,
                    points: 3,
                },
                Spend {
                    epoch: 2,
                    redeemer: p1,
                    points: 2,
                },
            ],
        };
        let a0 = epoch_activity(&g, 0, [&lot]).unwrap();
        assert_eq!(a0.issued.get(&p0), Some(&10));
        assert_eq!(a0.redemptions.len(), 1);
        let a1 = epoch_activity(&g, 1, [&lot]).unwrap();
        assert_eq!(a1.expired.get(&p0), Some(&7));
        assert!(a1.issued.is_empty() && a1.redemptions.is_empty());
        let a2 = epoch_activity(&g, 2, [&lot]).unwrap();
        assert_eq!(a2.restored.get(&p0), Some(&2));
        assert_eq!(a2.redemptions[0].points, 2);
    }
}
