//! The anchor file: one line per sealed epoch, in order, each chained to the one before, so the
//! file itself is tamper-evident and any line can be published outside the coalition (a public
//! chain, a newspaper) to pin every checkpoint before it.
//!
//! Line format (ASCII, `\n`-terminated): `<epoch> <checkpoint hash> <link>`, where `link` is
//! `blake3("coalition/v1/anchor" ‖ previous line without its newline)` and, for epoch 0, the genesis
//! hash. Appends are synced; a line cut short by a crash is dropped and written again.

use coalition_core::hash::Hash;
use coalition_core::record::Epoch;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

const TAG: &[u8] = b"coalition/v1/anchor";

/// The link a line carries: the hash of the line before it.
pub fn link(previous_line: &str) -> Hash {
    Hash::tagged(TAG, previous_line.as_bytes())
}

/// Appends `epoch`'s line unless it is already there. Epochs must arrive in order from 0.
pub fn append(path: &Path, genesis_hash: &Hash, epoch: Epoch, checkpoint: &Hash) -> io::Result<()> {
    let mut text = String::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_string(&mut text)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    let last = complete.lines().last();
    let (next, prev_link) = match last {
        None => (0, *genesis_hash),
        Some(line) => {
            let e: Epoch = line
                .split(' ')
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad anchor line {line:?}"),
                    )
                })?;
            (e + 1, link(line))
        }
    };
    if epoch < next {
        return Ok(());
    }
    if epoch > next {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("anchor file ends before epoch {epoch} (next line would be epoch {next})"),
        ));
    }
    let line = format!("{epoch} {checkpoint} {prev_link}\n");
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)?;
    // Drop a line a crash cut short, then append.
    f.set_len(complete.len() as u64)?;
    use std::io::Seek;
    f.seek(io::SeekFrom::End(0))?;
    f.write_all(line.as_bytes())?;
    f.sync_all()
}

/// Reads and checks an anchor file: consecutive epochs from 0, every link right.
pub fn read(path: &Path, genesis_hash: &Hash) -> io::Result<Vec<(Epoch, Hash)>> {
    let text = std::fs::read_to_string(path)?;
    let bad = |n: usize, why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("anchor line {}: {why}", n + 1),
        )
    };
    let mut out = Vec::new();
    let mut prev_link = *genesis_hash;
    for (n, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.split(' ').collect();
        let [e, cp, l] = parts.as_slice() else {
            return Err(bad(n, "not three fields"));
        };
        let e: Epoch = e.parse().map_err(|_| bad(n, "bad epoch"))?;
        if e != n as u64 {
            return Err(bad(n, "epochs are not consecutive from 0"));
        }
        let cp = Hash::from_hex(cp).map_err(|_| bad(n, "bad checkpoint hash"))?;
        if Hash::from_hex(l).ok() != Some(prev_link) {
            return Err(bad(n, "link does not match the previous line"));
        }
        prev_link = link(line);
        out.push((e, cp));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_in_order_idempotently_and_recovers_a_torn_line() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("anchors.txt");
        let g = Hash([9; 32]);
        append(&path, &g, 0, &Hash([1; 32]))?;
        append(&path, &g, 0, &Hash([1; 32]))?;
        append(&path, &g, 1, &Hash([2; 32]))?;
        assert!(append(&path, &g, 3, &Hash([3; 32])).is_err());
        let mut f = OpenOptions::new().append(true).open(&path)?;
        f.write_all(b"2 abc")?;
        append(&path, &g, 2, &Hash([3; 32]))?;
        let lines = read(&path, &g)?;
        assert_eq!(
            lines,
            vec![(0, Hash([1; 32])), (1, Hash([2; 32])), (2, Hash([3; 32]))]
        );
        let text = std::fs::read_to_string(&path)?.replacen("0 01", "0 02", 1);
        std::fs::write(&path, text)?;
        assert!(read(&path, &g).is_err());
        Ok(())
    }
}
