//! Settlement of one epoch: who owes whom for the points redeemed in it, netted to a short list of
//! transfers, plus each issuer's outstanding liability carried forward.
//!
//! [`compute_statement`] turns an [`EpochActivity`] (every lot spend of every certificate appended in
//! the epoch, and the points issued, expired and restored) and the previous epoch's
//! [`SettlementStatement`] into this epoch's statement. [`verify_statement_consistency`] is what an
//! auditor runs on a statement it was handed; [`SettlementStatement::render_table`] is what the CLI
//! prints. Everything is integer arithmetic, checked, and independent of the order of its inputs, so
//! every honest node computes byte-identical statements (their [`SettlementStatement::hash`] goes
//! into the checkpoint).
//!
//! # What is owed, and the fee convention
//!
//! A lot issued by partner `I` and spent at partner `R` makes `I` owe `R`. Points are first summed per
//! `(issuer, redeemer)` cell of the gross matrix; only then is the cell priced:
//!
//! ```text
//! money = ⌊points × minor_units / per_points⌋      (Genesis::money_for_points)
//! fee   = ⌊money × fee_bps / 10 000⌋                (computed in u128)
//! owed  = money − fee                               (gross_money[I][R])
//! ```
//!
//! The fee is the coalition's interchange discount: the *redeemer* concedes `fee_bps` basis points on
//! what it is owed, so the issuer pays `owed`, not the face value of its points. Pricing a whole cell
//! once per epoch means rounding happens once per cell, and the result does not depend on how the
//! redemptions were split into lots or certificates, or in what order they arrived.
//!
//! An issuer that redeems its own points owes nobody: the diagonal of both matrices is always zero.
//! Those points still count as *redeemed* in the issuer's totals, since they are no longer a liability.
//!
//! # Net positions, and why netting is safe
//!
//! `net[p] = Σ owed to p − Σ owed by p`. Every owed amount is counted once as received and once as
//! paid, so the net positions sum to exactly zero. Paying every gross cell would move each partner's
//! money by exactly `net[p]`; the transfer list moves it by exactly the same amount with far fewer
//! payments, so no partner gains or loses anything by netting, and [`verify_statement_consistency`]
//! checks precisely that (every partner's net plus what it pays minus what it receives is zero). The
//! gross matrix stays in the statement, so every bilateral claim remains visible and auditable; the
//! transfers are only how it is paid.
//!
//! [`netting`] is greedy: the largest debtor pays the largest creditor the smaller of the two amounts,
//! ties going to the partner listed first in the genesis. Each step brings at least one partner to zero
//! and the last step brings two, so there are at most n − 1 transfers; money only ever flows from a
//! net debtor to a net creditor, so no partner both pays and receives.
//!
//! # Liability carried forward
//!
//! Per issuer, `outstanding = opening + issued − redeemed − expired + restored`, where `opening` is
//! the previous statement's `outstanding` (zero before epoch 0). `restored` is the points of lots that
//! were already counted as expired (breakage) but that a late certificate redeemed in this epoch: they
//! appear in `redeemed` like any spend, and `restored` adds them back so they are not subtracted
//! twice. The sum is exact (computed in i128); a negative result is a typed error naming the issuer.

mod activity;
mod compute;
mod netting;
mod verify;

pub use activity::{epoch_activity, expiry_epoch, liability_epoch, ActivityBuilder};
pub use compute::compute_statement;
pub use netting::{net_positions, netting};
pub use verify::verify_statement_consistency;

use crate::encoding::{encode, EncodeError};
use crate::genesis::PointValue;
use crate::hash::{tag, Hash};
use crate::record::{Epoch, PartnerId, Points};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Basis points in a whole: a fee of `fee_bps` is `fee_bps / BPS_DENOMINATOR` of the money.
pub const BPS_DENOMINATOR: u32 = 10_000;

/// One lot spend: `points` of a lot issued by `issuer`, consumed by a certificate that `redeemer`
/// appended in this epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redemption {
    /// Who issued the lot, and owes for it.
    pub issuer: PartnerId,
    /// Who accepted the points, and is owed.
    pub redeemer: PartnerId,
    /// Points taken from the lot.
    pub points: Points,
}

