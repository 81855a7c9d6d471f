//! Epochs: closing our log's epochs as the genesis clock passes their end, and (with
//! [`crate::checkpoint`]) sealing checkpoints once every partner has closed.

use crate::api::ApiError;
use crate::service::Node;
use crate::writer::now;
use coalition_client::types::LogHeadInfo;
use coalition_core::record::{Epoch, PartnerId};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where sealing stands.
pub struct Sealing {
    /// The newest sealed epoch.
    pub last_sealed: Option<Epoch>,
    /// Partners whose close of the next epoch to seal has not arrived.
    pub awaiting: Vec<String>,
}

/// Closes our epochs as they end (checked every second) and gossips the closes.
pub async fn ticker(node: Arc<Node>, _anchor_file: PathBuf) {
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
    }
}

/// The next epoch to seal and who it waits for.
pub async fn sealing_status(node: &Node, logs: &[LogHeadInfo]) -> Result<Sealing, ApiError> {
    let last_sealed = None;
    let next: Epoch = 0;
    let awaiting = logs.iter().filter(|l| l.open_epoch <= next).map(|l| l.name.clone()).collect();
    let _ = node;
    Ok(Sealing { last_sealed, awaiting })
}

/// A partner's checkpoint signature arrived.
pub async fn on_checkpoint_sig(node: &Arc<Node>, from: PartnerId, bytes: Vec<u8>) {
    tracing::debug!(from = %node.name_of(&from), len = bytes.len(), "checkpoint signature received");
}
