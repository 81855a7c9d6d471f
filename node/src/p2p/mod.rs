//! The node's networking: libp2p between genesis partners, behind a handle.
//!
//! # Bird's-eye view
//!
//! ```text
//!   service tasks ──NetworkHandle (Clone)──► mpsc<Command> ──►┌──────────────────────────┐
//!   (store, vote, sync, API)                                  │ swarm task (swarm.rs)    │
//!        ▲                                                    │ owns the libp2p Swarm:   │
//!        └──────────── mpsc<NetEvent> ◄───────────────────────│ tcp + noise + yamux,     │
//!          Gossip / Request{reply} / PeerUp / PeerDown        │ Behaviour (behaviour.rs) │
//!                                                             └──────────────────────────┘
//! ```
//!
//! - [`spawn`] builds the swarm, starts listening, and starts **one tokio task** that owns it
//!   (`swarm.rs`). Nothing else touches libp2p: everything else holds a [`NetworkHandle`], whose methods
//!   send a command to that task and await its answer on a oneshot channel.
//! - The task reports to the node's service on the [`NetEvent`] receiver returned by [`spawn`]. It
//!   never blocks on the service: events queue inside the task if the channel is full.
//! - Inbound requests carry a [`ResponseSender`]; the service may answer from any task, and the swarm
//!   task forwards the answer to the requester (or an error after the request timeout).
//! - Only genesis partners get a connection: the allow list refuses any other key once the noise
//!   handshake has proven it ([`identity`] maps partner keys to peer ids). A partner is "up" once
//!   identify confirms it runs the same coalition (genesis hash).
//! - The task dials the configured peers at start and every address a partner reports through
//!   identify, and redials them (1 s, backing off to 4 s) whenever the partner is disconnected, so a
//!   restarted partner is reconnected without help.
//! - Bytes from peers are decoded with typed errors, never panics ([`messages`], [`codec`]). Gossip that
//!   does not decode is rejected (gossipsub lowers the sender's score); undecodable gossip or frames,
//!   and gossip the service reports with [`NetworkHandle::report_bad_gossip`], are strikes: after
//!   [`NetworkConfig::max_strikes`] of them the partner is disconnected and banned for
//!   [`NetworkConfig::ban_duration`].
//! - [`NetworkHandle::set_isolated`] is an operator's partition switch: it takes every partner off the
//!   allow list (closing connections, refusing new ones) and stops redialling until healed. Healing
//!   re-allows every partner except those still banned.
//!
//! Topics are in [`topics`]; the request-response protocol is `/coalition/3/rpc` ([`codec`]).

pub mod behaviour;
pub mod codec;
pub mod error;
mod handle;
pub mod identity;
/// The wire messages are protocol and live in the core; this path keeps the node's names.
pub use coalition_core::wire as messages;
mod swarm;
pub mod topics;

pub use error::NetError;
pub use handle::{GossipId, NetEvent, NetworkHandle, ResponseSender};
pub use messages::{
    Gossip, HeadAnnouncement, HeldVote, InstanceId, Refusal, Request, Response, MAX_HEADS,
    MAX_HELD_VOTES, MAX_RANGE_ENTRIES,
};
pub(crate) use swarm::{HELLO_EVERY, HELLO_LIVE};
use topics::GossipTopic;
pub use topics::Topic;

