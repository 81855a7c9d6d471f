//! Writing files that must not replace anything and, for secrets, that only their owner may read.

use anyhow::Result;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

/// Who may read a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Owner only (0600): keys, wallets, configs holding tokens.
    Private,
    /// Default permissions (umask).
    Public,
}

/// Creates `path` holding `bytes`, failing with [`io::ErrorKind::AlreadyExists`] if anything is
/// already there. The file is opened with `create_new`, so there is no check-then-write race, and
/// with its final permissions, so a secret is never readable by others even for a moment. A partly
/// written file is removed.
pub fn create_new(path: &Path, bytes: &[u8], mode: Mode) -> io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if mode == Mode::Private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = opts.open(path)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(())
}

/// [`create_new`] with an error that names the file and says why.
pub fn write_new(path: &Path, bytes: &[u8], mode: Mode) -> Result<()> {
    create_new(path, bytes, mode).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} already exists; refusing to overwrite it",
                path.display()
            )
        } else {
            anyhow::Error::new(e).context(format!("cannot write {}", path.display()))
        }
    })
}
