//! Issuing points: a POS credits a member, and the issue is durably in our log (synced) before it
//! answers. Idempotent by receipt reference: a POS that retries after a timeout gets the lot it
//! already has, never a second one.

use crate::error::{Inconsistency, InvalidRequest, NodeError, NodeResult};
use crate::node::Node;
use crate::writer::AppendError;
use coalition_client::types::{
    EntryRef, IssueRequest, IssueResponse, MAX_ISSUE_POINTS, MAX_LOT_LIFETIME_SECS,
};
use coalition_core::hash::Hash;
use coalition_core::record::{reference_hash, Issue, Record};

/// Lots expire after this long unless the issuer says otherwise.
pub const DEFAULT_LOT_LIFETIME_SECS: u64 = 365 * 24 * 3600;

/// Appends an issue to our log (synced), then gossips it.
pub async fn issue(node: &Node, req: IssueRequest) -> NodeResult<IssueResponse> {
    if req.points == 0 {
        return Err(InvalidRequest::ZeroPoints.into());
    }
    if req.points > MAX_ISSUE_POINTS {
        return Err(InvalidRequest::TooManyPoints {
            max: MAX_ISSUE_POINTS,
        }
        .into());
    }
    if !req.member.0.is_valid() {
        return Err(InvalidRequest::MemberKey.into());
    }
    let lifetime = req.expires_in_secs.unwrap_or(DEFAULT_LOT_LIFETIME_SECS);
    if lifetime == 0 || lifetime > MAX_LOT_LIFETIME_SECS {
        return Err(InvalidRequest::Lifetime {
            max: MAX_LOT_LIFETIME_SECS,
        }
        .into());
    }
    // An empty reference would be one receipt shared by every POS that sends it: a second
    // purchase would silently get the first one's lot.
    if req
        .reference
        .as_deref()
        .is_some_and(|r| r.trim().is_empty())
    {
        return Err(InvalidRequest::EmptyReference.into());
    }
    let time = node.now();
    // Without a receipt reference, a random one keeps two identical purchases in one second
    // apart; with one, a POS retrying the same receipt gets the lot already issued for it.
    let reference = match &req.reference {
        Some(r) => reference_hash(r),
        None => reference_hash(&hex::encode(rand::random::<[u8; 16]>())),
    };
    let issue = Issue {
        issuer: node.me(),
        member: req.member,
        points: req.points,
        expires_at: time.saturating_add(lifetime),
        reference,
        time,
    };
    let lot = issue.id();
    // Read before the append, so the answer can say this member is new here. Two first issues
    // racing may both say so; it is a hint for the cashier, not a ledger fact.
    let member = req.member;
    let new_member = node
        .blocking(move |s| s.history(&member, 1))
        .await?
        .is_empty();
    let entry = match node.writer().append(Record::Issue(issue)).await {
        Ok(entry) => entry,
        Err(AppendError::ReferenceUsed { lot }) => return reissue(node, lot, &req, lifetime).await,
        Err(e) => return Err(e.into()),
    };
    node.metrics().points_issued.inc_by(req.points);
    node.gossip_entry(entry.clone());
    tracing::info!(
        target: "audit",
        lot = %lot.short(),
        points = req.points,
        position = entry.entry.seq,
        new_member,
        "issued"
    );
    Ok(IssueResponse {
        lot,
        points: req.points,
        expires_at: time.saturating_add(lifetime),
        entry: EntryRef {
            partner: node.me(),
            seq: entry.entry.seq,
            entry_id: entry.id(),
        },
        replay: false,
        new_member,
    })
}

/// The receipt of the lot already issued with this request's reference, if the request is the same
/// (member, points, lifetime): a POS retry after a timeout. Anything else reusing the reference is
/// refused, since it would silently become a different purchase.
async fn reissue(
    node: &Node,
    lot: Hash,
    req: &IssueRequest,
    lifetime: u64,
) -> NodeResult<IssueResponse> {
    let found = node.blocking(move |s| s.record_entry(&lot)).await?;
    let entry = found.ok_or(Inconsistency::IndexedNotStored { record: lot })?;
    let Record::Issue(issue) = &entry.entry.record else {
        return Err(Inconsistency::NotAnIssue { lot }.into());
    };
    let same = issue.member == req.member
        && issue.points == req.points
        && issue.expires_at.saturating_sub(issue.time) == lifetime;
    if !same {
        tracing::info!(target: "audit", lot = %lot.short(), "issue refused: its receipt reference names another lot");
        return Err(NodeError::ReferenceReused { lot });
    }
    tracing::info!(
        target: "audit",
        lot = %lot.short(),
        points = issue.points,
        position = entry.entry.seq,
        "issue repeated: answered with the lot already issued for its reference"
    );
    Ok(IssueResponse {
        lot,
        points: issue.points,
        expires_at: issue.expires_at,
        entry: EntryRef {
            partner: entry.entry.partner,
            seq: entry.entry.seq,
            entry_id: entry.id(),
        },
        replay: true,
        new_member: false,
    })
}
