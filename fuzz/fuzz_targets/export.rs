//! An auditor's export file, checked against the genesis: never a panic, never an "OK" for garbage.
#![no_main]

use coalition_core::audit::{verify_export, EXPORT_MAGIC};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut file = EXPORT_MAGIC.to_vec();
    file.extend_from_slice(data);
    let _ = verify_export(coalition_fuzz::genesis(), &file[..], |_| {});
    let _ = verify_export(coalition_fuzz::genesis(), data, |_| {});
});
