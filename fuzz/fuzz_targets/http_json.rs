//! The JSON the node and the CLI accept from outside: API request bodies, API answers, the genesis
//! and the config and key files.
#![no_main]

use coalition_client::types::*;
use coalition_client::{KeyFile, NodeConfig};
use coalition_core::genesis::Genesis;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<IssueRequest>(data);
    let _ = serde_json::from_slice::<RedeemRequest>(data);
    let _ = serde_json::from_slice::<PartitionRequest>(data);
    let _ = serde_json::from_slice::<Status>(data);
    let _ = serde_json::from_slice::<Balance>(data);
    let _ = serde_json::from_slice::<LogRange>(data);
    let _ = serde_json::from_slice::<SettlementView>(data);
    let _ = serde_json::from_slice::<ErrorBody>(data);
    let _ = serde_json::from_slice::<KeyFile>(data);
    if let Ok(g) = serde_json::from_slice::<Genesis>(data) {
        if g.validate().is_ok() {
            let _ = (
                g.quorum(),
                g.hash(),
                g.epoch_end(u64::MAX),
                g.money_for_points(u64::MAX),
            );
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = toml::from_str::<NodeConfig>(text);
    }
});
