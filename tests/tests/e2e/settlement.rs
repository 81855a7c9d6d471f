//! Epochs, sealed checkpoints, settlement and the offline audit, on 4 real nodes: earning and
//! cross-partner redemption over several epochs; every node holds byte-identical sealed checkpoints
//! and statements whose money adds up; the auditor verifies the export and catches 100 random
//! single-byte changes; a record's inclusion proof verifies offline and fails when changed; a
//! partner that is down delays sealing, and sealing completes when it returns.

use crate::{ALL, EPOCH_SECS};
use anyhow::{bail, Context, Result};
use coalition_core::encoding::encode;
use coalition_core::hash::Hash;
use coalition_tests::{bin, check_output, json_output, wait_for, Cluster};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const PASS: &str = "settlement test passphrase";

/// Runs `coalition` with a wallet passphrase, against `node`.
fn wallet_cli(node: &str, args: &[&str]) -> Result<Output> {
    Command::new(bin("coalition"))
        .arg("--node")
        .arg(node)
        .args(args)
        .env("COALITION_WALLET_PASSPHRASE", PASS)
        .env_remove("COALITION_NODE")
        .env_remove("COALITION_TOKEN")
        .output()
        .context("running coalition")
}

fn wait_epoch_after(c: &Cluster, epoch: u64) -> Result<u64> {
    wait_for(
        "the next epoch",
        Duration::from_secs(EPOCH_SECS * 4),
        || {
            let e = c.status(0)?.current_epoch;
            Ok((e > epoch).then_some(e))
        },
    )
}

