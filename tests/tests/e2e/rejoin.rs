//! A node started on an old copy of its store (a restored backup; a write-ahead log that lost its
//! tail looks the same) must not sign at positions of its own log, or votes for spends, that it
//! already signed: before it signs anything it gets both back from its partners
//! (docs/protocol.md, "Rejoining after a start"). On today's store these tests would see partner 0
//! append a second entry at a position its partners hold (an equivocation everywhere), and vote
//! for a second order at a spend it already voted for.

use crate::redemption::{expect_error, issue, Member};
use crate::{ALL, LONG_EPOCH_SECS};
use anyhow::{ensure, Context, Result};
use coalition_client::order::order_token;
use coalition_client::types::LogHeadInfo;
use coalition_tests::{copy_dir, logged, Cluster};
use std::path::{Path, PathBuf};
use std::time::Duration;

const REPLICATE: Duration = Duration::from_secs(30);

/// Stops node `i` cleanly and copies its store aside, as a backup would; restarts it.
fn back_up(c: &mut Cluster, i: usize) -> Result<PathBuf> {
    ensure!(c.stop(i)?, "node {i} did not stop cleanly");
    let backup = c.dir.path().join(format!("backup-{i}"));
    copy_dir(&c.data_dir(i), &backup)?;
    c.restart(i)?;
    c.wait_ready(i)?;
    Ok(backup)
}

/// Has the running node `i` write a backup with `coalition partner backup`; a second backup into
/// the same directory is refused and changes nothing.
fn back_up_online(c: &Cluster, i: usize) -> Result<PathBuf> {
    let backup = c.dir.path().join(format!("online-backup-{i}"));
    let dir = backup.to_string_lossy().to_string();
    let v = c.cli_json(i, &["partner", "backup", "--dir", &dir])?;
    ensure!(v["dir"] == dir.as_str(), "backup answer: {v}");
    for file in ["CURRENT", "anchors.txt"] {
        ensure!(backup.join(file).is_file(), "the backup has no {file}: {v}");
    }
    let again = c.cli(i, &["partner", "backup", "--dir", &dir])?;
    let said = String::from_utf8_lossy(&again.stderr);
    ensure!(
        again.status.code() == Some(1) && said.contains("already exists; name a new directory"),
        "a backup over an existing directory: {said}"
    );
    Ok(backup)
}

/// Stops node `i` and puts `backup` in place of its store.
fn restore(c: &mut Cluster, i: usize, backup: &Path) -> Result<()> {
    ensure!(c.stop(i)?, "node {i} did not stop cleanly");
    let data = c.data_dir(i);
    std::fs::remove_dir_all(&data)?;
    copy_dir(backup, &data)
}

/// Node `at`'s view of partner `of`'s log.
fn head(c: &Cluster, at: usize, of: usize) -> Result<LogHeadInfo> {
    let partner = c.partner_id(of);
    c.status(at)?
        .logs
        .into_iter()
        .find(|l| l.partner == partner)
        .with_context(|| format!("node {at} shows no log of partner {of}"))
}

fn node_log(c: &Cluster, i: usize) -> Result<String> {
    Ok(std::fs::read_to_string(&c.nodes[i].log)?)
}

#[test]
fn a_node_on_an_old_copy_of_its_store_fetches_its_own_log_back_before_appending() -> Result<()> {
    let mut c = Cluster::start(4, LONG_EPOCH_SECS)?;
    logged(&mut c, |c| {
        c.wait_connected(&ALL, REPLICATE)?;
        let member = Member::new();
        issue(c, 0, member.id, 10, None)?;
        c.wait_converged(&ALL, REPLICATE)?;
        // Taken while the node runs: a consistent copy, as a cold one would be.
        let backup = back_up_online(c, 0)?;

        // Three more entries of partner 0's log reach every partner; then its store goes back to
        // the copy from before them.
        for points in [20, 30, 40] {
            issue(c, 0, member.id, points, None)?;
        }
        c.wait_converged(&ALL, REPLICATE)?;
        let held = head(c, 1, 0)?;
        restore(c, 0, &backup)?;
        c.restart(0)?;
        c.wait_ready(0)?;

        // Ready means it holds its own log as far as its partners do, entry for entry.
        let own = head(c, 0, 0)?;
        ensure!(
            own.size == held.size && own.root == held.root,
            "partner 0 signs again with its own log at {} (root {}), partners hold {} (root {})",
            own.size,
            own.root,
            held.size,
            held.root
        );
        // Either the rejoin fetched them ("fetching it back"), or anti-entropy, which runs from
        // the start too, brought them first; both before the gate opened.
        let log = node_log(c, 0)?;
        ensure!(
            log.matches("rejoined:").count() == 2,
            "partner 0 did not rejoin after each of its two starts"
        );

        // Its next entry extends that log: nobody sees two entries for one position.
        issue(c, 0, member.id, 50, None)?;
        c.wait_converged(&ALL, REPLICATE)?;
        for i in ALL {
            let status = c.status(i)?;
            ensure!(
                status.equivocations.is_empty(),
                "node {i} records equivocations: {:?}",
                status.equivocations
            );
            ensure!(head(c, i, 0)?.size == held.size + 1);
        }
        Ok(())
    })
}

#[test]
fn a_node_that_lost_a_vote_learns_it_back_and_refuses_a_conflicting_order() -> Result<()> {
    let mut c = Cluster::start(4, LONG_EPOCH_SECS)?;
    logged(&mut c, |c| {
        c.wait_connected(&ALL, REPLICATE)?;
        let ids: Vec<_> = ALL.iter().map(|&i| c.partner_id(i)).collect();
        let member = Member::new();
        let (lot, _) = issue(c, 3, member.id, 100, None)?;
        c.wait_converged(&ALL, REPLICATE)?;
        let backup = back_up(c, 0)?;

        // With partners 2 and 3 stopped, an order at partner 1 gets the votes of 0 and 1 only: no
        // certificate, and partner 1 keeps partner 0's vote.
        c.stop(2)?;
        c.stop(3)?;
        let first = member.order(0, ids[1], &[(lot, 30)]);
        expect_error(
            "two partners stopped",
            c.client(1).redeem(&order_token(&first)),
            503,
            "no_quorum",
            "no quorum: 2 of 3 votes",
        )?;

        // Partner 0's store goes back to before that vote; everyone comes back, partner 0 last.
        restore(c, 0, &backup)?;
        c.spawn(2)?;
        c.spawn(3)?;
        c.wait_ready(2)?;
        c.wait_ready(3)?;
        c.restart(0)?;
        ensure!(
            node_log(c, 0)?.contains("votes of this node that its store had lost"),
            "partner 0 did not say it learnt its vote back"
        );

        // A second order for the same spend, at partner 2: partner 0 refuses it like partner 1,
        // since it voted for the first. Had it forgotten, 0, 2 and 3 would certify it.
        let second = member.order(0, ids[2], &[(lot, 50)]);
        expect_error(
            "a second order for a spend partner 0 voted for before its store lost the vote",
            c.client(2).redeem(&order_token(&second)),
            422,
            "conflict",
            "already voted for order",
        )?;
        Ok(())
    })
}
