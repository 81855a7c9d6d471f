//! Request and response bodies of the node's HTTP API (`/v1/...`). JSON; ids and keys are hex.

use coalition_core::hash::Hash;
use coalition_core::record::{Epoch, MemberId, PartnerId, Points, RedeemCert, Timestamp};
use serde::{Deserialize, Serialize};

/// Every error body: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A machine-readable code (stable, snake_case) and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// E.g. `unauthorized`, `bad_request`, `no_quorum`, `vote_refused`, `not_found`.
    pub code: String,
    /// What went wrong and, where it helps, what to do.
    pub message: String,
}

/// `POST /v1/issue` (partner token): credit points to a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// Who earns.
    pub member: MemberId,
    /// How many points (≥ 1).
    pub points: Points,
    /// The receipt or order number at the POS. Only its hash is recorded.
    #[serde(default)]
    pub reference: Option<String>,
    /// Seconds until the lot expires; the node's default if absent.
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
}

/// Where a record sits: a partner's log and position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRef {
    /// The log.
    pub partner: PartnerId,
    /// Position in it.
    pub seq: u64,
    /// The entry id.
    pub entry_id: Hash,
}

/// The most points one issue may carry (a sanity bound for POS mistakes, far above any purchase).
pub const MAX_ISSUE_POINTS: u64 = 1_000_000_000_000;
/// The longest lifetime an issuer may give a lot: ten years of 365 days.
pub const MAX_LOT_LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;

/// Answer to an issue: the lot is durably in the issuer's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueResponse {
    /// The lot id (record id).
    pub lot: Hash,
    /// Points credited.
    pub points: Points,
    /// When the lot expires.
    pub expires_at: Timestamp,
    /// Where it was appended.
    pub entry: EntryRef,
    /// True when this receipt reference was issued before with the same request: the answer is
    /// that lot's receipt and nothing new was credited (a POS retry, or a receipt scanned twice).
    #[serde(default)]
    pub replay: bool,
    /// True when this node had no record of the member before this issue: a first purchase, or a
    /// mistyped member id.
    #[serde(default)]
    pub new_member: bool,
}

/// `POST /v1/redeem`: a member-signed order to redeem at this node's partner. The member's signature
/// is the authority, so no partner token is needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    /// The order token (hex of the canonical `SignedOrder`), as `coalition member sign-redeem` prints.
    pub order: String,
}

/// A completed redemption: the certificate is in the redeemer's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemResponse {
    /// The order id.
    pub order_id: Hash,
    /// Points redeemed.
    pub points: Points,
    /// Votes gathered / quorum.
    pub votes: usize,
    /// The certificate (the member's receipt).
    pub cert: RedeemCert,
    /// Where it was appended.
    pub entry: EntryRef,
}

/// One lot as a wallet sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotInfo {
    /// Lot id.
    pub lot: Hash,
    /// Who issued it (and pays when it is redeemed).
    pub issuer: PartnerId,
    /// Points originally issued.
    pub points: Points,
    /// Points left.
    pub remaining: Points,
    /// Expiry time.
    pub expires_at: Timestamp,
    /// Whether it has expired at `as_of`.
    pub expired: bool,
}

/// `GET /v1/members/{id}/balance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// The member.
    pub member: MemberId,
    /// Spendable points at `as_of`.
    pub available: Points,
    /// Unspent, unexpired lots (the wallet picks from these, expiring first).
    pub lots: Vec<LotInfo>,
    /// The sequence number the member's next order must carry.
    pub next_seq: u64,
    /// The node's clock when answering.
    pub as_of: Timestamp,
}

/// What a line of a member's history did to the balance. Shown as `earn`, `redeem`, `expire`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryKind {
    /// Points issued to the member (a lot).
    Earn,
    /// Points the member redeemed (a certified order).
    Redeem,
    /// Points of a lot that expired unspent.
    Expire,
}

impl HistoryKind {
    /// `earn`, `redeem` or `expire`.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryKind::Earn => "earn",
            HistoryKind::Redeem => "redeem",
            HistoryKind::Expire => "expire",
        }
    }

    /// Whether the line adds points to the balance (earn) rather than takes them (redeem, expire).
    pub fn is_credit(self) -> bool {
        matches!(self, HistoryKind::Earn)
    }
}

