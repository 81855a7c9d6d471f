//! What the fuzz targets share: a fixed genesis whose partner keys are known, so that fuzzed entries
//! can be checked against real rules rather than refused at the first partner lookup.

use coalition_core::genesis::Genesis;

/// The core's test coalition of four partners, with secret seeds `[1; 32]` … `[4; 32]`.
pub fn genesis() -> Genesis {
    coalition_core::test_util::test_genesis(4).0
}
