//! The genesis: who the partners are and the coalition's fixed parameters.
//!
//! Every rule that depends on the membership (quorum, who may vote, who may append a log) reads it
//! from here. A node, a wallet and an auditor all start from the same genesis file; its hash names the
//! coalition.

use crate::encoding::encode;
use crate::hash::{tag, Hash};
use crate::record::{Epoch, PartnerId, Timestamp};
use serde::{Deserialize, Serialize};

/// One partner merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisPartner {
    /// Display name ("Café Lumière").
    pub name: String,
    /// Its key: signs its log, its votes and checkpoints; also its libp2p identity.
    pub id: PartnerId,
    /// Where settlement transfers to this partner are paid (an IBAN or internal account).
    pub settlement_account: String,
}

/// How much money one point is worth: `minor_units` per `per_points` points (e.g. 1 cent per 2 points).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointValue {
    /// Money in minor units (cents)...
    pub minor_units: u64,
    /// ...for this many points. At least 1.
    pub per_points: u64,
}

impl PointValue {
    /// Money for `points`, in minor units: `⌊points × minor_units / per_points⌋`, computed in u128.
    /// `None` on overflow or a zero `per_points`.
    pub fn money_for(self, points: u64) -> Option<u64> {
        let m = u128::from(points).checked_mul(u128::from(self.minor_units))?;
        let v = m.checked_div(u128::from(self.per_points))?;
        u64::try_from(v).ok()
    }
}

/// The coalition's founding document.
///
/// Unknown fields are refused: a node that ignored a parameter it does not know would follow other
/// rules than its peers while claiming the same coalition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// The coalition's name.
    pub coalition: String,
    /// Start of epoch 0.
    pub genesis_time: Timestamp,
    /// Length of an epoch in seconds (a day in production, seconds in the demo).
    pub epoch_secs: u64,
    /// The partners, in a fixed order (settlement tables use it).
    pub partners: Vec<GenesisPartner>,
    /// How many partners may be dishonest; `None` means ⌊(n−1)/3⌋.
    pub fault_tolerance: Option<u32>,
    /// What a point is worth in settlement.
    pub point_value: PointValue,
    /// ISO currency code of settlement money.
    pub currency: String,
    /// Interchange fee the redeemer concedes on what it is owed, in basis points (0..=10000).
    pub fee_bps: u32,
    /// How far an order's time may be from a voter's clock, in seconds.
    pub max_clock_skew_secs: u64,
}