impl std::fmt::Display for HistoryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of a member's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryItem {
    /// When.
    pub time: Timestamp,
    /// What it did.
    pub kind: HistoryKind,
    /// Points (always positive; the kind gives the direction).
    pub points: Points,
    /// The partner that issued (earn, expire) or redeemed (redeem).
    pub partner: PartnerId,
    /// The lot id (earn, expire) or the order id (redeem).
    pub record: Hash,
}

/// `GET /v1/members/{id}/history`, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// The member.
    pub member: MemberId,
    /// The items.
    pub items: Vec<HistoryItem>,
}

/// A log head as a node holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogHeadInfo {
    /// The log's partner.
    pub partner: PartnerId,
    /// Its name in the genesis.
    pub name: String,
    /// Entries held.
    pub size: u64,
    /// Merkle root at `size`.
    pub root: Hash,
    /// The epoch this log is in (one more than its last close).
    pub open_epoch: Epoch,
}

/// A connected or known peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// The partner.
    pub partner: PartnerId,
    /// Its name.
    pub name: String,
    /// Whether a connection is open now.
    pub connected: bool,
}

/// Two entries signed by one partner for one position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EquivocationInfo {
    /// The partner that signed both.
    pub partner: PartnerId,
    /// The position.
    pub seq: u64,
    /// Ids of the two entries.
    pub entries: [Hash; 2],
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Which partner this node is.
    pub partner: PeerInfo,
    /// The coalition's name.
    pub coalition: String,
    /// The genesis hash.
    pub genesis_hash: Hash,
    /// The other partners.
    pub peers: Vec<PeerInfo>,
    /// Every partner's log as held here, in genesis order.
    pub logs: Vec<LogHeadInfo>,
    /// The epoch of the node's clock.
    pub current_epoch: Epoch,
    /// The node's clock when it answered.
    #[serde(default)]
    pub now: Timestamp,
    /// When the current epoch began.
    #[serde(default)]
    pub epoch_start: Timestamp,
    /// The first second after the current epoch: when its logs close.
    #[serde(default)]
    pub epoch_end: Timestamp,
    /// Votes (and checkpoint signatures) needed: the quorum q of the genesis.
    #[serde(default)]
    pub quorum: usize,
    /// The newest sealed checkpoint's epoch.
    pub last_sealed_epoch: Option<Epoch>,
    /// Partners whose epoch close is awaited for the next checkpoint.
    pub awaiting: Vec<String>,
    /// Entries received whose dependencies have not arrived.
    pub pending_entries: usize,
    /// Fraud proofs held.
    pub equivocations: Vec<EquivocationInfo>,
    /// Whether an operator has cut this node off from every partner (`POST /v1/admin/partition`).
    /// Absent from older nodes' answers, hence the default.
    #[serde(default)]
    pub isolated: bool,
}

/// `POST /v1/admin/backup` (partner token): a consistent copy of the node's database, written by
/// the running node into a directory on its own machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// An absolute path that does not exist yet; its parent must.
    pub dir: String,
}

/// Answer to a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupResponse {
    /// Where the copy is.
    pub dir: String,
    /// The copy of the anchor file inside it (taken just before the database, so it is never
    /// ahead of it; a restored node writes the lines it lacks).
    pub anchor_file: String,
}

/// `POST /v1/admin/partition` (partner token): take the node off the network, or put it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionRequest {
    /// `true` disconnects every partner and refuses connections; `false` heals.
    pub isolated: bool,
}

/// Answer to a partition switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionResponse {
    /// The node's state now.
    pub isolated: bool,
    /// Partners still up: 0 once isolated; on healing, those already reconnected (usually 0 at first).
    pub connected_peers: usize,
}

/// `GET /v1/logs/{partner}?from=F&limit=L`: canonical entries, hex, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRange {
    /// The log.
    pub partner: PartnerId,
    /// Position of the first entry returned.
    pub from: u64,
    /// The log's size at the node.
    pub size: u64,
    /// Hex of each `SignedEntry`'s canonical bytes.
    pub entries: Vec<String>,
}

/// `GET /v1/settlement/{epoch}`: an epoch's settlement statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementView {
    /// The epoch.
    pub epoch: Epoch,
    /// Whether the epoch's checkpoint (which commits to the statement) is sealed.
    pub sealed: bool,
    /// The statement.
    pub statement: coalition_core::settlement::SettlementStatement,
}
