//! A node's disk under a test's hands: a small tmpfs of its own to fill, and the RocksDB files in
//! its data directory to find and damage.

use anyhow::{ensure, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// RocksDB writes its write-ahead log in blocks of this size; each block starts with a record
/// header (a 4-byte checksum, then length and type), whatever the records are.
pub const WAL_BLOCK: u64 = 32 * 1024;

/// A tmpfs mounted for a test; unmounted (lazily, in case a process still holds it) on drop.
pub struct SmallDisk {
    /// The mount point.
    pub path: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (`48m`) at `path`, creating the directory. Needs root, as
    /// scripts/test.sh has.
    pub fn mount(path: &Path, size: &str) -> Result<SmallDisk> {
        std::fs::create_dir_all(path)?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .context("running mount")?;
        ensure!(
            out.status.success(),
            "cannot mount a tmpfs at {} (filling a disk needs root, as scripts/test.sh has): {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(SmallDisk {
            path: path.to_path_buf(),
        })
    }

    /// Writes the file `filler` on this disk until the disk refuses more.
    pub fn fill(&self) -> Result<()> {
        let mut f = std::fs::File::create(self.filler())?;
        for chunk in [1 << 20, 4096, 1] {
            let bytes = vec![0xa5u8; chunk];
            while f.write_all(&bytes).is_ok() {}
        }
        // What did fit must really be on the tmpfs, not in a buffer.
        let _ = f.sync_all();
        Ok(())
    }

    /// Gives back the space [`SmallDisk::fill`] took.
    pub fn free(&self) -> Result<()> {
        std::fs::remove_file(self.filler()).context("removing the filler file")
    }

    fn filler(&self) -> PathBuf {
        self.path.join("filler")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// The files in `dir` that `keep` picks, with their lengths.
pub fn files(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<(PathBuf, u64)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if keep(&path) {
            let len = std::fs::metadata(&path)?.len();
            out.push((path, len));
        }
    }
    Ok(out)
}

/// The newest write-ahead log in the RocksDB directory `dir` (`NNNNNN.log`, the highest number;
/// RocksDB's own `LOG` is its info log), with its length.
pub fn newest_wal(dir: &Path) -> Result<Option<(PathBuf, u64)>> {
    Ok(files(dir, |p| {
        p.extension().is_some_and(|e| e == "log")
            && p.file_stem()
                .is_some_and(|s| s.to_string_lossy().chars().all(|c| c.is_ascii_digit()))
    })?
    .into_iter()
    .max())
}

/// Flips 8 bytes of `file` from offset `at` (which must leave 8 bytes).
pub fn flip(file: &Path, at: usize) -> Result<()> {
    let mut bytes = std::fs::read(file)?;
    ensure!(
        at + 8 <= bytes.len(),
        "{} has {} bytes; cannot flip 8 at {at}",
        file.display(),
        bytes.len()
    );
    for b in &mut bytes[at..at + 8] {
        *b ^= 0x5a;
    }
    std::fs::write(file, &bytes)?;
    Ok(())
}

/// Cuts `file` to `len` bytes.
pub fn truncate(file: &Path, len: u64) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(file)?
        .set_len(len)
        .with_context(|| format!("truncating {}", file.display()))
}
