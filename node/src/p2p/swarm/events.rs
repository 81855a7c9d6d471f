//! Swarm events: gossip, requests and answers, identify and ping, turned into [`NetEvent`]s for the
//! service or into strikes against the partner that sent them.

use super::*;

impl NetworkTask {
    // ----- swarm events -----

    pub(super) fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
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
                    self.hellos.remove(&peer_id);
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

    pub(super) fn on_gossip(&mut self, event: gossipsub::Event) {
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
    pub(super) fn check_gossip(
        &self,
        message: &gossipsub::Message,
    ) -> Result<(PartnerId, PeerId, Gossip), BadGossip> {
        let topic = super::super::topics::from_hash(&message.topic).ok_or_else(|| {
            BadGossip::UnknownTopic {
                topic: message.topic.to_string(),
            }
        })?;
        let author = message.source.ok_or(BadGossip::NoAuthor)?;
        let from = self
            .book
            .partner(&author)
            .ok_or_else(|| BadGossip::Stranger {
                author: self.book.label(&author),
            })?;
        let msg = Gossip::from_wire_on(&message.data, topic)?;
        if let Gossip::Entry(entry) = &msg {
            if self.book.peer(&entry.entry.partner).is_none() {
                return Err(BadGossip::StrangersLog);
            }
        }
        Ok((from, author, msg))
    }

    pub(super) fn on_rpc(&mut self, event: request_response::Event<RpcRequest, Response>) {
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
                        Err(bad) => {
                            let message = format!("undecodable request: {bad}");
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
                    if let Request::Hello { instance } = request {
                        let answer = self.on_hello(peer, instance);
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .rpc
                            .send_response(channel, answer);
                        return;
                    }
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

    pub(super) fn on_identify(&mut self, event: identify::Event) {
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
            self.say_hello(partner);
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

    /// A partner's run says hello: remember it, and answer whether another run with the same key
    /// is connected here and said hello recently (two nodes with one partner key).
    pub(super) fn on_hello(&mut self, peer: PeerId, instance: InstanceId) -> Response {
        let now = Instant::now();
        let runs = self.hellos.entry(peer).or_default();
        runs.retain(|_, seen| now.duration_since(*seen) <= HELLO_LIVE);
        runs.insert(instance, now);
        let live_elsewhere = runs.len() > 1;
        if live_elsewhere {
            warn!(partner = %self.book.label(&peer), runs = runs.len(),
                "two nodes with this partner's key are connected; the one that started last stops");
        }
        Response::Hello { live_elsewhere }
    }

    /// Tells `partner` which run of the node we are; warns if it sees another run with our key.
    pub(super) fn say_hello(&mut self, partner: PartnerId) {
        let (reply, answer) = oneshot::channel();
        let hello = Request::Hello {
            instance: self.instance,
        };
        self.send_request(partner, hello, reply);
        let name = self.book.name(&partner);
        tokio::spawn(async move {
            if let Ok(Ok(Response::Hello {
                live_elsewhere: true,
            })) = answer.await
            {
                warn!(partner = %name, "another node with this partner's key is connected to this partner");
            }
        });
    }

    pub(super) fn on_ping(&mut self, event: ping::Event) {
        match event.result {
            Ok(rtt) => trace!(peer = %self.book.label(&event.peer), ?rtt, "ping"),
            Err(e) => debug!(peer = %self.book.label(&event.peer), error = %e, "ping failed"),
        }
    }
}

/// Why a gossip message is refused before it reaches the service.
#[derive(Debug, thiserror::Error)]
pub(super) enum BadGossip {
    /// On a topic that is not ours.
    #[error("gossip on unknown topic {topic}")]
    UnknownTopic {
        /// The topic hash.
        topic: String,
    },
    /// Without an author (we require signed gossip).
    #[error("gossip without an author")]
    NoAuthor,
    /// Authored by a key that is not a partner.
    #[error("gossip authored by {author}")]
    Stranger {
        /// Who.
        author: String,
    },
    /// Not the canonical encoding of its topic's message.
    #[error("undecodable gossip: {0}")]
    Undecodable(#[from] crate::p2p::messages::MessageError),
    /// An entry of a log that is not a partner's.
    #[error("gossiped entry of a non-partner log")]
    StrangersLog,
}
