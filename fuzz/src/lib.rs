//! What the fuzz targets share: a fixed genesis whose partner keys are known, so that fuzzed entries
//! can be checked against real rules rather than refused at the first partner lookup.

use coalition_core::crypto::Keypair;
use coalition_core::genesis::{Genesis, GenesisPartner, PointValue};
use coalition_core::record::PartnerId;

/// Four partners with secret seeds `[1; 32]` … `[4; 32]`.
pub fn genesis() -> Genesis {
    Genesis {
        coalition: "fuzz".into(),
        genesis_time: 0,
        epoch_secs: 60,
        partners: (1..=4u8)
            .map(|b| GenesisPartner {
                name: format!("p{b}"),
                id: PartnerId(Keypair::from_secret_bytes(&[b; 32]).public()),
                settlement_account: String::new(),
            })
            .collect(),
        fault_tolerance: None,
        point_value: PointValue { minor_units: 1, per_points: 1 },
        currency: "EUR".into(),
        fee_bps: 0,
        max_clock_skew_secs: 60,
    }
}
