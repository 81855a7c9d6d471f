//! Connection upkeep: the addresses we keep connected, redials with back-off, and the strikes and
//! bans that discipline partners sending invalid data.

use super::*;

impl NetworkTask {
    // ----- connection upkeep -----

    pub(super) fn add_target(&mut self, addr: Multiaddr, peer: Option<PeerId>, learned: bool) {
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
    pub(super) fn learn_addrs(&mut self, peer: PeerId, reported: &[Multiaddr]) {
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

    pub(super) fn dial_finished(&mut self, connection: ConnectionId) -> Option<&mut Target> {
        let id = self.dialing.remove(&connection)?;
        let target = self.targets.get_mut(&id)?;
        target.dialing = false;
        Some(target)
    }

    pub(super) fn on_dial_error(
        &mut self,
        connection: ConnectionId,
        peer: Option<PeerId>,
        error: DialError,
    ) {
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

    pub(super) fn peer_gone(&mut self, peer: PeerId) {
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

    pub(super) fn on_tick(&mut self) {
        let now = Instant::now();
        self.lift_bans(now);
        self.redial(now);
        self.answer_isolation_waiters(now);
        if now.duration_since(self.hello_sent) >= HELLO_EVERY {
            self.hello_sent = now;
            let up: Vec<PartnerId> = self.up.iter().copied().collect();
            for partner in up {
                self.say_hello(partner);
            }
        }
    }

    pub(super) fn redial(&mut self, now: Instant) {
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
    pub(super) fn strike(&mut self, peer: PeerId, reason: &dyn std::fmt::Display) {
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

    pub(super) fn lift_bans(&mut self, now: Instant) {
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
    pub(super) fn dialable_keeps_ip_and_tcp_only() {
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