/// Everything settlement needs to know about one epoch, derived from the partners' logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochActivity {
    /// The epoch being settled.
    pub epoch: Epoch,
    /// One per lot spend of every certificate appended in this epoch, in any order.
    pub redemptions: Vec<Redemption>,
    /// Points issued in this epoch, per issuer (missing means zero).
    pub issued: BTreeMap<PartnerId, Points>,
    /// Breakage recognised in this epoch: points of lots that expired unspent, per issuer.
    pub expired: BTreeMap<PartnerId, Points>,
    /// Points of lots already counted in `expired` in an earlier epoch that a late certificate
    /// redeemed in this one, per issuer.
    pub restored: BTreeMap<PartnerId, Points>,
}

/// One payment of the netted settlement: `from` pays `to` `amount` minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// The payer, a net debtor.
    pub from: PartnerId,
    /// The payee, a net creditor.
    pub to: PartnerId,
    /// Minor units of the statement's currency; never zero.
    pub amount: u64,
}

/// One issuer's points for the epoch and the liability it carries forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerTotals {
    /// The issuer.
    pub issuer: PartnerId,
    /// Outstanding at the start of the epoch: the previous statement's `outstanding` (0 in epoch 0).
    pub opening: Points,
    /// Issued this epoch.
    pub issued: Points,
    /// Redeemed this epoch, anywhere, including at the issuer itself.
    pub redeemed: Points,
    /// Expired this epoch (breakage).
    pub expired: Points,
    /// Redeemed this epoch from lots counted as expired earlier.
    pub restored: Points,
    /// `opening + issued − redeemed − expired + restored`.
    pub outstanding: Points,
}

/// The settlement of one epoch. Its canonical hash ([`SettlementStatement::hash`]) is sealed in the
/// epoch's checkpoint; its JSON form is what nodes serve and auditors read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementStatement {
    /// The epoch settled.
    pub epoch: Epoch,
    /// ISO code of the money amounts.
    pub currency: String,
    /// What a point is worth (from the genesis).
    pub point_value: PointValue,
    /// Fee the redeemer concedes, in basis points (from the genesis).
    pub fee_bps: u32,
    /// The partners in genesis order; every table below is indexed by this order.
    pub partners: Vec<PartnerId>,
    /// `gross_points[issuer][redeemer]`: points of `issuer` redeemed at `redeemer`. Zero diagonal.
    pub gross_points: Vec<Vec<Points>>,
    /// `gross_money[issuer][redeemer]`: minor units `issuer` owes `redeemer`, after the fee.
    pub gross_money: Vec<Vec<u64>>,
    /// Per partner, minor units received minus minor units paid. Sums to zero.
    pub net: Vec<i64>,
    /// Who pays whom: at most n − 1 transfers that settle every net position exactly.
    pub transfers: Vec<Transfer>,
    /// Per issuer (genesis order), points issued, redeemed, expired, restored and outstanding.
    pub per_issuer: Vec<IssuerTotals>,
}

