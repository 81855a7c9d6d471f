//! The cheap, cloneable handle through which the rest of the node talks to the swarm task, and the
//! events the task emits.

use super::error::NetError;
use super::messages::{Gossip, InstanceId, Request, Response};
use super::topics::Topic;
use coalition_core::record::PartnerId;
use libp2p::gossipsub::MessageId;
use libp2p::{Multiaddr, PeerId};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// What the swarm task reports to the node's service.
// Gossip is inline (see `Gossip`); events are moved once, from the task to the service.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum NetEvent {
    /// A well-formed gossip message (decoded, on its own topic, an entry correctly signed by a genesis
    /// partner). It has already been forwarded to other partners; if the service finds it invalid
    /// by the ledger's rules it calls [`NetworkHandle::report_bad_gossip`] with `id`.
    Gossip {
        /// The partner that authored (signed) the message; not necessarily the one that relayed it.
        from: PartnerId,
        /// The message.
        msg: Gossip,
        /// Names the message for [`NetworkHandle::report_bad_gossip`].
        id: GossipId,
    },
    /// A partner asks something. Answer with `reply.send(..)`, from any task; an unanswered request
    /// (the sender dropped, or no answer within the request timeout) gets [`Response::Error`].
    Request {
        /// The asking partner.
        from: PartnerId,
        /// The question.
        req: Request,
        /// Where the answer goes.
        reply: ResponseSender,
    },
    /// A partner is connected and speaks our protocol (identify succeeded with the same genesis).
    PeerUp(PartnerId),
    /// A partner that was up has no connection left.
    PeerDown(PartnerId),
}

/// The answer slot of an inbound request: hand it to whatever task computes the answer.
#[derive(Debug)]
pub struct ResponseSender(pub(crate) oneshot::Sender<Response>);

impl ResponseSender {
    /// Sends the answer. Returns it back if the request is gone (timed out, connection closed).
    // Mirrors `oneshot::Sender::send`; the error is the caller's own value handed back.
    #[allow(clippy::result_large_err)]
    pub fn send(self, response: Response) -> Result<(), Response> {
        self.0.send(response)
    }

    /// Whether the requester may still receive an answer.
    pub fn is_open(&self) -> bool {
        !self.0.is_closed()
    }
}

/// Identifies a received gossip message, to report it as invalid later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GossipId {
    pub(crate) message_id: MessageId,
    pub(crate) author: PeerId,
}

/// A command from a handle to the swarm task.
#[derive(Debug)]
pub(crate) enum Command {
    Publish {
        msg: Gossip,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    Request {
        to: PartnerId,
        req: Request,
        reply: oneshot::Sender<Result<Response, NetError>>,
    },
    ConnectedPeers(oneshot::Sender<Vec<PartnerId>>),
    TopicPeers(Topic, oneshot::Sender<Vec<PartnerId>>),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    ReportBadGossip(GossipId),
    /// Cut off from (true) or reconnect to (false) every partner; answers with the partners still up.
    SetIsolated(bool, oneshot::Sender<usize>),
    Shutdown(oneshot::Sender<()>),
}

/// Talks to the swarm task. Cloning is cheap; the task stops when every handle is dropped or on
/// [`NetworkHandle::shutdown`].
#[derive(Debug, Clone)]
pub struct NetworkHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) local: PartnerId,
    pub(crate) request_timeout: Duration,
    /// Written by the task when the partition switch flips, so reading it never waits on the task.
    pub(crate) isolated: Arc<AtomicBool>,
    /// This run of the node, as [`Request::Hello`] names it.
    pub(crate) instance: InstanceId,
}

impl NetworkHandle {
    /// Our own partner id.
    pub fn local_partner(&self) -> PartnerId {
        self.local
    }

    /// This run of the node (random at each start).
    pub fn instance(&self) -> InstanceId {
        self.instance
    }

    async fn send(&self, cmd: Command) -> Result<(), NetError> {
        self.commands
            .send(cmd)
            .await
            .map_err(|_| NetError::ChannelClosed)
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx)).await?;
        rx.await.map_err(|_| NetError::ChannelClosed)
    }

    /// Broadcasts a message on its topic. Having no partner to send it to is not an error (it is
    /// logged; anti-entropy delivers later); a message too large or over the item limits is.
    pub async fn publish(&self, msg: Gossip) -> Result<(), NetError> {
        self.ask(|reply| Command::Publish { msg, reply }).await?
    }

    /// Asks a connected partner, waiting at most the configured request timeout.
    pub async fn request(&self, to: PartnerId, req: Request) -> Result<Response, NetError> {
        self.request_with_timeout(to, req, self.request_timeout)
            .await
    }

    /// Asks a connected partner, waiting at most `timeout` (the configured request timeout still
    /// bounds how long the transport keeps the request open, so a longer value does not help).
    pub async fn request_with_timeout(
        &self,
        to: PartnerId,
        req: Request,
        timeout: Duration,
    ) -> Result<Response, NetError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Request { to, req, reply: tx }).await?;
        match tokio::time::timeout(timeout, rx).await {
            Err(_) => Err(NetError::Timeout {
                partner: to,
                after: timeout,
            }),
            Ok(Err(_)) => Err(NetError::ChannelClosed),
            Ok(Ok(result)) => result,
        }
    }

    /// Partners currently up (see [`NetEvent::PeerUp`]), sorted.
    pub async fn connected_peers(&self) -> Result<Vec<PartnerId>, NetError> {
        self.ask(Command::ConnectedPeers).await
    }

    /// Connected partners subscribed to `topic`, sorted: who would receive a publish now.
    pub async fn topic_peers(&self, topic: Topic) -> Result<Vec<PartnerId>, NetError> {
        self.ask(|reply| Command::TopicPeers(topic, reply)).await
    }

    /// The addresses we actually listen on (with the real port when configured with port 0).
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.ask(Command::ListenAddrs).await
    }

    /// Reports that a gossip message broke the ledger's rules: a strike against its author, whose
    /// score drops; enough strikes disconnect and ban it for a while.
    pub async fn report_bad_gossip(&self, id: GossipId) -> Result<(), NetError> {
        self.send(Command::ReportBadGossip(id)).await
    }

    /// Isolates this node from every partner (`true`) or heals the partition (`false`): an
    /// operator's switch for testing and maintenance that leaves the node itself running.
    ///
    /// Isolating closes every connection, refuses new ones and stops redialling; it answers once
    /// the connections are closed (or after a few seconds at most) with the number of partners still
    /// up, normally 0. Healing lets partners in again (except those serving a ban) and redials at
    /// once; it answers without waiting for them to come up. Both are idempotent.
    pub async fn set_isolated(&self, isolated: bool) -> Result<usize, NetError> {
        self.ask(|reply| Command::SetIsolated(isolated, reply))
            .await
    }

    /// Whether [`NetworkHandle::set_isolated`] has cut this node off.
    pub fn is_isolated(&self) -> bool {
        self.isolated.load(Ordering::Relaxed)
    }

    /// Stops the swarm task and waits until it has closed its listeners and connections. Returns
    /// at once if the task has already stopped.
    pub async fn shutdown(&self) {
        // ChannelClosed only means it was already stopped.
        let _ = self.ask(Command::Shutdown).await;
    }
}
