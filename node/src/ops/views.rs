//! Read-only views the API serves: balances, histories, log ranges, status. Derived from the store,
//! never stored.

use crate::error::{NodeResult, NotFound};
use crate::node::Node;
use crate::store::{HistoryItem as StoredItem, HistoryKind as StoredKind};
use coalition_client::types::*;
use coalition_core::record::{MemberId, PartnerId, Timestamp};
use coalition_core::state::{Balance as Split, LedgerView, Lot};

/// Most history lines answered.
const HISTORY_LINES: usize = 10_000;

/// A member's balance now.
pub async fn balance(node: &Node, member: MemberId) -> NodeResult<Balance> {
    let (lots, state) = node
        .blocking(move |s| Ok((s.member_lots(&member)?, s.member(&member)?)))
        .await?;
    balance_of(member, &lots, state.next_seq, node.now())
}

/// A member's balance from its lots at `now`.
fn balance_of(
    member: MemberId,
    lots: &[Lot],
    next_seq: u64,
    now: Timestamp,
) -> NodeResult<Balance> {
    let split = Split::of_lots(lots, now)?;
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

/// A member's history, oldest first: earn and redeem lines from the log, plus an expire line for
/// every lot that lapsed with points left.
pub async fn history(node: &Node, member: MemberId) -> NodeResult<History> {
    let (stored, lots): (Vec<StoredItem>, Vec<Lot>) = node
        .blocking(move |s| Ok((s.history(&member, HISTORY_LINES)?, s.member_lots(&member)?)))
        .await?;
    let now = node.now();
    let mut items: Vec<HistoryItem> = stored
        .into_iter()
        .map(|i| HistoryItem {
            time: i.time,
            kind: match i.row.kind {
                StoredKind::Earn => HistoryKind::Earn,
                StoredKind::Redeem => HistoryKind::Redeem,
            },
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
                kind: HistoryKind::Expire,
                points: l.remaining,
                partner: l.issuer,
                record: l.id,
            }),
    );
    items.sort_by_key(|a| a.time);
    Ok(History { member, items })
}

/// Canonical entries of a log, from `from`, at most `limit`.
pub async fn log_range(
    node: &Node,
    partner: PartnerId,
    from: u64,
    limit: usize,
) -> NodeResult<LogRange> {
    if !node.genesis().is_partner(&partner) {
        return Err(NotFound::NotAPartner { partner }.into());
    }
    let (entries, head) = node
        .blocking(move |s| {
            Ok((
                s.entries_bytes(&partner, from, limit)?,
                LedgerView::log_head(s, &partner)?,
            ))
        })
        .await?;
    Ok(LogRange {
        partner,
        from,
        size: head.size,
        entries: entries.iter().map(hex::encode).collect(),
    })
}

/// Peers, heads, epochs, sealing, fraud proofs.
pub async fn status(node: &Node) -> NodeResult<Status> {
    let genesis = node.genesis().clone();
    let progress = node.seal_progress();
    let now = node.now();
    let current = genesis.epoch_at(now);
    // Nobody is late before the epoch has ended.
    let next = progress.computed;
    let late = now >= genesis.epoch_end(next);
    let g = genesis.clone();
    let (heads, fraud, awaiting) = node
        .blocking(move |s| {
            let mut awaiting = Vec::new();
            if late {
                for p in &g.partners {
                    if s.close(&p.id, next)?.is_none() {
                        awaiting.push(p.name.clone());
                    }
                }
            }
            Ok((s.heads()?, s.fraud_proofs()?, awaiting))
        })
        .await?;
    let (pending, _) = node.writer().pending().await;
    // Empty once the network task has stopped (the node is shutting down).
    let connected = node.net().connected_peers().await.unwrap_or_default();
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
        .collect();
    let me = node.me();
    let peers = genesis
        .partners
        .iter()
        .filter(|p| p.id != me)
        .map(|p| PeerInfo {
            partner: p.id,
            name: p.name.clone(),
            connected: connected.contains(&p.id),
        })
        .collect();
    Ok(Status {
        partner: PeerInfo {
            partner: me,
            name: node.name_of(&me),
            connected: true,
        },
        coalition: genesis.coalition.clone(),
        genesis_hash: genesis.hash(),
        peers,
        logs,
        current_epoch: current,
        now,
        epoch_start: genesis.epoch_start(current),
        epoch_end: genesis.epoch_end(current),
        quorum: genesis.quorum(),
        last_sealed_epoch: progress.last_sealed(),
        awaiting,
        pending_entries: pending,
        equivocations: fraud
            .into_iter()
            .map(|e| EquivocationInfo {
                partner: e.partner,
                seq: e.seq,
                entries: [e.first.id(), e.second.id()],
            })
            .collect(),
        isolated: node.net().is_isolated(),
    })
}