/// Why a statement cannot be computed, or why a statement handed to an auditor is not consistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettlementError {
    /// A party named in the activity is not a genesis partner.
    #[error("{role} {partner} is not a genesis partner")]
    UnknownPartner {
        /// The key found.
        partner: PartnerId,
        /// Where it was found ("redemption issuer", "issued", …).
        role: &'static str,
    },
    /// A partner appears twice in the genesis or in a statement's partner list.
    #[error("partner {partner} is listed twice")]
    DuplicatePartner {
        /// The repeated key.
        partner: PartnerId,
    },
    /// A parameter settlement depends on is unusable.
    #[error("{field} is invalid for settlement: {reason}")]
    Parameter {
        /// Which parameter.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A sum or product does not fit its integer type.
    #[error("{what} overflows for partner {partner}")]
    Overflow {
        /// The quantity that overflowed.
        what: &'static str,
        /// The partner it belongs to (the issuer for points and owed money).
        partner: PartnerId,
    },
    /// An issuer's outstanding points would be negative: more left its books than it ever had.
    #[error(
        "outstanding points of issuer {issuer} would be negative: {opening} opening + {issued} \
         issued − {redeemed} redeemed − {expired} expired + {restored} restored"
    )]
    OutstandingUnderflow {
        /// The issuer.
        issuer: PartnerId,
        /// Outstanding at the start of the epoch.
        opening: Points,
        /// Issued this epoch.
        issued: Points,
        /// Redeemed this epoch.
        redeemed: Points,
        /// Expired this epoch.
        expired: Points,
        /// Restored this epoch.
        restored: Points,
    },
    /// An epoch after the first was settled without the previous statement, which would silently
    /// reset every issuer's outstanding liability to zero.
    #[error(
        "epoch {epoch} needs the statement of epoch {epoch}−1 to carry outstanding points forward"
    )]
    MissingPrevious {
        /// The epoch being settled.
        epoch: Epoch,
    },
    /// The previous statement is not for the epoch just before.
    #[error("the previous statement is for epoch {previous}, not the epoch before {epoch}")]
    NotConsecutive {
        /// The previous statement's epoch.
        previous: Epoch,
        /// The epoch being settled.
        epoch: Epoch,
    },
    /// The previous statement was made for another partner set.
    #[error("the previous statement does not match the genesis: {reason}")]
    PreviousMismatch {
        /// What differs.
        reason: &'static str,
    },
    /// A table does not have one entry per partner.
    #[error("{what} has {found} entries, expected {expected}")]
    Shape {
        /// Which table (or row).
        what: &'static str,
        /// One per partner.
        expected: usize,
        /// What it has.
        found: usize,
    },
    /// A partner is owed money by itself.
    #[error("partner {partner} owes itself {points} points / {money} minor units; the diagonal must be zero")]
    SelfOwed {
        /// The partner.
        partner: PartnerId,
        /// Points on the diagonal.
        points: Points,
        /// Money on the diagonal.
        money: u64,
    },
    /// A money cell does not follow from its points, the point value and the fee.
    #[error("{issuer} owes {redeemer} {found} minor units, but {points} points make {expected}")]
    MoneyMismatch {
        /// Row.
        issuer: PartnerId,
        /// Column.
        redeemer: PartnerId,
        /// The cell's points.
        points: Points,
        /// What those points are worth after the fee.
        expected: u64,
        /// What the statement says.
        found: u64,
    },
    /// A net position does not follow from the gross money matrix.
    #[error("net position of {partner} is {found}, but the gross matrix gives {expected}")]
    NetMismatch {
        /// The partner.
        partner: PartnerId,
        /// Received minus paid, from the matrix.
        expected: i64,
        /// What the statement says.
        found: i64,
    },
    /// Net positions that do not sum to zero cannot be settled.
    #[error("net positions sum to {sum}, not zero")]
    NetSumNonZero {
        /// Their sum.
        sum: i128,
    },
    /// More transfers than partners minus one.
    #[error("{count} transfers for {partners} partners; at most n−1 are allowed")]
    TooManyTransfers {
        /// Transfers in the statement.
        count: usize,
        /// Partners in the statement.
        partners: usize,
    },
    /// A transfer that no correct netting makes.
    #[error("transfer #{index} ({from} pays {to} {amount}) is invalid: {reason}")]
    BadTransfer {
        /// Position in the transfer list.
        index: usize,
        /// Payer.
        from: PartnerId,
        /// Payee.
        to: PartnerId,
        /// Amount.
        amount: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// After the transfers a partner is still owed, or still owes, money.
    #[error("after the transfers partner {partner} still has {residual} minor units unsettled")]
    Unsettled {
        /// The partner.
        partner: PartnerId,
        /// Net position plus what it paid minus what it received (should be zero).
        residual: i128,
    },
    /// An issuer's point totals contradict each other or the gross matrix.
    #[error("totals of issuer {issuer} are inconsistent: {reason}")]
    Totals {
        /// The issuer.
        issuer: PartnerId,
        /// Which rule fails.
        reason: &'static str,
    },
    /// The statement is too large for the canonical encoding, so it has no hash.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Money for `points` before the fee: `⌊points × minor_units / per_points⌋`, the same formula as
/// [`Genesis::money_for_points`]. `None` on overflow or a zero `per_points`.
pub fn money_for_points(point_value: PointValue, points: Points) -> Option<u64> {
    point_value.money_for(points)
}

/// The fee conceded on `money`: `⌊money × fee_bps / 10 000⌋`. `None` if it would exceed `money`.
pub fn fee_for(money: u64, fee_bps: u32) -> Option<u64> {
    let fee = u128::from(money)
        .checked_mul(u128::from(fee_bps))?
        .checked_div(u128::from(BPS_DENOMINATOR))?;
    u64::try_from(fee).ok().filter(|&fee| fee <= money)
}

/// What an issuer owes a redeemer for `points`: their money minus the fee. `None` on overflow or
/// unusable parameters. Every cell of [`SettlementStatement::gross_money`] is this of its points.
pub fn cell_money(point_value: PointValue, fee_bps: u32, points: Points) -> Option<u64> {
    let money = money_for_points(point_value, points)?;
    money.checked_sub(fee_for(money, fee_bps)?)
}

pub(crate) fn check_parameters(
    point_value: PointValue,
    fee_bps: u32,
) -> Result<(), SettlementError> {
    if point_value.per_points == 0 {
        return Err(SettlementError::Parameter {
            field: "point_value.per_points",
            reason: "must be at least 1",
        });
    }
    if fee_bps > BPS_DENOMINATOR {
        return Err(SettlementError::Parameter {
            field: "fee_bps",
            reason: "must be at most 10000",
        });
    }
    Ok(())
}

pub(crate) fn check_distinct(
    partners: &[PartnerId],
) -> Result<BTreeSet<PartnerId>, SettlementError> {
    let mut set = BTreeSet::new();
    for &partner in partners {
        if !set.insert(partner) {
            return Err(SettlementError::DuplicatePartner { partner });
        }
    }
    Ok(set)
}

pub(crate) fn check_len(
    what: &'static str,
    expected: usize,
    found: usize,
) -> Result<(), SettlementError> {
    if expected == found {
        Ok(())
    } else {
        Err(SettlementError::Shape {
            what,
            expected,
            found,
        })
    }
}

impl SettlementStatement {
    /// The canonical hash, sealed in the epoch's checkpoint: `blake3(tag::STATEMENT ‖ encode(self))`.
    pub fn hash(&self) -> Hash {
        Hash::tagged(tag::STATEMENT, &encode(self))
    }

    /// Total minor units owed across the gross matrix (what would move without netting).
    pub fn gross_total(&self) -> u128 {
        self.gross_money
            .iter()
            .flatten()
            .map(|&m| u128::from(m))
            .fold(0u128, u128::saturating_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::{Genesis, GenesisPartner};
    use crate::test_util::test_genesis;

    fn genesis(n: usize, fee_bps: u32) -> Genesis {
        Genesis {
            fee_bps,
            ..test_genesis(n).0
        }
    }

    #[test]
    fn money_agrees_with_genesis_and_rounds_down() {
        let mut g = genesis(1, 0);
        for pv in [(1, 1), (1, 2), (3, 7), (u64::MAX, 1), (5, u64::MAX)] {
            g.point_value = PointValue {
                minor_units: pv.0,
                per_points: pv.1,
            };
            for points in [0, 1, 3, 999, u64::MAX] {
                assert_eq!(
                    money_for_points(g.point_value, points),
                    g.money_for_points(points)
                );
            }
        }
        let pv = PointValue {
            minor_units: 1,
            per_points: 2,
        };
        assert_eq!(cell_money(pv, 0, 1001), Some(500));
        // 700 minor units at 2.5%: fee 17.5 rounds down to 17.
        assert_eq!(
            cell_money(
                PointValue {
                    minor_units: 1,
                    per_points: 1
                },
                250,
                700
            ),
            Some(683)
        );
        assert_eq!(fee_for(100, 10_000), Some(100));
        assert_eq!(fee_for(10_000, 10_001), None);
        assert_eq!(fee_for(u64::MAX, 10_000), Some(u64::MAX));
    }
    #[test]
    fn bad_parameters_are_typed() {
        let mut g = genesis(2, 10_001);
        let a = EpochActivity::default();
        assert!(matches!(
            compute_statement(&g, &a, None),
            Err(SettlementError::Parameter {
                field: "fee_bps",
                ..
            })
        ));
        g.fee_bps = 0;
        g.point_value.per_points = 0;
        assert!(matches!(
            compute_statement(&g, &a, None),
            Err(SettlementError::Parameter {
                field: "point_value.per_points",
                ..
            })
        ));
        let mut g = genesis(2, 0);
        g.partners[1].id = g.partners[0].id;
        assert!(matches!(
            compute_statement(&g, &a, None),
            Err(SettlementError::DuplicatePartner { .. })
        ));
    }
    #[test]
    fn too_many_partners_to_encode_is_an_error() {
        // 300 partners → two 300×300 u64 matrices ≈ 1.4 MB > the canonical limit.
        let mut g = genesis(0, 0);
        g.partners = (0..300u32)
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..4].copy_from_slice(&i.to_le_bytes());
                GenesisPartner {
                    name: format!("p{i}"),
                    id: PartnerId(crate::crypto::PublicKey(seed)),
                    settlement_account: String::new(),
                }
            })
            .collect();
        assert!(matches!(
            compute_statement(&g, &EpochActivity::default(), None),
            Err(SettlementError::Encode(_))
        ));
    }
}
