//! Every canonical type that arrives from outside (peers, files, proofs), decoded from the same bytes;
//! what decodes must re-encode to the same bytes (one canonical form).
#![no_main]

use coalition_core::audit::ExportItem;
use coalition_core::checkpoint::{Checkpoint, CheckpointSig, RecordProof, SealedCheckpoint};
use coalition_core::encoding::{decode, encode};
use coalition_core::log::Equivocation;
use coalition_core::record::*;
use coalition_core::settlement::SettlementStatement;
use libfuzzer_sys::fuzz_target;

fn canonical<T: serde::Serialize + serde::de::DeserializeOwned>(bytes: &[u8]) {
    if let Ok(v) = decode::<T>(bytes) {
        let again = encode(&v);
        assert_eq!(again, bytes, "two byte forms for one value");
    }
}

fuzz_target!(|data: &[u8]| {
    canonical::<SignedEntry>(data);
    canonical::<Entry>(data);
    canonical::<Record>(data);
    canonical::<SignedOrder>(data);
    canonical::<RedeemCert>(data);
    canonical::<Vote>(data);
    canonical::<Checkpoint>(data);
    canonical::<CheckpointSig>(data);
    canonical::<SealedCheckpoint>(data);
    canonical::<SettlementStatement>(data);
    canonical::<ExportItem>(data);
    canonical::<Equivocation>(data);
    if let Ok(proof) = decode::<RecordProof>(data) {
        let _ = proof.verify(&coalition_fuzz::genesis());
    }
    if let Ok(sealed) = decode::<SealedCheckpoint>(data) {
        let _ = sealed.verify(&coalition_fuzz::genesis());
    }
    if let Ok(eq) = decode::<Equivocation>(data) {
        let _ = eq.verify();
    }
});
