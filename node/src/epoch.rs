//! Epochs: closing our log's epochs as the genesis clock passes their end, and driving
//! [`crate::seal`], which seals checkpoints once every partner has closed.

use crate::service::Node;
use crate::writer::now;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Closes our epochs as they end (checked every second) and gossips the closes.
pub async fn ticker(node: Arc<Node>, anchor_file: PathBuf) {
    if let Err(e) = crate::seal::recover(&node, &anchor_file).await {
        tracing::error!(error = %e, "cannot recover checkpoint state");
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match node.writer.close_due_epochs(now()).await {
            Ok(closed) => {
                for e in closed {
                    tracing::info!(epoch = e.entry.epoch, "closed epoch");
                    node.gossip_entry(e);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot close epoch"),
        }
        crate::seal::tick(&node, &anchor_file).await;
    }
}
