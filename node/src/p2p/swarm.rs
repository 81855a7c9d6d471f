//! The one task that owns the libp2p [`Swarm`]: it executes [`Command`]s from handles, turns swarm
//! events into [`NetEvent`]s, keeps every configured or learned partner address connected, and
//! disciplines partners that send invalid data, and cuts the node off from every partner while an
//! operator has isolated it.

use super::behaviour::{Behaviour, BehaviourEvent};
use super::codec::RpcRequest;
use super::error::NetError;
use super::handle::{Command, GossipId, NetEvent, ResponseSender};
use super::identity::PartnerBook;
use super::messages::{Gossip, Request, Response, WireMessage};
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

    // ----- swarm events -----

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(e)) => self.on_gossip(e),
            SwarmEvent::Behaviour(BehaviourEvent::Rpc(e)) => self.on_rpc(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => self.on_identify(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => self.on_ping(e),
            SwarmEvent::Behaviour(BehaviourEvent::Allow(never)) => match never {},
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                debug!(peer = %self.book.label(&peer_id), addr = %endpoint.get_remote_address(), "connection established");
                if let Some(target) = self.dial_finished(connection_id) {
                    target.peer = Some(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                debug!(peer = %self.book.label(&peer_id), ?cause, num_established, "connection closed");
                if num_established == 0 {
                    self.peer_gone(peer_id);
                }
                self.answer_isolation_waiters(Instant::now());
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                self.on_dial_error(connection_id, peer_id, error);
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                peer_id,
                error,
                ..
            } => {
                // Strangers are refused here by the allow list, after noise proved their key.
                let who = peer_id
                    .map(|p| self.book.label(&p))
                    .unwrap_or_else(|| "unknown".into());
                debug!(peer = %who, from = %send_back_addr, %error, "incoming connection refused or failed");
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                if !self.listen_addrs.contains(&address) {
                    self.listen_addrs.push(address);
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| a != &address);
            }
            SwarmEvent::ListenerClosed {
                addresses, reason, ..
            } => {
                warn!(?addresses, ?reason, "listener closed");
                self.listen_addrs.retain(|a| !addresses.contains(a));
            }
            SwarmEvent::ListenerError { error, .. } => warn!(%error, "listener error"),
            _ => {}
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let verdict = self.check_gossip(&message);
                let acceptance = match verdict {
                    Ok(_) => MessageAcceptance::Accept,
                    Err(_) => MessageAcceptance::Reject,
                };
                self.swarm
                    .behaviour_mut()
                    .gossip
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
                match verdict {
                    Ok((from, author, msg)) => {
                        trace!(partner = %self.book.name(&from), kind = msg.kind(), "gossip received");
                        let id = GossipId { message_id, author };
                        self.emit(NetEvent::Gossip { from, msg, id });
                    }
                    Err(reason) => self.strike(propagation_source, &reason),
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                debug!(peer = %self.book.label(&peer_id), %topic, "subscribed");
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                debug!(peer = %self.book.label(&peer_id), %topic, "unsubscribed");
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                warn!(peer = %self.book.label(&peer_id), "partner does not speak gossipsub");
            }
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } => {
                debug!(peer = %self.book.label(&peer_id), ?failed_messages, "slow partner");
            }
        }
    }

    /// Decode-level validation of a gossip message: a known topic, an author who is a partner, the
    /// canonical encoding of the topic's message kind, and for an entry a partner's log. An entry's
    /// signatures (the author's and a certificate's) are checked once, off this task, before the
    /// writer takes it; a bad one is reported back as a strike against the author.
    fn check_gossip(
        &self,
        message: &gossipsub::Message,
    ) -> Result<(PartnerId, PeerId, Gossip), String> {
        let topic = super::topics::from_hash(&message.topic)
            .ok_or_else(|| format!("gossip on unknown topic {}", message.topic))?;
        let author = message.source.ok_or("gossip without an author")?;
        let from = self
            .book
            .partner(&author)
            .ok_or_else(|| format!("gossip authored by {}", self.book.label(&author)))?;
        let msg = Gossip::from_wire_on(&message.data, topic)
            .map_err(|e| format!("undecodable gossip: {e}"))?;
        if let Gossip::Entry(entry) = &msg {
            if self.book.peer(&entry.entry.partner).is_none() {
                return Err("gossiped entry of a non-partner log".into());
            }
        }
        Ok((from, author, msg))
    }

    fn on_rpc(&mut self, event: request_response::Event<RpcRequest, Response>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let Some(from) = self.book.partner(&peer) else {
                        // The allow list makes this unreachable; answer nothing.
                        return;
                    };
                    let request = match request {
                        Ok(request) => request,
                        Err(reason) => {
                            let message = format!("undecodable request: {reason}");
                            let _ = self.swarm.behaviour_mut().rpc.send_response(
                                channel,
                                Response::Error {
                                    message: message.clone(),
                                },
                            );
                            self.strike(peer, &message);
                            return;
                        }
                    };
                    let (tx, rx) = oneshot::channel();
                    self.emit(NetEvent::Request {
                        from,
                        req: request,
                        reply: ResponseSender(tx),
                    });
                    let timeout = self.settings.request_timeout;
                    self.answers.push(Box::pin(async move {
                        let answer = tokio::time::timeout(timeout, rx)
                            .await
                            .ok()
                            .and_then(Result::ok);
                        (channel, from, answer)
                    }));
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((_, reply)) = self.pending.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let Some((partner, reply)) = self.pending.remove(&request_id) else {
                    return;
                };
                let err = match error {
                    OutboundFailure::Timeout => NetError::Timeout {
                        partner,
                        after: self.settings.request_timeout,
                    },
                    OutboundFailure::Io(e) if e.kind() == io::ErrorKind::InvalidData => {
                        let reason = format!("undecodable response: {e}");
                        self.strike(peer, &reason);
                        NetError::RequestFailed { partner, reason }
                    }
                    other => NetError::RequestFailed {
                        partner,
                        reason: other.to_string(),
                    },
                };
                debug!(partner = %self.book.name(&partner), %err, "request failed");
                let _ = reply.send(Err(err));
            }
            // Undecodable requests arrive as `Message::Request` with `Err` (see the codec); what is
            // left here is timeouts and closed streams.
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(peer = %self.book.label(&peer), %error, "inbound request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_identify(&mut self, event: identify::Event) {
        let identify::Event::Received { peer_id, info, .. } = event else {
            return;
        };
        let Some(partner) = self.book.partner(&peer_id) else {
            return;
        };
        let name = self.book.name(&partner);
        if info.protocol_version != self.protocol_version {
            if self.wrong_genesis.insert(peer_id) {
                warn!(partner = %name, theirs = %info.protocol_version, ours = %self.protocol_version,
                    "partner runs another coalition (genesis differs); disconnecting");
            }
            let _ = self.swarm.disconnect_peer_id(peer_id);
            return;
        }
        self.wrong_genesis.remove(&peer_id);
        self.learn_addrs(peer_id, &info.listen_addrs);
        if self.up.insert(partner) {
            info!(partner = %name, agent = %info.agent_version, "partner up");
            for t in self
                .targets
                .values_mut()
                .filter(|t| t.peer == Some(peer_id))
            {
                t.backoff = REDIAL_MIN;
            }
            self.emit(NetEvent::PeerUp(partner));
        }
    }

    fn on_ping(&mut self, event: ping::Event) {
        match event.result {
            Ok(rtt) => trace!(peer = %self.book.label(&event.peer), ?rtt, "ping"),
            Err(e) => debug!(peer = %self.book.label(&event.peer), error = %e, "ping failed"),
        }
    }

    // ----- connection upkeep -----

    fn add_target(&mut self, addr: Multiaddr, peer: Option<PeerId>, learned: bool) {
        let id = self.next_target;
        self.next_target += 1;
        self.targets.insert(
            id,
            Target {
                addr,
                peer,
                learned,
                dialing: false,
                next_at: Instant::now(),
                backoff: REDIAL_MIN,
                reported_stranger: false,
            },
        );
    }

    /// Remembers where a partner says it listens, so it is redialled if the connection drops (a
    /// partner that restarts is reconnected even if it does not dial us itself).
    fn learn_addrs(&mut self, peer: PeerId, reported: &[Multiaddr]) {
        let usable: Vec<Multiaddr> = reported
            .iter()
            .filter_map(dialable)
            .filter(|a| !self.listen_addrs.contains(a))
            .take(MAX_LEARNED_ADDRS)
            .collect();
        self.targets
            .retain(|_, t| !(t.learned && t.peer == Some(peer) && !usable.contains(&t.addr)));
        for addr in usable {
            match self.targets.values_mut().find(|t| t.addr == addr) {
                Some(t) if t.peer.is_none() => t.peer = Some(peer),
                Some(_) => {}
                None => {
                    self.add_target(addr, Some(peer), true);
                    // Connected now: the first redial is due only after a disconnect.
                    if let Some(t) = self.targets.values_mut().last() {
                        t.next_at = Instant::now() + REDIAL_MIN;
                    }
                }
            }
        }
    }

    fn dial_finished(&mut self, connection: ConnectionId) -> Option<&mut Target> {
        let id = self.dialing.remove(&connection)?;
        let target = self.targets.get_mut(&id)?;
        target.dialing = false;
        Some(target)
    }

    fn on_dial_error(&mut self, connection: ConnectionId, peer: Option<PeerId>, error: DialError) {
        let now = Instant::now();
        let Some(id) = self.dialing.remove(&connection) else {
            debug!(peer = ?peer.map(|p| self.book.label(&p)), %error, "dial failed");
            return;
        };
        let Some(target) = self.targets.get_mut(&id) else {
            return;
        };
        target.dialing = false;
        target.backoff = (target.backoff * 2).min(REDIAL_MAX);
        target.next_at = now + target.backoff;
        match &error {
            DialError::LocalPeerId { .. } => {
                debug!(addr = %target.addr, "configured peer address is our own; not dialling it");
                self.targets.remove(&id);
            }
            DialError::WrongPeerId { obtained, .. } => {
                // Another node now listens there: forget who we expected.
                debug!(addr = %target.addr, now = %self.book.label(obtained), "different node at address");
                target.peer = None;
            }
            DialError::Denied { cause } if cause.downcast_ref::<NotAllowed>().is_some() => {
                let label = peer
                    .map(|p| self.book.label(&p))
                    .unwrap_or_else(|| "unknown".into());
                // Refused by our own allow list, not a stranger, when banned or isolated.
                if !target.reported_stranger
                    && !self.isolated
                    && !peer.is_some_and(|p| self.banned.contains_key(&p))
                {
                    target.reported_stranger = true;
                    info!(addr = %target.addr, peer = %label, "address is not a genesis partner; refusing it");
                }
            }
            _ => debug!(addr = %target.addr, %error, retry_in = ?target.backoff, "dial failed"),
        }
    }

    fn peer_gone(&mut self, peer: PeerId) {
        let now = Instant::now();
        let was_up = match self.book.partner(&peer) {
            Some(partner) if self.up.remove(&partner) => {
                info!(partner = %self.book.name(&partner), "partner down");
                self.emit(NetEvent::PeerDown(partner));
                true
            }
            _ => false,
        };
        for t in self.targets.values_mut().filter(|t| t.peer == Some(peer)) {
            if !was_up {
                // Connected but never usable (another genesis, refused us): slow down.
                t.backoff = (t.backoff * 2).min(REDIAL_MAX);
            }
            t.next_at = now + t.backoff;
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        self.lift_bans(now);
        self.redial(now);
        self.answer_isolation_waiters(now);
    }

    fn redial(&mut self, now: Instant) {
        if self.isolated {
            return;
        }
        let due: Vec<u64> = self
            .targets
            .iter()
            .filter(|(_, t)| !t.dialing && t.next_at <= now)
            .filter(|(_, t)| match t.peer {
                Some(p) => !self.swarm.is_connected(&p) && !self.banned.contains_key(&p),
                None => true,
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(target) = self.targets.get_mut(&id) else {
                continue;
            };
            let opts = match target.peer {
                Some(peer) => DialOpts::peer_id(peer)
                    .addresses(vec![target.addr.clone()])
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build(),
                None => DialOpts::unknown_peer_id()
                    .address(target.addr.clone())
                    .build(),
            };
            let connection = opts.connection_id();
            match self.swarm.dial(opts) {
                Ok(()) => {
                    trace!(addr = %target.addr, "dialling");
                    target.dialing = true;
                    self.dialing.insert(connection, id);
                }
                // Another address of the same partner is being dialled.
                Err(DialError::DialPeerConditionFalse(_)) => {}
                Err(e) => {
                    target.backoff = (target.backoff * 2).min(REDIAL_MAX);
                    target.next_at = now + target.backoff;
                    debug!(addr = %target.addr, error = %e, "cannot dial");
                }
            }
        }
    }

    // ----- discipline -----

    /// Counts an offence by a peer: lowers its gossip score and bans it after too many.
    fn strike(&mut self, peer: PeerId, reason: &str) {
        let now = Instant::now();
        let entry = self.strikes.entry(peer).or_insert(Strikes {
            count: 0,
            since: now,
        });
        if now.duration_since(entry.since) > STRIKE_WINDOW {
            *entry = Strikes {
                count: 0,
                since: now,
            };
        }
        entry.count += 1;
        let count = entry.count;
        let label = self.book.label(&peer);
        warn!(partner = %label, strikes = count, %reason, "partner sent invalid data");
        self.swarm
            .behaviour_mut()
            .gossip
            .set_application_score(&peer, -f64::from(count));
        if count >= self.settings.max_strikes {
            self.strikes.remove(&peer);
            self.banned.insert(peer, now + self.settings.ban_duration);
            // Leaving the allow list closes its connections and refuses new ones.
            self.swarm.behaviour_mut().allow.disallow_peer(peer);
            warn!(partner = %label, ban = ?self.settings.ban_duration, "disconnecting and banning partner after repeated invalid data");
        }
    }

    fn lift_bans(&mut self, now: Instant) {
        let expired: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in expired {
            self.banned.remove(&peer);
            let behaviour = self.swarm.behaviour_mut();
            behaviour.gossip.set_application_score(&peer, 0.0);
            if self.isolated {
                // Healing the partition lets it in with the others.
                info!(partner = %self.book.label(&peer), "ban lifted; still isolated until the partition heals");
            } else {
                behaviour.allow.allow_peer(peer);
                info!(partner = %self.book.label(&peer), "ban lifted");
            }
        }
    }
}

/// The part of a reported listen address we can dial: IP and TCP port, no unspecified IP, no
/// trailing peer id.
fn dialable(addr: &Multiaddr) -> Option<Multiaddr> {
    let mut out = Multiaddr::empty();
    let mut has_tcp = false;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(ip) if !ip.is_unspecified() => out.push(Protocol::Ip4(ip)),
            Protocol::Ip6(ip) if !ip.is_unspecified() => out.push(Protocol::Ip6(ip)),
            Protocol::Tcp(port) if port != 0 => {
                out.push(Protocol::Tcp(port));
                has_tcp = true;
            }
            Protocol::P2p(_) => {}
            _ => return None,
        }
    }
    has_tcp.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialable_keeps_ip_and_tcp_only() {
        let a: Multiaddr = "/ip4/127.0.0.1/tcp/7100".parse().unwrap();
        assert_eq!(dialable(&a), Some(a.clone()));
        let with_id: Multiaddr = format!("/ip4/127.0.0.1/tcp/7100/p2p/{}", PeerId::random())
            .parse()
            .unwrap();
        assert_eq!(dialable(&with_id), Some(a));
        assert_eq!(dialable(&"/ip4/0.0.0.0/tcp/7100".parse().unwrap()), None);
        assert_eq!(
            dialable(&"/ip4/127.0.0.1/udp/7100/quic-v1".parse().unwrap()),
            None
        );
        assert_eq!(dialable(&"/ip4/127.0.0.1".parse().unwrap()), None);
    }
}
