//! The running node: wires the store, the ledger writer, the network and the API together.
//!
//! Tasks:
//! - the **ledger writer** thread ([`crate::writer`]) applies every state change in turn;
//! - the **network** task ([`crate::p2p`]) owns the libp2p swarm;
//! - the **event loop** here answers peers' requests and ingests gossiped entries;
//! - **anti-entropy** ([`crate::sync`]) asks peers for their heads and fetches what is missing;
//! - the **epoch ticker** closes our log's epochs as they end ([`crate::epoch`]);
//! - the **HTTP API** ([`crate::api`]) serves the POS, members and auditors.

use crate::api::{self, ApiError};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::p2p::{self, Gossip, NetEvent, NetworkConfig, NetworkHandle, Request, Response};
use crate::store::Store;
use crate::writer::{self, now, AppendError, Writer};
use crate::{redeem, seal, sync, views};
use anyhow::Context;
use coalition_client::types::*;
use coalition_core::crypto::Keypair;
use coalition_core::genesis::Genesis;
use coalition_core::ledger::{LedgerView, Lot};
use coalition_core::record::{reference_hash, Issue, MemberId, PartnerId, Record};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Lots expire after this long unless the issuer says otherwise.
pub const DEFAULT_LOT_LIFETIME_SECS: u64 = 365 * 24 * 3600;
/// The longest lifetime an issuer may give a lot.
pub const MAX_LOT_LIFETIME_SECS: u64 = 10 * 365 * 24 * 3600;
/// The most points one issue may carry (a sanity bound for POS mistakes, far above any purchase).
pub const MAX_ISSUE_POINTS: u64 = 1_000_000_000_000;

/// One partner's running node, shared by the API handlers and the background tasks.
pub struct Node {
    pub(crate) genesis: Arc<Genesis>,
    pub(crate) me: PartnerId,
    pub(crate) store: Store,
    pub(crate) writer: Writer,
    pub(crate) net: NetworkHandle,
    pub(crate) metrics: Metrics,
    pub(crate) connected: Mutex<BTreeSet<PartnerId>>,
    pub(crate) sync: sync::SyncState,
    pub(crate) vote_timeout: Duration,
    pub(crate) keypair: Arc<Keypair>,
    pub(crate) seal: tokio::sync::Mutex<seal::SealState>,
    /// Orders a `POST /v1/redeem` is working on now, so the in-flight retry leaves them alone.
    pub(crate) redeeming: Mutex<BTreeSet<coalition_core::hash::Hash>>,
    api_token: String,
}

impl Node {
    /// The coalition.
    pub fn genesis(&self) -> &Arc<Genesis> {
        &self.genesis
    }
    /// The token partner operations need.
    pub fn api_token(&self) -> &str {
        &self.api_token
    }
    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
    /// The partner's display name.
    pub fn name_of(&self, p: &PartnerId) -> String {
        self.genesis
            .partner(p)
            .map(|g| g.name.clone())
            .unwrap_or_else(|| p.short())
    }

