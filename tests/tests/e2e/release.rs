//! No honest member is locked out by a sequence number that no certificate took
//! (docs/protocol.md, "Releasing a sequence number"), on 4 real nodes with 20-second epochs:
//! - `member redeem` while two partners are down gets two votes of three, and the order is kept;
//! - another order at the same number, once they are back, gets the other two votes: the number is
//!   split, and neither order can ever reach a quorum;
//! - once the epoch after the second order's is sealed everywhere, neither can be certified any
//!   more (each redeemer answers `order_too_late`), and the same `member redeem` as before signs a
//!   new order at that number, which every partner now votes for.

use crate::redemption::{expect_error, issue};
use crate::ALL;
use anyhow::{ensure, Context, Result};
use coalition_client::order::parse_order_token;
use coalition_client::types::RedeemResponse;
use coalition_core::cert_window::last_append_epoch;
use coalition_core::record::MemberId;
use coalition_tests::{logged, Cluster};
use std::time::Duration;

const PASS: &str = "release test passphrase";
const REPLICATE: Duration = Duration::from_secs(30);
/// Long enough that the first order's window (its epoch and the next) stays open while two nodes
/// restart and the second order is voted on, even on a loaded machine; short enough that waiting
/// for both windows to close takes under a minute.
const EPOCH_SECS: u64 = 20;

#[test]
fn a_split_sequence_number_is_released_once_its_epochs_close() -> Result<()> {
    // A short allowed skew: the window is the epoch after the order's time plus the skew.
    let mut c = Cluster::init_with(4, EPOCH_SECS, &["--clock-skew-secs", "2"])?;
    c.start_all()?;
    logged(&mut c, |c| {
        c.wait_connected(&ALL, REPLICATE)?;
        let genesis = c.genesis()?;
        let w = c
            .dir
            .path()
            .join("dana.wallet")
            .to_string_lossy()
            .to_string();
        let v = c.wallet_json(0, PASS, &["member", "new", "--wallet", &w])?;
        let dana: MemberId = v["member"].as_str().context("member id")?.parse()?;
        issue(c, 1, dana, 100, None)?;
        c.wait_converged(&ALL, REPLICATE)?;

        // Two of four down: partners 0 and 1 vote for the first order, one short of a quorum.
        c.stop(2)?;
        c.stop(3)?;
        let redeem = |c: &Cluster, wait: &str| {
            c.wallet_cli(
                0,
                PASS,
                &[
                    "member", "redeem", "--wallet", &w, "--points", "30", "--wait", wait,
                ],
            )
        };
        let first = redeem(c, "0")?;
        let err = String::from_utf8_lossy(&first.stderr).to_string();
        ensure!(
            !first.status.success() && err.contains("no quorum") && err.contains("kept in"),
            "the first redeem: {err}"
        );
        let kept = format!("{w}.pending");
        let token =
            std::fs::read_to_string(&kept).with_context(|| format!("no order at {kept}"))?;
        let a = parse_order_token(token.trim())?;

        // Back up; a second order at sequence 0, at partner 2, gets the votes of 2 and 3, and 0 and
        // 1 refuse it: the number is split.
        c.restart(2)?;
        c.restart(3)?;
        c.wait_connected(&ALL, REPLICATE)?;
        let p2 = c.partner_id(2).to_hex();
        let out = c.wallet_cli(
            0,
            PASS,
            &[
                "member",
                "sign-redeem",
                "--wallet",
                &w,
                "--points",
                "40",
                "--at",
                &p2,
                "--seq",
                "0",
            ],
        )?;
        ensure!(
            out.status.success(),
            "sign-redeem: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let b_token = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let b = parse_order_token(&b_token)?;
        ensure!(
            b.order.member_seq == 0,
            "the second order is at seq {}",
            b.order.member_seq
        );
        expect_error(
            "the second order",
            c.client(2).redeem(&b_token),
            422,
            "conflict",
            "already voted",
        )?;

        // Once every partner has closed the epoch after each order's, neither can be certified.
        let window = last_append_epoch(&genesis, a.order.time.max(b.order.time));
        for i in ALL {
            c.wait_sealed(i, window, Duration::from_secs(3 * EPOCH_SECS))?;
        }
        let late = c.client(2).redeem(&b_token);
        expect_error(
            "the second order after its window",
            late,
            422,
            "order_too_late",
            "Sign a new order",
        )?;

        // The same command as before: its kept order is too late, so it signs a new one at
        // sequence 0, which every partner now votes for.
        let out = c.wallet_cli(
            0,
            PASS,
            &[
                "--json", "member", "redeem", "--wallet", &w, "--points", "30",
            ],
        )?;
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        ensure!(out.status.success(), "the member's retry: {err}");
        ensure!(
            err.contains("can no longer be certified; signing a new one"),
            "the retry says: {err}"
        );
        let r: RedeemResponse = serde_json::from_slice(&out.stdout).context("the receipt")?;
        let o = &r.cert.order.order;
        ensure!(
            o.member_seq == 0 && o.id() != a.order.id() && o.id() != b.order.id(),
            "certified order {} at seq {}",
            r.order_id,
            o.member_seq
        );
        ensure!(
            !std::path::Path::new(&kept).exists(),
            "the pending order is still kept"
        );
        // Every node applied exactly that spend at sequence 0.
        crate::redemption::wait_balance_everywhere(c, &ALL, &dana, 70, 1)?;
        Ok(())
    })
}
