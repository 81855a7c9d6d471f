//! The operator's partition switch: cuts the node off from every partner, or heals it.

use crate::error::{NodeError, NodeResult};
use crate::node::Node;
use coalition_client::types::PartitionResponse;

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