    /// Runs blocking store work off the async executor.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| ApiError::Internal(format!("task failed: {e}")))?
            .map_err(|e| ApiError::Internal(e.to_string()))
    }

    /// Appends an issue to our log (synced), then gossips it.
    pub async fn issue(&self, req: IssueRequest) -> Result<IssueResponse, ApiError> {
        if req.points == 0 {
            return Err(ApiError::BadRequest("points must be at least 1".into()));
        }
        if req.points > MAX_ISSUE_POINTS {
            return Err(ApiError::BadRequest(format!(
                "points must be at most {MAX_ISSUE_POINTS}"
            )));
        }
        if !req.member.0.is_valid() {
            return Err(ApiError::BadRequest(
                "member id is not a valid ed25519 key".into(),
            ));
        }
        let lifetime = req.expires_in_secs.unwrap_or(DEFAULT_LOT_LIFETIME_SECS);
        if lifetime == 0 || lifetime > MAX_LOT_LIFETIME_SECS {
            return Err(ApiError::BadRequest(format!(
                "expires_in_secs must be between 1 and {MAX_LOT_LIFETIME_SECS}"
            )));
        }
        let time = now();
        // Without a receipt reference, a random one keeps two identical purchases in one second
        // apart; with one, a POS retrying the same receipt gets the lot already issued for it.
        let reference = match &req.reference {
            Some(r) => reference_hash(r),
            None => reference_hash(&hex::encode(rand::random::<[u8; 16]>())),
        };
        let issue = Issue {
            issuer: self.me,
            member: req.member,
            points: req.points,
            expires_at: time.saturating_add(lifetime),
            reference,
            time,
        };
        let lot = issue.id();
        let entry = match self.writer.append(Record::Issue(issue)).await {
            Ok(entry) => entry,
            Err(AppendError::ReferenceUsed { lot }) => {
                return self.reissue(lot, &req, lifetime).await
            }
            Err(e) => return Err(append_error(e)),
        };
        self.metrics.points_issued.inc_by(req.points);
        self.gossip_entry(entry.clone());
        Ok(IssueResponse {
            lot,
            points: req.points,
            expires_at: time.saturating_add(lifetime),
            entry: EntryRef {
                partner: self.me,
                seq: entry.entry.seq,
                entry_id: entry.id(),
            },
        })
    }

    /// The receipt of the lot already issued with this request's reference, if the request is the
    /// same (member, points, lifetime): a POS retry after a timeout. Anything else reusing the
    /// reference is refused, since it would silently become a different purchase.
    async fn reissue(
        &self,
        lot: coalition_core::hash::Hash,
        req: &IssueRequest,
        lifetime: u64,
    ) -> Result<IssueResponse, ApiError> {
        let found = self.blocking(move |s| s.record_entry(&lot)).await?;
        let Some(entry) = found else {
            return Err(ApiError::Internal(format!(
                "lot {lot} is indexed by its reference but not stored"
            )));
        };
        let Record::Issue(issue) = &entry.entry.record else {
            return Err(ApiError::Internal(format!(
                "lot {lot}'s record is not an issue"
            )));
        };
        let same = issue.member == req.member
            && issue.points == req.points
            && issue.expires_at.saturating_sub(issue.time) == lifetime;
        if !same {
            return Err(append_error(AppendError::ReferenceUsed { lot }));
        }
        Ok(IssueResponse {
            lot,
            points: issue.points,
            expires_at: issue.expires_at,
            entry: EntryRef {
                partner: entry.entry.partner,
                seq: entry.entry.seq,
                entry_id: entry.id(),
            },
        })
    }

    /// Collects a quorum of votes for a member-signed order, appends the certificate, gossips it.
    pub async fn redeem(self: &Arc<Self>, token: &str) -> Result<RedeemResponse, ApiError> {
        redeem::redeem(self, token).await
    }

    /// Sends an entry of ours to every partner, in the background.
    pub(crate) fn gossip_entry(&self, entry: coalition_core::record::SignedEntry) {
        let net = self.net.clone();
        tokio::spawn(async move {
            if let Err(e) = net.publish(Gossip::Entry(entry)).await {
                tracing::debug!(error = %e, "gossip not sent; anti-entropy will deliver it");
            }
        });
    }

    /// A member's balance now.
    pub async fn balance(&self, member: MemberId) -> Result<Balance, ApiError> {
        let (lots, state) = self
            .blocking(move |s| Ok((s.member_lots(&member)?, s.member(&member)?)))
            .await?;
        views::balance(member, &lots, state.next_seq, now())
    }

    /// A member's history, oldest first.
    pub async fn history(&self, member: MemberId) -> Result<History, ApiError> {
        let (items, lots): (_, Vec<Lot>) = self
            .blocking(move |s| Ok((s.history(&member, 10_000)?, s.member_lots(&member)?)))
            .await?;
        Ok(views::history(member, items, &lots, now()))
    }

    /// Canonical entries of a log.
    pub async fn log_range(
        &self,
        partner: PartnerId,
        from: u64,
        limit: u64,
    ) -> Result<LogRange, ApiError> {
        if !self.genesis.is_partner(&partner) {
            return Err(ApiError::NotFound(format!(
                "{} is not a partner",
                partner.to_hex()
            )));
        }
        let limit = usize::try_from(limit).unwrap_or(1000);
        let (entries, head) = self
            .blocking(move |s| {
                Ok((
                    s.entries_bytes(&partner, from, limit)?,
                    s.log_head(&partner)?,
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

    /// The operator's partition switch: cuts the node off from every partner, or heals it.
    pub async fn partition(&self, isolated: bool) -> Result<PartitionResponse, ApiError> {
        let connected_peers = self
            .net
            .set_isolated(isolated)
            .await
            .map_err(net_unavailable)?;
        Ok(PartitionResponse {
            isolated,
            connected_peers,
        })
    }

    /// Peers, heads, epochs.
    pub async fn status(&self) -> Result<Status, ApiError> {
        views::status(self).await
    }
}

/// The network task only stops when the node shuts down.
fn net_unavailable(e: p2p::NetError) -> ApiError {
    ApiError::Unavailable(format!(
        "the network is not running ({e}); the node is shutting down"
    ))
}

pub(crate) fn append_error(e: AppendError) -> ApiError {
    match e {
        AppendError::Rejected(m) => ApiError::BadRequest(m),
        AppendError::Store(m) => ApiError::Internal(m),
        AppendError::Closed => ApiError::Unavailable("the node is shutting down".into()),
        AppendError::ReferenceUsed { lot } => ApiError::Conflict {
            code: "reference_reused",
            message: format!(
                "this receipt reference was already used for lot {lot}, with another member, amount or lifetime"
            ),
        },
    }
}

/// Runs the node until SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let genesis = config.genesis.clone();
    let me = config.me;
    let store = Store::open(&config.file.data_dir, genesis.hash(), me)
        .with_context(|| format!("opening the store in {}", config.file.data_dir.display()))?;
    let (writer, writer_thread) =
        writer::spawn(genesis.clone(), config.keypair.clone(), store.clone());

    let net_config = NetworkConfig::new(
        config.keypair.secret_bytes(),
        config.file.p2p_listen.clone(),
        config.file.peers.clone(),
        genesis.clone(),
    );
    let (net, mut events) = p2p::spawn(net_config)
        .await
        .context("starting the network")?;

    let node = Arc::new(Node {
        genesis: genesis.clone(),
        me,
        store,
        writer,
        net: net.clone(),
        metrics: Metrics::new(),
        connected: Mutex::new(BTreeSet::new()),
        sync: sync::SyncState::default(),
        vote_timeout: Duration::from_millis(config.file.vote_timeout_ms),
        keypair: config.keypair.clone(),
        seal: tokio::sync::Mutex::new(seal::SealState::default()),
        redeeming: Mutex::new(BTreeSet::new()),
        api_token: config.file.api_token.clone(),
    });
    let state = seal::load_state(&node).context("reading checkpoints")?;
    *node.seal.lock().await = state;

    let listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .with_context(|| format!("binding the API to {}", config.api_listen))?;
    tracing::info!(
        partner = %node.name_of(&me),
        id = %me.short(),
        api = %config.api_listen,
        p2p = %config.file.p2p_listen,
        "node started"
    );

    let events_node = node.clone();
    let event_loop = tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            handle_event(&events_node, ev);
        }
    });
    let ae = tokio::spawn(sync::anti_entropy(
        node.clone(),
        Duration::from_secs(config.file.anti_entropy_secs),
    ));
    let epochs = tokio::spawn(crate::epoch::ticker(
        node.clone(),
        config.anchor_file.clone(),
    ));
    let resume = tokio::spawn(redeem::retry_inflight(
        node.clone(),
        redeem::RETRY_INFLIGHT_EVERY,
    ));

    let app = api::router(node.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving the API")?;

    tracing::info!("shutting down");
    ae.abort();
    epochs.abort();
    resume.abort();
    net.shutdown().await;
    event_loop.abort();
    drop(node);
    // The writer stops once the last handle is gone; wait so the store closes cleanly.
    let _ = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

fn handle_event(node: &Arc<Node>, ev: NetEvent) {
    match ev {
        NetEvent::Gossip { from, msg, id } => match msg {
            Gossip::Entry(entry) => {
                let node = node.clone();
                tokio::spawn(async move {
                    let report = node.writer.ingest(vec![entry]).await;
                    if !report.bad.is_empty() {
                        let _ = node.net.report_bad_gossip(id).await;
                    }
                    sync::after_ingest(&node, from, &report).await;
                });
            }
            Gossip::Heads(heads) => {
                let node = node.clone();
                tokio::spawn(async move { sync::on_heads(&node, from, heads).await });
            }
            Gossip::CheckpointSig(bytes) => {
                let node = node.clone();
                tokio::spawn(async move { seal::on_signature(&node, from, bytes).await });
            }
        },
        NetEvent::Request { from, req, reply } => {
            let node = node.clone();
            tokio::spawn(async move {
                let resp = answer(&node, from, req).await;
                let _ = reply.send(resp);
            });
        }
        NetEvent::PeerUp(p) => {
            if let Ok(mut c) = node.connected.lock() {
                c.insert(p);
                node.metrics.peers_connected.set(c.len() as i64);
            }
            tracing::info!(partner = %node.name_of(&p), "partner connected");
        }
        NetEvent::PeerDown(p) => {
            if let Ok(mut c) = node.connected.lock() {
                c.remove(&p);
                node.metrics.peers_connected.set(c.len() as i64);
            }
            tracing::info!(partner = %node.name_of(&p), "partner disconnected");
        }
    }
}

async fn answer(node: &Arc<Node>, from: PartnerId, req: Request) -> Response {
    match req {
        Request::GetRange {
            partner,
            from: start,
            limit,
        } => {
            let limit = (limit as usize).min(p2p::MAX_RANGE_ENTRIES);
            match node
                .blocking(move |s| s.entries(&partner, start, limit))
                .await
            {
                Ok(entries) => Response::Range { entries }.fit_to_limits(),
                Err(e) => Response::Error {
                    message: e.to_string(),
                },
            }
        }
        Request::GetHeads => match sync::our_heads(node).await {
            Ok(h) => Response::Heads(h),
            Err(e) => Response::Error {
                message: e.to_string(),
            },
        },
        Request::Vote { order } => redeem::answer_vote(node, from, order).await,
        Request::GetCheckpointSigs { epoch } => seal::signatures_for(node, epoch).await,
    }
}
