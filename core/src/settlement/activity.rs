//! An epoch's settlement activity ([`EpochActivity`]), derived from the ledger's lots: what was
//! issued, redeemed (and where), expired and restored in the epoch.
//!
//! [`ActivityBuilder`] takes the lots one at a time, in any order, so a node can stream them from
//! its store instead of holding every lot ever issued in memory; [`epoch_activity`] runs it over a
//! collection. The result is valid once every entry of epochs up to the one settled has been applied,
//! in every log; entries of later epochs may be applied too, they change nothing here.

use super::{EpochActivity, Redemption};
use crate::genesis::Genesis;
use crate::record::{Epoch, PartnerId, Points};
use crate::state::{Lot, Overflow};
use std::collections::BTreeMap;

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

/// Accumulates one epoch's activity from lots fed to it in any order.
#[derive(Debug)]
pub struct ActivityBuilder<'g> {
    genesis: &'g Genesis,
    activity: EpochActivity,
}

impl<'g> ActivityBuilder<'g> {
    /// An empty activity for `epoch`.
    pub fn new(genesis: &'g Genesis, epoch: Epoch) -> ActivityBuilder<'g> {
        ActivityBuilder {
            genesis,
            activity: EpochActivity {
                epoch,
                ..EpochActivity::default()
            },
        }
    }

    /// Counts what `lot` contributes to the epoch: its points if its liability starts in it, each
    /// spend in it (restored if the lot had already expired), and its remainder if it expires in it.
    pub fn add(&mut self, lot: &Lot) -> Result<(), Overflow> {
        let epoch = self.activity.epoch;
        let a = &mut self.activity;
        if liability_epoch(lot) == epoch {
            add_to(&mut a.issued, lot.issuer, lot.points)?;
        }
        let expiry = expiry_epoch(self.genesis, lot);
        for s in lot.spends.iter().filter(|s| s.epoch == epoch) {
            a.redemptions.push(Redemption {
                issuer: lot.issuer,
                redeemer: s.redeemer,
                points: s.points,
            });
            if s.epoch > expiry {
                add_to(&mut a.restored, lot.issuer, s.points)?;
            }
        }
        if expiry == epoch {
            let left = lot.remaining_at_epoch(epoch)?;
            if left > 0 {
                add_to(&mut a.expired, lot.issuer, left)?;
            }
        }
        Ok(())
    }

    /// The activity of every lot added.
    pub fn finish(mut self) -> EpochActivity {
        self.activity.issued.retain(|_, v| *v > 0);
        self.activity
    }
}

fn add_to(m: &mut BTreeMap<PartnerId, Points>, k: PartnerId, v: Points) -> Result<(), Overflow> {
    let slot = m.entry(k).or_insert(0);
    *slot = slot.checked_add(v).ok_or(Overflow {
        what: "epoch activity",
    })?;
    Ok(())
}

/// Settlement activity of `epoch` from every lot in the ledger (any order): [`ActivityBuilder`]
/// over a collection.
pub fn epoch_activity<'a>(
    genesis: &Genesis,
    epoch: Epoch,
    lots: impl IntoIterator<Item = &'a Lot>,
) -> Result<EpochActivity, Overflow> {
    let mut builder = ActivityBuilder::new(genesis, epoch);
    for lot in lots {
        builder.add(lot)?;
    }
    Ok(builder.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::hash::Hash;
    use crate::record::MemberId;
    use crate::state::Spend;
    use crate::test_util::test_genesis;

    #[test]
    fn activity_counts_breakage_once_and_restores_late_spends() {
        let g = Genesis {
            genesis_time: 1000,
            epoch_secs: 10,
            ..test_genesis(2).0
        };
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
