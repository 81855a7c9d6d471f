//! A member's wallet file (JSON, encrypted key): parsed, and opened when its key-derivation cost is
//! small enough to run thousands of times a second. Wrong bytes are a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = coalition_cli::wallet::check_bytes(data, "fuzz", 64);
});