#[test]
fn epochs_seal_identically_settle_and_audit() -> Result<()> {
    let mut c = Cluster::start(4, EPOCH_SECS)?;
    c.wait_connected(&ALL, Duration::from_secs(30))?;
    let dir = c.dir.path().to_path_buf();
    let genesis = c.genesis_path.to_string_lossy().to_string();
    let names: Vec<String> = c.status(0)?.logs.iter().map(|l| l.name.clone()).collect();

    // Three members, each with a wallet.
    let mut members = Vec::new();
    for m in 0..3 {
        let w = dir
            .join(format!("m{m}.wallet"))
            .to_string_lossy()
            .to_string();
        let v = json_output(
            "member new",
            &wallet_cli(&c.url(0), &["--json", "member", "new", "--wallet", &w])?,
        )?;
        let id = v["member"].as_str().context("member id")?.to_string();
        members.push((w, id));
    }

    // Three epochs of activity: every partner issues, members redeem at the next partner along.
    let mut issued = 0u64;
    let mut redeemed = 0u64;
    let mut orders: Vec<Hash> = Vec::new();
    let mut epoch = c.status(0)?.current_epoch;
    // An entry belongs to its log's open epoch, which trails the clock until the log's close is
    // appended: activity can land in the earliest epoch any log is still open in.
    let mut first_epoch = epoch;
    for i in 0..4 {
        for l in c.status(i)?.logs {
            first_epoch = first_epoch.min(l.open_epoch);
        }
    }
    for round in 0..3u64 {
        for (m, (_, id)) in members.iter().enumerate() {
            for p in 0..4 {
                let points = 10 + 7 * p as u64 + 3 * m as u64 + round;
                let pts = points.to_string();
                let out = c.cli(
                    p,
                    &[
                        "--json", "partner", "issue", "--member", id, "--points", &pts,
                    ],
                )?;
                check_output("partner issue", &out)?;
                issued += points;
            }
        }
        for (m, (w, id)) in members.iter().enumerate() {
            let at = (m + round as usize + 1) % 4;
            // The redeeming node must hold the member's lots before the wallet picks them.
            wait_for("lots to replicate", Duration::from_secs(20), || {
                let b = c.client(at).balance(&id.parse()?)?;
                Ok((b.available >= 40).then_some(()))
            })?;
            let points = 25 + m as u64 + round;
            let pts = points.to_string();
            let v = json_output(
                "member redeem",
                &wallet_cli(
                    &c.url(at),
                    &[
                        "--json", "member", "redeem", "--wallet", w, "--points", &pts,
                    ],
                )?,
            )?;
            orders.push(v["order_id"].as_str().context("order id")?.parse()?);
            redeemed += points;
        }
        epoch = wait_epoch_after(&c, epoch)?;
    }
    let last_active = epoch - 1;

    // Every node seals every epoch up to the last active one.
    for i in 0..4 {
        c.wait_sealed(i, last_active, Duration::from_secs(EPOCH_SECS * 10))?;
    }

    // Byte-identical checkpoints and statements everywhere; the money adds up.
    let (mut total_issued, mut total_redeemed) = (0u64, 0u64);
    for e in 0..=last_active {
        let reference = c.client(0).checkpoint(e)?;
        let statement = c.client(0).settlement(e)?;
        assert!(statement.sealed);
        for i in 1..4 {
            let cp = c.client(i).checkpoint(e)?;
            assert_eq!(
                encode(&cp.checkpoint),
                encode(&reference.checkpoint),
                "checkpoint {e} differs at node {i}"
            );
            assert_eq!(
                c.client(i).settlement(e)?.statement,
                statement.statement,
                "statement {e} differs at node {i}"
            );
        }
        assert_eq!(reference.checkpoint.statement, statement.statement.hash());
        let s = &statement.statement;
        assert_eq!(
            s.net.iter().sum::<i64>(),
            0,
            "net positions of epoch {e} do not sum to zero"
        );
        let mut after = s.net.clone();
        for t in &s.transfers {
            let from = s
                .partners
                .iter()
                .position(|p| *p == t.from)
                .context("payer")?;
            let to = s
                .partners
                .iter()
                .position(|p| *p == t.to)
                .context("payee")?;
            after[from] += t.amount as i64;
            after[to] -= t.amount as i64;
        }
        assert!(
            after.iter().all(|x| *x == 0),
            "transfers of epoch {e} do not settle the net positions"
        );
        assert!(s.transfers.len() < 4);
        total_issued += s.per_issuer.iter().map(|t| t.issued).sum::<u64>();
        total_redeemed += s.per_issuer.iter().map(|t| t.redeemed).sum::<u64>();
        if e < first_epoch {
            assert_eq!(s.gross_total(), 0);
        }
    }
    assert_eq!(
        total_issued, issued,
        "statements account for every point issued"
    );
    assert_eq!(
        total_redeemed, redeemed,
        "statements account for every point redeemed"
    );

    // The auditor's export verifies offline.
    let export = dir.join("ledger.export");
    let ex = export.to_string_lossy().to_string();
    let e = last_active.to_string();
    check_output(
        "audit export",
        &c.cli(1, &["audit", "export", "--out", &ex, "--epoch", &e])?,
    )?;
    let ok =
        coalition_tests::run_cli(&["audit", "verify", "--export", &ex, "--genesis", &genesis])?;
    check_output("audit verify", &ok)?;
    assert!(String::from_utf8_lossy(&ok.stdout).contains("audit OK"));

    // 100 random single-byte changes: each fails, and says what.
    let good = std::fs::read(&export)?;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let bad_path = dir.join("tampered.export");
    let bad = bad_path.to_string_lossy().to_string();
    for round in 0..100 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let i = (seed % good.len() as u64) as usize;
        let mut copy = good.clone();
        copy[i] = copy[i].wrapping_add(1 + (seed >> 32) as u8 % 255);
        std::fs::write(&bad_path, &copy)?;
        let out = coalition_tests::run_cli(&[
            "audit",
            "verify",
            "--export",
            &bad,
            "--genesis",
            &genesis,
        ])?;
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            bail!("round {round}: changing byte {i} of the export went unnoticed");
        }
        assert!(
            err.contains("audit FAILED") || err.contains("coalition:"),
            "round {round}: no reason given: {err}"
        );
    }

    // A redemption's inclusion proof, saved and checked offline; one changed byte breaks it.
    let proof = dir.join("receipt.proof");
    let pr = proof.to_string_lossy().to_string();
    let order = orders[0].to_string();
    check_output(
        "audit prove",
        &c.cli(2, &["audit", "prove", "--record", &order, "--out", &pr])?,
    )?;
    check_output(
        "audit check-proof",
        &coalition_tests::run_cli(&[
            "audit",
            "check-proof",
            "--proof",
            &pr,
            "--genesis",
            &genesis,
        ])?,
    )?;
    tamper_proof(&proof, &genesis)?;

    // A partner that is down delays sealing and is named; when it returns, sealing completes.
    let down = 3;
    c.stop(down)?;
    let stopped_in = c.status(0)?.current_epoch;
    let awaited = wait_for(
        "status to name the partner that is down",
        Duration::from_secs(EPOCH_SECS * 6),
        || {
            let s = c.status(0)?;
            Ok(s.awaiting
                .contains(&names[down])
                .then_some(s.last_sealed_epoch))
        },
    )?;
    assert!(
        awaited.unwrap_or(0) <= stopped_in,
        "an epoch the stopped partner never closed was sealed"
    );
    c.restart(down)?;
    let next = c.status(0)?.current_epoch;
    for i in 0..4 {
        c.wait_sealed(
            i,
            next.saturating_sub(1).max(stopped_in),
            Duration::from_secs(EPOCH_SECS * 15),
        )?;
    }
    Ok(())
}

/// Changes single hex digits of a saved proof: every change must make `check-proof` fail.
fn tamper_proof(proof: &Path, genesis: &str) -> Result<()> {
    let text = std::fs::read_to_string(proof)?;
    let positions: Vec<usize> = text
        .char_indices()
        .filter(|(_, ch)| ch.is_ascii_hexdigit())
        .map(|(i, _)| i)
        .collect();
    let bad = proof.with_extension("tampered");
    let b = bad.to_string_lossy().to_string();
    for k in 0..20 {
        let i = positions[(k * 7919 + 13) % positions.len()];
        let mut bytes = text.clone().into_bytes();
        bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
        std::fs::write(&bad, &bytes)?;
        let out = coalition_tests::run_cli(&[
            "audit",
            "check-proof",
            "--proof",
            &b,
            "--genesis",
            genesis,
        ])?;
        if out.status.success() {
            bail!("changing byte {i} of the proof went unnoticed");
        }
    }
    Ok(())
}
