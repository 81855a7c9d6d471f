//! The end-to-end tests, in one test binary (one link of the harness and the node crate, not one per
//! file). Each module is a group of scenarios, and a test is named `module::test`:
//! - [`byzantine`]: a dishonest genesis partner on the wire is refused, and the others carry on;
//! - [`cli_contract`]: the command-line contract (`docs/cli-contract.md`), command by command;
//! - [`full_disk`]: a node whose disk fills stops with its own status and loses nothing;
//! - [`http_input`]: bad HTTP input, against one node run inside this process;
//! - [`http_limits`]: slow clients are cut off, and the POS keeps working meanwhile;
//! - [`node_start`]: settings, a genesis, a p2p port, a key live in another node or a write-ahead
//!   log a node refuses to start on;
//! - [`redemption`]: quorum-certified redemptions, double-spend races, refusals, quorum loss;
//! - [`release`]: a member's sequence number split between two orders is free again once their
//!   epochs close;
//! - [`rejoin`]: a node started on an old copy of its store gets its own log and votes back from
//!   partners before it signs anything;
//! - [`replication`]: log replication, a killed node, outsiders' keys;
//! - [`settlement`]: epochs, sealed checkpoints, settlement and the offline audit.
//!
//! Every test starts its own [`coalition_tests::Cluster`] (its own temporary directory and ports),
//! or its own in-process node ([`http_input`]), so the tests run in parallel threads of this one
//! process. The binaries they drive must be built first: `cargo test --workspace` (or `--no-run`, as
//! scripts/test.sh does) builds them, since the node and CLI crates have integration tests.

mod byzantine;
mod cli_contract;
mod full_disk;
mod http_input;
mod http_limits;
mod node_start;
mod redemption;
mod rejoin;
mod release;
mod replication;
mod settlement;

/// Short epochs, for the tests that watch epochs close and seal.
const EPOCH_SECS: u64 = 3;
/// Epochs long enough that no `EpochClose` lands during a test: log heads move only when we act.
const LONG_EPOCH_SECS: u64 = 86_400;
/// Every node of a 4-node cluster.
const ALL: [usize; 4] = [0, 1, 2, 3];
