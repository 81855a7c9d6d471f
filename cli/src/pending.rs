//! A redemption order the wallet signed and no certificate holds yet, kept next to the wallet
//! (`WALLET.pending`, the order token).
//!
//! Why: voters remember the order they voted for at each `(member, seq)` and never vote for
//! another at the same number. An order that gathered some votes but no quorum still holds those
//! votes; a new order at the same sequence number then splits the voters and the number is locked.
//! So `member redeem` resubmits the order it signed until it is certified, across invocations, and
//! signs a new one only once the node reports the sequence number used, or the order too late to
//! be certified (`order_too_late`: every partner then frees the number for a newer order). [`submit_until_certified`]
//! is the resubmission loop, [`earlier_order`] what a previous run left.

use crate::wallet;
use anyhow::{Context, Result};
use coalition_client::order::{order_token, parse_order_token};
use coalition_client::types::RedeemResponse;
use coalition_client::{Client, ClientError};
use coalition_core::record::SignedOrder;
use coalition_core::refusal::RefusalCode;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A token is a few KiB at most; anything larger is not one.
const MAX_FILE_LEN: u64 = 256 * 1024;

/// Where the pending order of the wallet at `wallet` is kept.
pub(crate) fn path_for(wallet: &Path) -> PathBuf {
    let mut name = wallet.as_os_str().to_owned();
    name.push(".pending");
    PathBuf::from(name)
}

/// The pending order at `path`, if there is one.
pub(crate) fn read(path: &Path) -> Result<Option<SignedOrder>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut text = String::new();
    file.take(MAX_FILE_LEN)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let order = parse_order_token(text.trim()).with_context(|| {
        format!(
            "{} does not hold an order token; move it away if it is not this wallet's",
            path.display()
        )
    })?;
    Ok(Some(order))
}

/// Keeps `order` at `path` (owner only), replacing what was there, durably: it is what makes a
/// retry safe after a crash.
pub(crate) fn write(path: &Path, order: &SignedOrder) -> Result<()> {
    let tmp = path.with_extension("pending.tmp");
    let written = (|| -> io::Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(order_token(order).as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable only once the directory is.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    written.with_context(|| format!("cannot write {}", path.display()))
}

/// Forgets the pending order (certified, or refused for good).
pub(crate) fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// What an earlier `member redeem` left.
pub(crate) enum Earlier {
    /// Nothing kept.
    None,
    /// An order whose sequence number the node reports as still next: not certified.
    Pending(SignedOrder),
    /// An order whose sequence number the node reports as used: certified (most likely this
    /// order) or taken by another order.
    Used(SignedOrder),
}

/// The order kept from an earlier `member redeem`, and whether its sequence number is used.
pub(crate) fn earlier_order(client: &Client, wallet: &Path, keep: &Path) -> Result<Earlier> {
    let Some(order) = read(keep)? else {
        return Ok(Earlier::None);
    };
    let member = wallet::member_id(wallet)?;
    if order.order.member != member {
        anyhow::bail!(
            "{} holds an order of another member; move it away",
            keep.display()
        );
    }
    let balance = client
        .balance(&member)
        .with_context(|| format!("cannot get the balance of member {}", member.short()))?;
    if order.order.member_seq < balance.next_seq {
        return Ok(Earlier::Used(order));
    }
    Ok(Earlier::Pending(order))
}

/// Whether an answer means "not yet" rather than "no", so the order must be kept and may be
/// resubmitted: the node was unreachable, could not finish (5xx), or a voter refused only for lack of something replication brings (a lagging voter answers
/// `future_seq` or `unknown_lot`). Any other refusal is final for this order.
pub(crate) fn not_yet(e: &ClientError) -> bool {
    match e {
        ClientError::Api { status, code, .. } => {
            *status >= 500
                || RefusalCode::ALL
                    .iter()
                    .any(|c| c.as_str() == code && c.is_transient())
        }
        ClientError::Transport { .. } => true,
        _ => false,
    }
}

/// Whether the node says the order can no longer be certified: every vote it got is void, and a
/// new order at the same sequence number is what to send.
pub(crate) fn too_late(e: &ClientError) -> bool {
    matches!(e, ClientError::Api { code, .. } if code == RefusalCode::OrderTooLate.as_str())
}

/// Submits `order` and, while the answer is "not yet" (no quorum, unavailable, unreachable),
/// submits the same order again until `wait` has passed. The same order is always safe to send
/// again: voters answer it with the vote they already gave.
pub(crate) fn submit_until_certified(
    client: &Client,
    order: &SignedOrder,
    wait: Duration,
) -> std::result::Result<RedeemResponse, ClientError> {
    let token = coalition_client::order::order_token(order);
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(500);
    loop {
        match client.redeem(&token) {
            Ok(receipt) => return Ok(receipt),
            Err(e) => {
                if !not_yet(&e) || Instant::now() + pause > deadline {
                    return Err(e);
                }
                eprintln!("Not certified yet ({e}); submitting the same order again.");
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(4));
            }
        }
    }
}
