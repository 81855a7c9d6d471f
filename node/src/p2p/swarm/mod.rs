//! The one task that owns the libp2p [`Swarm`]: it executes [`Command`]s from handles (here),
//! turns swarm events into [`NetEvent`]s (`events.rs`), keeps every configured or learned partner
//! address connected and disciplines partners that send invalid data (`upkeep.rs`), and cuts the
//! node off from every partner while an operator has isolated it.

mod events;
mod upkeep;

use super::behaviour::{Behaviour, BehaviourEvent};
use super::codec::RpcRequest;
use super::error::NetError;
use super::handle::{Command, GossipId, NetEvent, ResponseSender};
use super::identity::PartnerBook;
use super::messages::{Gossip, InstanceId, Request, Response, WireMessage};
use super::topics::GossipTopic;
use coalition_core::record::PartnerId;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use libp2p::allow_block_list::NotAllowed;
use libp2p::gossipsub::{self, MessageAcceptance, PublishError};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, SwarmEvent};
use libp2p::{identify, ping, Multiaddr, PeerId, Swarm};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, trace, warn};

/// How often the task looks for addresses to redial and bans to lift.
const TICK: Duration = Duration::from_millis(500);
/// First redial delay after a disconnect or a failed dial.
const REDIAL_MIN: Duration = Duration::from_secs(1);
/// Longest delay between redials of an unreachable address.
const REDIAL_MAX: Duration = Duration::from_secs(4);
/// Most addresses remembered per partner from identify.
const MAX_LEARNED_ADDRS: usize = 8;
/// Strikes older than this are forgotten.
const STRIKE_WINDOW: Duration = Duration::from_secs(600);
/// Events queued inside the task when the service's channel is full; past this, gossip and requests
/// are dropped (peer up/down never are).
const MAX_OUTBOX: usize = 8192;
/// Longest an isolate command waits for the connections to close before answering anyway.
const ISOLATE_WAIT: Duration = Duration::from_secs(5);
/// How often we say [`Request::Hello`] to each partner that is up.
pub(crate) const HELLO_EVERY: Duration = Duration::from_secs(2);
/// A run of a partner that said hello within this long, on a connection still open, is live.
pub(crate) const HELLO_LIVE: Duration = Duration::from_secs(6);

/// Limits and timings of the task, from [`super::NetworkConfig`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub request_timeout: Duration,
    pub ban_duration: Duration,
    pub max_strikes: u32,
}

/// An address we keep connected.
#[derive(Debug)]
struct Target {
    addr: Multiaddr,
    /// The partner listening there, once known (from a successful dial or from identify).
    peer: Option<PeerId>,
    /// From identify rather than the configuration (replaced when the partner reports new ones).
    learned: bool,
    dialing: bool,
    next_at: Instant,
    backoff: Duration,
    /// Whether we already said at info level that this address is not a partner.
    reported_stranger: bool,
}

#[derive(Debug, Clone, Copy)]
struct Strikes {
    count: u32,
    since: Instant,
}

/// An inbound request's answer, once the service has given it (or not).
type Answer = (ResponseChannel<Response>, PartnerId, Option<Response>);

pub(crate) struct NetworkTask {
    swarm: Swarm<Behaviour>,
    book: PartnerBook,
    settings: Settings,
    protocol_version: String,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    outbox: VecDeque<NetEvent>,
    listen_addrs: Vec<Multiaddr>,
    up: BTreeSet<PartnerId>,
    targets: BTreeMap<u64, Target>,
    next_target: u64,
    dialing: HashMap<ConnectionId, u64>,
    pending: HashMap<OutboundRequestId, (PartnerId, oneshot::Sender<Result<Response, NetError>>)>,
    answers: FuturesUnordered<BoxFuture<'static, Answer>>,
    strikes: HashMap<PeerId, Strikes>,
    banned: HashMap<PeerId, Instant>,
    wrong_genesis: HashSet<PeerId>,
    /// Cut off by the operator: every partner is off the allow list and nothing is redialled. Bans
    /// still run their course in `banned`; healing re-allows only partners not banned.
    isolated: bool,
    /// `isolated` as the handles read it.
    isolated_flag: Arc<AtomicBool>,
    /// Isolate commands waiting for the last connection to close, with their deadline.
    isolation_waiters: Vec<(oneshot::Sender<usize>, Instant)>,
    /// This run of the node.
    instance: InstanceId,
    /// The runs of each connected partner that said hello, and when they last did. Cleared when
    /// the partner's last connection closes.
    hellos: HashMap<PeerId, HashMap<InstanceId, Instant>>,
    /// When we last said hello to every partner up.
    hello_sent: Instant,
}