/// Why a genesis document is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// No partners.
    #[error("genesis lists no partners")]
    NoPartners,
    /// A partner key appears twice.
    #[error("partner key {key} is listed twice")]
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// A partner name appears twice.
    #[error("partner name {name:?} is listed twice")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A partner key is not a usable ed25519 key.
    #[error("partner {name:?} has an invalid key")]
    BadKey {
        /// The partner's name.
        name: String,
    },
    /// A parameter is out of range.
    #[error("{field} is invalid: {reason}")]
    Parameter {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// Most partners a coalition may have: the settlement statement's n×n matrices must fit in one
/// canonical message ([`crate::encoding::MAX_ENCODED_LEN`]).
pub const MAX_PARTNERS: usize = 200;

impl Genesis {
    /// Checks the document is internally consistent. Every consumer calls this after loading.
    pub fn validate(&self) -> Result<(), GenesisError> {
        if self.partners.is_empty() {
            return Err(GenesisError::NoPartners);
        }
        let mut keys = std::collections::BTreeSet::new();
        let mut names = std::collections::BTreeSet::new();
        for p in &self.partners {
            if !keys.insert(p.id) {
                return Err(GenesisError::DuplicateKey { key: p.id.to_hex() });
            }
            if !names.insert(p.name.as_str()) {
                return Err(GenesisError::DuplicateName {
                    name: p.name.clone(),
                });
            }
            if !p.id.0.is_valid() {
                return Err(GenesisError::BadKey {
                    name: p.name.clone(),
                });
            }
        }
        let param = |field, reason: &str| GenesisError::Parameter {
            field,
            reason: reason.into(),
        };
        // A settlement statement holds n×n matrices and must fit in one canonical message.
        if self.partners.len() > MAX_PARTNERS {
            return Err(param(
                "partners",
                "at most 200 partners (a settlement statement must fit in one message)",
            ));
        }
        if self.epoch_secs == 0 {
            return Err(param("epoch_secs", "must be at least 1"));
        }
        if self.point_value.per_points == 0 {
            return Err(param("point_value.per_points", "must be at least 1"));
        }
        if self.fee_bps > 10_000 {
            return Err(param("fee_bps", "must be at most 10000"));
        }
        if let Some(f) = self.fault_tolerance {
            let n = self.partners.len() as u64;
            if 3 * u64::from(f) >= n {
                return Err(param("fault_tolerance", "needs at least 3f+1 partners"));
            }
        }
        Ok(())
    }

    /// The coalition's id: the hash of the canonical genesis.
    pub fn hash(&self) -> Hash {
        Hash::tagged(tag::GENESIS, &encode(self))
    }

    /// Number of partners.
    pub fn n(&self) -> usize {
        self.partners.len()
    }

    /// Partners that may be dishonest.
    pub fn f(&self) -> usize {
        match self.fault_tolerance {
            Some(f) => f as usize,
            None => self.n().saturating_sub(1) / 3,
        }
    }

    /// Votes (and checkpoint signatures) needed: ⌈(n+f+1)/2⌉. Any two quorums share an honest partner.
    pub fn quorum(&self) -> usize {
        // n ≤ MAX_PARTNERS for a valid genesis, so this never saturates.
        self.n().saturating_add(self.f()).saturating_add(2) / 2
    }

    /// The partner's position in the genesis, if it is a partner.
    pub fn index_of(&self, id: &PartnerId) -> Option<usize> {
        self.partners.iter().position(|p| &p.id == id)
    }

    /// The partner, if it is one.
    pub fn partner(&self, id: &PartnerId) -> Option<&GenesisPartner> {
        self.partners.iter().find(|p| &p.id == id)
    }

    /// Whether `id` is a genesis partner.
    pub fn is_partner(&self, id: &PartnerId) -> bool {
        self.index_of(id).is_some()
    }

    /// The epoch a wall-clock time falls in (times before genesis are in epoch 0).
    pub fn epoch_at(&self, time: Timestamp) -> Epoch {
        time.saturating_sub(self.genesis_time)
            .checked_div(self.epoch_secs)
            .unwrap_or(0)
    }

    /// The first second of `epoch`.
    pub fn epoch_start(&self, epoch: Epoch) -> Timestamp {
        self.genesis_time
            .saturating_add(epoch.saturating_mul(self.epoch_secs))
    }

    /// The first second after `epoch` ends.
    pub fn epoch_end(&self, epoch: Epoch) -> Timestamp {
        self.genesis_time
            .saturating_add(epoch.saturating_add(1).saturating_mul(self.epoch_secs))
    }

    /// Money owed for `points`, in minor units, rounded down; `None` on overflow.
    pub fn money_for_points(&self, points: u64) -> Option<u64> {
        self.point_value.money_for(points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn genesis(n: usize) -> Genesis {
        crate::test_util::test_genesis(n).0
    }

    #[test]
    fn an_epoch_runs_from_its_start_to_its_end() {
        let g = genesis(4);
        for e in [0, 1, 7, 1000] {
            let (start, end) = (g.epoch_start(e), g.epoch_end(e));
            assert_eq!(end - start, g.epoch_secs);
            assert_eq!(g.epoch_at(start), e);
            assert_eq!(g.epoch_at(end - 1), e);
            assert_eq!(g.epoch_at(end), e + 1);
        }
    }

    #[test]
    fn quorum_sizes() {
        let q: Vec<(usize, usize)> = (1..=10)
            .map(|n| (genesis(n).f(), genesis(n).quorum()))
            .collect();
        assert_eq!(q[0], (0, 1)); // n=1
        assert_eq!(q[3], (1, 3)); // n=4
        assert_eq!(q[6], (2, 5)); // n=7
        for (i, (f, quorum)) in q.iter().enumerate() {
            let n = i + 1;
            // Two quorums overlap in more than f partners.
            assert!(2 * quorum > n + f, "n={n}");
            assert!(
                *quorum <= n - f || n == 1,
                "n={n}: quorum must be reachable with f down"
            );
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let g = genesis(2);
        let mut doc = serde_json::to_value(&g).unwrap();
        let back: Genesis = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(back, g);
        doc["chain_id"] = serde_json::json!(31337);
        let err = serde_json::from_value::<Genesis>(doc.clone()).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `chain_id`"),
            "{err}"
        );
        doc.as_object_mut().unwrap().remove("chain_id");
        doc["partners"][0]["iban"] = serde_json::json!("DE00");
        let err = serde_json::from_value::<Genesis>(doc).unwrap_err();
        assert!(err.to_string().contains("unknown field `iban`"), "{err}");
    }

    #[test]
    fn validate_catches_mistakes() {
        let mut g = genesis(4);
        assert!(g.validate().is_ok());
        g.partners[1].id = g.partners[0].id;
        assert!(matches!(
            g.validate(),
            Err(GenesisError::DuplicateKey { .. })
        ));
        let mut g = genesis(4);
        g.fault_tolerance = Some(2);
        assert!(g.validate().is_err());
        let mut g = genesis(2);
        g.epoch_secs = 0;
        assert!(g.validate().is_err());
    }

    #[test]
    fn money_rounds_down_and_never_overflows() {
        let mut g = genesis(1);
        g.point_value = PointValue {
            minor_units: 1,
            per_points: 2,
        };
        assert_eq!(g.money_for_points(3), Some(1));
        g.point_value = PointValue {
            minor_units: u64::MAX,
            per_points: 1,
        };
        assert_eq!(g.money_for_points(2), None);
    }
}
