//! A full disk: the node answers writes with "storage failed" (not "shutting down"), exits with its
//! own status for a supervisor to restart it, and once space is back it starts with everything it
//! acknowledged. Its data directory is on a small tmpfs of its own, filled by the test.

use anyhow::{ensure, Result};
use coalition_client::types::IssueRequest;
use coalition_core::crypto::Keypair;
use coalition_core::record::MemberId;
use coalition_node::service::EXIT_STORAGE_FAILED;
use coalition_tests::disk::SmallDisk;
use coalition_tests::{is_code, Cluster};
use std::time::{Duration, Instant};

use crate::LONG_EPOCH_SECS;

#[test]
fn a_full_disk_stops_the_node_with_its_own_status_and_loses_nothing() -> Result<()> {
    let mut c = Cluster::init(1, LONG_EPOCH_SECS)?;
    let disk = SmallDisk::mount(&c.dir.path().join("disk"), "48m")?;
    c.set_data_dir(0, &disk.path.join("data"))?;
    c.start_all()?;

    let member = MemberId(Keypair::generate().public());
    let issue = |c: &Cluster, i: u64| {
        c.client(0).issue(&IssueRequest {
            member,
            points: 1 + i % 7,
            reference: Some(format!("receipt {i}")),
            expires_in_secs: None,
        })
    };
    let mut acknowledged = 0u64;
    for i in 0..20 {
        issue(&c, i)?;
        acknowledged += 1 + i % 7;
    }

    disk.fill()?;
    // Space RocksDB set aside before the disk filled may take a few more writes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 20;
    let refusal = loop {
        ensure!(
            Instant::now() < deadline,
            "the node kept acknowledging issues on a full disk"
        );
        match issue(&c, i) {
            Ok(_) => acknowledged += 1 + i % 7,
            Err(e) => break e,
        }
        i += 1;
    };
    ensure!(
        is_code(&refusal, "storage_failed"),
        "a write on a full disk was answered {refusal}, not storage_failed"
    );

    let status = c.wait_exit(0, "the node to exit after its storage failed")?;
    let log = std::fs::read_to_string(&c.nodes[0].log)?;
    ensure!(
        status.code() == Some(EXIT_STORAGE_FAILED),
        "the node exited with {status}, not {EXIT_STORAGE_FAILED}:\n{log}"
    );
    ensure!(
        log.contains("storage failed"),
        "the node did not say its storage failed:\n{log}"
    );

    // Space is back: the node starts and holds every issue it acknowledged.
    disk.free()?;
    c.restart(0)?;
    let balance = c.client(0).balance(&member)?.available;
    ensure!(
        balance >= acknowledged,
        "after the restart the member has {balance} points; {acknowledged} were acknowledged"
    );
    issue(&c, i + 1)?;
    Ok(())
}
