//! A peer's entries: decoded, then fed through the replication driver's full checks (signature, log
//! chain, ledger rules, parking) against a genesis whose keys are known.
#![no_main]

use coalition_core::encoding::decode;
use coalition_core::memory::MemoryLedger;
use coalition_core::record::SignedEntry;
use coalition_core::replica::Ledger;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut ledger = Ledger::new(coalition_fuzz::genesis(), MemoryLedger::new(), 64);
    // One input may carry several frames: u16 LE length ‖ bytes.
    let mut rest = data;
    while rest.len() >= 2 {
        let len = u16::from_le_bytes([rest[0], rest[1]]) as usize;
        let body = &rest[2..];
        let (frame, tail) = body.split_at(len.min(body.len()));
        if let Ok(entry) = decode::<SignedEntry>(frame) {
            let _ = ledger.ingest(entry);
        }
        rest = tail;
    }
});