impl NetworkTask {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        book: PartnerBook,
        settings: Settings,
        protocol_version: String,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<NetEvent>,
        listen_addrs: Vec<Multiaddr>,
        peers: Vec<Multiaddr>,
        isolated_flag: Arc<AtomicBool>,
        instance: InstanceId,
    ) -> NetworkTask {
        let mut task = NetworkTask {
            swarm,
            book,
            settings,
            protocol_version,
            commands,
            events,
            outbox: VecDeque::new(),
            listen_addrs,
            up: BTreeSet::new(),
            targets: BTreeMap::new(),
            next_target: 0,
            dialing: HashMap::new(),
            pending: HashMap::new(),
            answers: FuturesUnordered::new(),
            strikes: HashMap::new(),
            banned: HashMap::new(),
            wrong_genesis: HashSet::new(),
            isolated: false,
            isolated_flag,
            isolation_waiters: Vec::new(),
            instance,
            hellos: HashMap::new(),
            hello_sent: Instant::now(),
        };
        for addr in peers {
            task.add_target(addr, None, false);
        }
        task
    }

    /// Runs until shut down or until every handle is dropped.
    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A second sender for reserving slots, so a pending permit borrows a local, not `self`.
        let events = self.events.clone();
        let ack = loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                cmd = self.commands.recv() => match cmd {
                    None => break None,
                    Some(Command::Shutdown(ack)) => break Some(ack),
                    Some(cmd) => self.on_command(cmd),
                },
                Some(answer) = self.answers.next(), if !self.answers.is_empty() => {
                    self.on_answer(answer);
                }
                permit = events.reserve(), if !self.outbox.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(event) = self.outbox.pop_front() {
                            permit.send(event);
                        }
                    }
                    Err(_) => self.outbox.clear(),
                },
                _ = tick.tick() => self.on_tick(),
            }
        };
        info!(partner = %self.book.name(&self.book.local()), "network task stopping");
        // Dropping the swarm closes the listeners and every connection before we acknowledge.
        drop(self);
        if let Some(ack) = ack {
            let _ = ack.send(());
        }
    }

    // ----- commands -----

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Publish { msg, reply } => {
                let _ = reply.send(self.publish(msg));
            }
            Command::Request { to, req, reply } => self.send_request(to, req, reply),
            Command::ConnectedPeers(reply) => {
                let _ = reply.send(self.up.iter().copied().collect());
            }
            Command::TopicPeers(topic, reply) => {
                let hash = topic.hash();
                let mut peers: Vec<PartnerId> = self
                    .swarm
                    .behaviour()
                    .gossip
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&hash))
                    .filter_map(|(peer, _)| self.book.partner(peer))
                    .collect();
                peers.sort();
                peers.dedup();
                let _ = reply.send(peers);
            }
            Command::ListenAddrs(reply) => {
                let _ = reply.send(self.listen_addrs.clone());
            }
            Command::ReportBadGossip(id) => {
                let GossipId { message_id, author } = id;
                self.strike(
                    author,
                    &format!("gossip message {message_id} broke the ledger rules"),
                );
            }
            Command::SetIsolated(isolated, reply) => self.set_isolated(isolated, reply),
            // Handled by the loop.
            Command::Shutdown(_) => {}
        }
    }

    /// The operator's partition switch. Isolation goes through the allow list, like a ban, so one
    /// mechanism closes connections and refuses new ones in both directions.
    fn set_isolated(&mut self, isolated: bool, reply: oneshot::Sender<usize>) {
        let now = Instant::now();
        if isolated {
            if !self.isolated {
                self.isolated = true;
                self.isolated_flag.store(true, Ordering::Relaxed);
                let allow = &mut self.swarm.behaviour_mut().allow;
                for p in self.book.remotes() {
                    allow.disallow_peer(p.peer);
                }
                info!(partners_up = self.up.len(), "isolated from every partner by the operator; refusing connections until healed");
            }
            self.isolation_waiters.push((reply, now + ISOLATE_WAIT));
        } else {
            if self.isolated {
                self.isolated = false;
                self.isolated_flag.store(false, Ordering::Relaxed);
                let allow = &mut self.swarm.behaviour_mut().allow;
                // A partner whose ban is still running stays out; `lift_bans` lets it in later.
                for p in self
                    .book
                    .remotes()
                    .filter(|p| !self.banned.contains_key(&p.peer))
                {
                    allow.allow_peer(p.peer);
                }
                // Dials refused while isolated built up backoff: redial everything now.
                for t in self.targets.values_mut() {
                    t.backoff = REDIAL_MIN;
                    t.next_at = now;
                }
                info!("partition healed by the operator; redialling partners");
                self.redial(now);
            }
            let _ = reply.send(self.up.len());
        }
        self.answer_isolation_waiters(now);
    }

    /// Answers isolate commands once no connection is left (or healed meanwhile, or past deadline).
    fn answer_isolation_waiters(&mut self, now: Instant) {
        if self.isolation_waiters.is_empty() {
            return;
        }
        let done = !self.isolated || self.swarm.connected_peers().next().is_none();
        let up = self.up.len();
        for (reply, until) in std::mem::take(&mut self.isolation_waiters) {
            if done || until <= now {
                let _ = reply.send(up);
            } else {
                self.isolation_waiters.push((reply, until));
            }
        }
    }

    fn publish(&mut self, msg: Gossip) -> Result<(), NetError> {
        let bytes = msg.to_wire()?;
        let topic = msg.topic();
        match self
            .swarm
            .behaviour_mut()
            .gossip
            .publish(topic.ident(), bytes)
        {
            Ok(id) => {
                trace!(kind = msg.kind(), %id, "published");
                Ok(())
            }
            Err(PublishError::NoPeersSubscribedToTopic) => {
                debug!(
                    kind = msg.kind(),
                    topic = topic.name(),
                    "no partner subscribed; not sent"
                );
                Ok(())
            }
            Err(PublishError::Duplicate) => {
                debug!(kind = msg.kind(), "identical message already published");
                Ok(())
            }
            Err(e) => Err(NetError::Transport {
                reason: format!("publish failed: {e}"),
            }),
        }
    }

    fn send_request(
        &mut self,
        to: PartnerId,
        req: Request,
        reply: oneshot::Sender<Result<Response, NetError>>,
    ) {
        let peer = match self.book.peer(&to) {
            Some(peer) if to != self.book.local() => peer,
            _ => {
                let _ = reply.send(Err(NetError::UnknownPartner { partner: to }));
                return;
            }
        };
        if !self.up.contains(&to) {
            let _ = reply.send(Err(NetError::NotConnected { partner: to }));
            return;
        }
        // Refuse here what the codec would refuse on the wire, with a typed error.
        if let Err(e) = req.to_wire() {
            let _ = reply.send(Err(NetError::Codec(e)));
            return;
        }
        let id = self.swarm.behaviour_mut().rpc.send_request(&peer, Ok(req));
        self.pending.insert(id, (to, reply));
    }

    // ----- events to the service -----

    /// Queues an event for the service without ever blocking the swarm.
    fn emit(&mut self, event: NetEvent) {
        if self.events.is_closed() {
            return;
        }
        let event = if self.outbox.is_empty() {
            match self.events.try_send(event) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(event)) => event,
            }
        } else {
            event
        };
        if self.outbox.len() >= MAX_OUTBOX {
            match &event {
                NetEvent::Gossip { msg, .. } => {
                    warn!(
                        kind = msg.kind(),
                        "service is not keeping up; dropping gossip"
                    );
                    return;
                }
                NetEvent::Request { from, .. } => {
                    // Dropping the reply slot answers the requester with an error.
                    warn!(partner = %self.book.name(from), "service is not keeping up; refusing request");
                    return;
                }
                NetEvent::PeerUp(_) | NetEvent::PeerDown(_) => {}
            }
        }
        self.outbox.push_back(event);
    }

    fn on_answer(&mut self, (channel, from, answer): Answer) {
        let response = answer
            .unwrap_or_else(|| Response::Error {
                message: "the node did not answer in time".into(),
            })
            .fit_to_limits();
        if self
            .swarm
            .behaviour_mut()
            .rpc
            .send_response(channel, response)
            .is_err()
        {
            debug!(partner = %self.book.name(&from), "requester gone before the answer");
        }
    }
}
