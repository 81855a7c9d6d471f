//! What a partner's peer sends over libp2p: gossip on each topic, requests and responses, decoded
//! with their item limits; what decodes must fit the limits when sent back out.
#![no_main]

use coalition_core::wire::{Gossip, Request, Response, Topic, WireMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for topic in Topic::ALL {
        if let Ok(g) = Gossip::from_wire_on(data, topic) {
            assert_eq!(g.topic(), topic);
            assert!(
                g.to_wire().is_ok(),
                "a gossip message we accept we could not send"
            );
        }
    }
    if let Ok(r) = Request::from_wire(data) {
        assert!(r.to_wire().is_ok(), "a request we accept we could not send");
    }
    if let Ok(r) = Response::from_wire(data) {
        let _ = r.fit_to_limits().to_wire();
    }
});
