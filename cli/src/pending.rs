//! A redemption order the wallet signed and no certificate holds yet, kept next to the wallet
//! (`WALLET.pending`, the order token).
//!
//! Why: voters remember the order they voted for at each `(member, seq)` and never vote for
//! another at the same number. An order that gathered some votes but no quorum still holds those
//! votes; a new order at the same sequence number then splits the voters and the number is locked.
//! So `member redeem` resubmits the order it signed until it is certified, across invocations, and
//! signs a new one only once the node reports the sequence number used.

use anyhow::{Context, Result};
use coalition_client::order::{order_token, parse_order_token};
use coalition_core::record::SignedOrder;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

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
        std::fs::rename(&tmp, path)
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