use behaviour::Behaviour;
use coalition_core::genesis::Genesis;
use futures::StreamExt;
use identity::PartnerBook;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, Swarm, SwarmBuilder};
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Default for [`NetworkConfig::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`NetworkConfig::ban_duration`].
pub const DEFAULT_BAN_DURATION: Duration = Duration::from_secs(60);
/// Default for [`NetworkConfig::max_strikes`].
pub const DEFAULT_MAX_STRIKES: u32 = 5;
/// A connection no behaviour needs is closed after this long (partners stay connected anyway: the
/// gossip mesh keeps connections alive, and disconnected partners are redialled).
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Capacity of the event channel to the service (more events queue inside the swarm task).
pub const EVENT_CHANNEL_CAPACITY: usize = 1024;
/// How long [`spawn`] waits for the listener to come up.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the network needs to start.
#[derive(Clone)]
pub struct NetworkConfig {
    /// This partner's 32-byte ed25519 secret seed: its log-signing key is its libp2p identity.
    pub keypair_secret: [u8; 32],
    /// Where to listen: a multiaddr (`/ip4/127.0.0.1/tcp/7100`, port 0 for any) or `ip:port`.
    pub listen: String,
    /// Other partners' addresses (multiaddr or `ip:port`, no peer id): dialled at start and redialled
    /// whenever disconnected. Who answers is checked against the genesis.
    pub peers: Vec<String>,
    /// The coalition: who may connect, and the genesis hash partners must share.
    pub genesis: Arc<Genesis>,
    /// How long a request may wait for its answer, both ways: ours to a partner, and a partner's for
    /// our service's answer.
    pub request_timeout: Duration,
    /// How long a partner that keeps sending invalid data stays disconnected.
    pub ban_duration: Duration,
    /// Offences (undecodable gossip or frames, reported gossip) that trigger a ban.
    pub max_strikes: u32,
}

impl NetworkConfig {
    /// A configuration with the default timeouts and limits.
    pub fn new(
        keypair_secret: [u8; 32],
        listen: impl Into<String>,
        peers: Vec<String>,
        genesis: Arc<Genesis>,
    ) -> NetworkConfig {
        NetworkConfig {
            keypair_secret,
            listen: listen.into(),
            peers,
            genesis,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            ban_duration: DEFAULT_BAN_DURATION,
            max_strikes: DEFAULT_MAX_STRIKES,
        }
    }
}

impl std::fmt::Debug for NetworkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkConfig")
            .field("keypair_secret", &"<redacted>")
            .field("listen", &self.listen)
            .field("peers", &self.peers)
            .field("genesis", &self.genesis.coalition)
            .field("request_timeout", &self.request_timeout)
            .field("ban_duration", &self.ban_duration)
            .field("max_strikes", &self.max_strikes)
            .finish()
    }
}

/// Parses a peer or listen address: a multiaddr, or `ip:port` for TCP.
pub fn parse_addr(s: &str) -> Result<Multiaddr, NetError> {
    let s = s.trim();
    let invalid = |reason: String| NetError::InvalidAddress {
        addr: s.to_string(),
        reason,
    };
    if s.starts_with('/') {
        return s.parse::<Multiaddr>().map_err(|e| invalid(e.to_string()));
    }
    let sock: SocketAddr = s
        .parse()
        .map_err(|e| invalid(format!("neither a multiaddr nor ip:port ({e})")))?;
    Ok(Multiaddr::from(sock.ip()).with(Protocol::Tcp(sock.port())))
}

/// Starts the network: builds the swarm, listens, and spawns the task that owns it. Returns once
/// the listener is up (so [`NetworkHandle::listen_addrs`] already knows the real port). Must run
/// inside a tokio runtime.
///
/// Fails if the key is not a genesis partner, an address does not parse, or the listener cannot
/// start.
pub async fn spawn(
    config: NetworkConfig,
) -> Result<(NetworkHandle, mpsc::Receiver<NetEvent>), NetError> {
    let keypair = identity::keypair_from_secret(&config.keypair_secret)?;
    let local = identity::partner_of_key(&keypair.public()).ok_or_else(|| NetError::Transport {
        reason: "not an ed25519 identity".into(),
    })?;
    let book = PartnerBook::new(&config.genesis, local)?;
    let listen = parse_addr(&config.listen)?;
    let peers = config
        .peers
        .iter()
        .map(|p| parse_addr(p))
        .collect::<Result<Vec<_>, _>>()?;
    let protocol_version = behaviour::protocol_version(&config.genesis.hash().to_hex());
    let behaviour = Behaviour::new(
        &keypair,
        &book,
        &config.genesis.hash().to_hex(),
        config.request_timeout,
    )?;

    refuse_port_in_use(&listen)?;
    let mut swarm = build_swarm(keypair, behaviour)?;
    let first = listen_on(&mut swarm, listen).await?;
    tracing::info!(partner = %book.name(&local), address = %first, "listening");

    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let isolated = Arc::new(AtomicBool::new(false));
    // Random per run: only its difference from another run's matters, not secrecy.
    let instance = InstanceId(rand::random());
    let (event_tx, event_rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let settings = swarm::Settings {
        request_timeout: config.request_timeout,
        ban_duration: config.ban_duration,
        max_strikes: config.max_strikes.max(1),
    };
    let task = swarm::NetworkTask::new(
        swarm,
        book,
        settings,
        protocol_version,
        cmd_rx,
        event_tx,
        vec![first],
        peers,
        isolated.clone(),
        instance,
    );
    tokio::spawn(task.run());
    let handle = NetworkHandle {
        commands: cmd_tx,
        local,
        request_timeout: config.request_timeout,
        isolated,
        instance,
    };
    Ok((handle, event_rx))
}

/// The swarm of `keypair`'s node with `behaviour`, over TCP + noise + yamux, subscribed to every
/// topic.
fn build_swarm(
    keypair: libp2p::identity::Keypair,
    behaviour: Behaviour,
) -> Result<Swarm<Behaviour>, NetError> {
    let builder = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetError::Transport {
            reason: format!("noise: {e}"),
        })?;
    let builder = match builder.with_behaviour(|_| behaviour) {
        Ok(builder) => builder,
        Err(never) => match never {},
    };
    let mut swarm = builder
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();

    for topic in Topic::ALL {
        swarm
            .behaviour_mut()
            .gossip
            .subscribe(&topic.ident())
            .map_err(|e| NetError::Transport {
                reason: format!("subscribe {}: {e}", topic.name()),
            })?;
    }
    Ok(swarm)
}

/// Fails with [`NetError::AddressInUse`] if another socket listens on `listen`'s TCP port.
///
/// libp2p's TCP listener sets `SO_REUSEPORT` (so outgoing connections can reuse the port), which
/// lets a second process of the same user listen on the same port and take half the connections.
/// A plain bind, without `SO_REUSEPORT`, fails while any other socket holds the port; the probe
/// is released before libp2p binds.
fn refuse_port_in_use(listen: &Multiaddr) -> Result<(), NetError> {
    let mut ip = None;
    let mut port = None;
    for part in listen.iter() {
        match part {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(std::net::IpAddr::V6(a)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    let (Some(ip), Some(port)) = (ip, port) else {
        return Ok(());
    };
    if port == 0 {
        return Ok(());
    }
    match std::net::TcpListener::bind(SocketAddr::new(ip, port)) {
        Ok(_probe) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(NetError::AddressInUse {
            addr: listen.to_string(),
        }),
        // Anything else (an address not on this host, no permission) libp2p reports itself.
        Err(_) => Ok(()),
    }
}

/// Starts listening on `listen` and waits for the first address (with the real port if 0 was
/// asked), at most [`LISTEN_TIMEOUT`].
async fn listen_on(swarm: &mut Swarm<Behaviour>, listen: Multiaddr) -> Result<Multiaddr, NetError> {
    swarm
        .listen_on(listen.clone())
        .map_err(|e| NetError::Transport {
            reason: format!("cannot listen on {listen}: {e}"),
        })?;
    tokio::time::timeout(LISTEN_TIMEOUT, async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => return Ok(address),
                SwarmEvent::ListenerClosed { reason, .. } => {
                    return Err(format!("listener closed: {reason:?}"));
                }
                SwarmEvent::ListenerError { error, .. } => return Err(error.to_string()),
                _ => {}
            }
        }
    })
    .await
    .map_err(|_| format!("no listen address after {LISTEN_TIMEOUT:?}"))
    .and_then(|r| r)
    .map_err(|reason| NetError::Transport {
        reason: format!("cannot listen on {listen}: {reason}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_both_ways() {
        let a = parse_addr("/ip4/127.0.0.1/tcp/7100").unwrap();
        assert_eq!(parse_addr("127.0.0.1:7100").unwrap(), a);
        assert_eq!(
            parse_addr("[::1]:7100").unwrap().to_string(),
            "/ip6/::1/tcp/7100"
        );
        assert!(matches!(
            parse_addr("localhost"),
            Err(NetError::InvalidAddress { .. })
        ));
        assert!(matches!(
            parse_addr("/ip4/nope"),
            Err(NetError::InvalidAddress { .. })
        ));
    }
}
