//! Read-only views the API serves: balances, histories, status. Derived from the store, never stored.

use crate::api::ApiError;
use crate::service::Node;
use crate::store::{HistoryItem as StoredItem, HistoryKind};
use coalition_client::types::*;
use coalition_core::ledger::{Balance as Split, Lot};
use coalition_core::record::{MemberId, Timestamp};

/// A member's balance from its lots.
pub fn balance(
    member: MemberId,
    lots: &[Lot],
    next_seq: u64,
    now: Timestamp,
) -> Result<Balance, ApiError> {
    let split = Split::of_lots(lots, now).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut live: Vec<LotInfo> = lots
        .iter()
        .filter(|l| l.remaining > 0 && l.is_live_at(now))
        .map(|l| LotInfo {
            lot: l.id,
            issuer: l.issuer,
            points: l.points,
            remaining: l.remaining,
            expires_at: l.expires_at,
            expired: false,
        })
        .collect();
    live.sort_by_key(|l| (l.expires_at, l.lot));
    Ok(Balance {
        member,
        available: split.available,
        lots: live,
        next_seq,
        as_of: now,
    })
}

/// A member's history: earn and redeem lines from the log, plus an expire line for every lot that
/// lapsed with points left.
pub fn history(member: MemberId, stored: Vec<StoredItem>, lots: &[Lot], now: Timestamp) -> History {
    let mut items: Vec<HistoryItem> = stored
        .into_iter()
        .map(|i| HistoryItem {
            time: i.time,
            kind: match i.row.kind {
                HistoryKind::Earn => "earn",
                HistoryKind::Redeem => "redeem",
            }
            .to_string(),
            points: i.row.points,
            partner: i.row.partner,
            record: i.row.record,
        })
        .collect();
    items.extend(
        lots.iter()
            .filter(|l| l.remaining > 0 && !l.is_live_at(now))
            .map(|l| HistoryItem {
                time: l.expires_at,
                kind: "expire".into(),
                points: l.remaining,
                partner: l.issuer,
                record: l.id,
            }),
    );
    items.sort_by_key(|a| a.time);
    History { member, items }
}

/// The node's status.
pub async fn status(node: &Node) -> Result<Status, ApiError> {
    let heads = node.blocking(|s| s.heads()).await?;
    let fraud = node.blocking(|s| s.fraud_proofs()).await?;
    let (pending, _) = node.writer.pending().await;
    let connected = node.connected.lock().map(|c| c.clone()).unwrap_or_default();
    let genesis = &node.genesis;
    let logs = genesis
        .partners
        .iter()
        .map(|p| {
            let head = heads
                .iter()
                .find(|(id, _)| *id == p.id)
                .map(|(_, h)| h.clone())
                .unwrap_or_default();
            LogHeadInfo {
                partner: p.id,
                name: p.name.clone(),
                size: head.size,
                root: head.root(),
                open_epoch: head.open_epoch,
            }
        })
        .collect::<Vec<_>>();
    let peers = genesis
        .partners
        .iter()
        .filter(|p| p.id != node.me)
        .map(|p| PeerInfo {
            partner: p.id,
            name: p.name.clone(),
            connected: connected.contains(&p.id),
        })
        .collect();
    let sealing = crate::seal::status(node).await?;
    Ok(Status {
        partner: PeerInfo {
            partner: node.me,
            name: node.name_of(&node.me),
            connected: true,
        },
        coalition: genesis.coalition.clone(),
        genesis_hash: genesis.hash(),
        peers,
        logs,
        current_epoch: genesis.epoch_at(crate::writer::now()),
        last_sealed_epoch: sealing.last_sealed,
        awaiting: sealing.awaiting,
        pending_entries: pending,
        equivocations: fraud
            .into_iter()
            .map(|e| EquivocationInfo {
                partner: e.partner,
                seq: e.seq,
                entries: [e.first.id(), e.second.id()],
            })
            .collect(),
        isolated: node.net.is_isolated(),
    })
}
