//! What the operator asks of a running node: the partition switch, which cuts it off from every
//! partner or heals it, and an online backup.

use crate::error::{InvalidRequest, NodeError, NodeResult};
use crate::node::Node;
use crate::store::StoreError;
use coalition_client::types::{BackupResponse, PartitionResponse};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The anchor file's name in a backup: where a node with the default `anchor_file` looks.
const BACKUP_ANCHOR_FILE: &str = "anchors.txt";

/// Writes a backup into `dir` (absolute, new, in an existing directory): the anchor file first,
/// then a consistent copy of the database, so the copied anchors are never ahead of the copied
/// ledger. Started on the copy, a node writes the anchor lines it lacks and rejoins as after any
/// restore (docs/operating.md, "Backup and restore").
pub async fn backup(node: &Node, dir: String) -> NodeResult<BackupResponse> {
    let path = PathBuf::from(&dir);
    let bad = |reason| InvalidRequest::BackupDir {
        dir: dir.clone(),
        reason,
    };
    if !path.is_absolute() {
        return Err(bad("must be an absolute path on the node's machine").into());
    }
    if path.symlink_metadata().is_ok() {
        return Err(bad("already exists; name a new directory").into());
    }
    if !path.parent().is_some_and(Path::is_dir) {
        return Err(bad("its parent directory does not exist").into());
    }
    let anchor = node.anchor_file().to_path_buf();
    let target = path.clone();
    node.blocking(move |s| {
        let failed = |what: &str, e: std::io::Error| StoreError::Backup {
            path: target.clone(),
            reason: format!("{what}: {e}"),
        };
        let anchors = match std::fs::read(&anchor) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(failed("reading the anchor file", e)),
        };
        s.backup_to(&target)?;
        let mut copy = std::fs::File::create(target.join(BACKUP_ANCHOR_FILE))
            .map_err(|e| failed("copying the anchor file", e))?;
        copy.write_all(&anchors)
            .and_then(|()| copy.sync_all())
            .map_err(|e| failed("copying the anchor file", e))
    })
    .await?;
    tracing::info!(target: "audit", dir = %path.display(), "backup written");
    Ok(BackupResponse {
        anchor_file: path.join(BACKUP_ANCHOR_FILE).display().to_string(),
        dir,
    })
}

/// Isolates the node (`true`) or heals it (`false`); answers with the partners still up.
pub async fn partition(node: &Node, isolated: bool) -> NodeResult<PartitionResponse> {
    // The network task stops only when the node shuts down.
    let connected_peers = node
        .net()
        .set_isolated(isolated)
        .await
        .map_err(|_| NodeError::ShuttingDown)?;
    Ok(PartitionResponse {
        isolated,
        connected_peers,
    })
}
