//! An order token as a POS scans it (any text), parsed and its signature checked.
#![no_main]

use coalition_client::order::parse_order_token;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(order) = parse_order_token(&text) {
        let _ = order.verify_signature();
    }
});
