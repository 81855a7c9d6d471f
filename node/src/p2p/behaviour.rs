//! The libp2p behaviours a partner node runs, combined into one [`Behaviour`].

// `#[derive(NetworkBehaviour)]` generates `BehaviourEvent`, one undocumented variant per field.
#![allow(missing_docs)]

use super::codec::{RpcCodec, RPC_PROTOCOL};
use super::error::NetError;
use super::identity::PartnerBook;
use super::topics::{GossipTopic, Topic};
use coalition_core::encoding::MAX_ENCODED_LEN;
use libp2p::allow_block_list::{self, AllowedPeers};
use libp2p::gossipsub::{self, MessageAuthenticity, ValidationMode};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{identify, ping};
use std::time::Duration;

/// Largest gossipsub frame: one canonical message plus room for the envelope (signature, key,
/// topic, sequence number).
pub const MAX_GOSSIP_TRANSMIT: usize = MAX_ENCODED_LEN + 16 * 1024;

/// Everything the swarm does on each connection. Sub-behaviours are consulted in field order when a
/// connection is established, so the allow list refuses a stranger before anything else sees it.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Connections only from and to genesis partners (minus ourselves): checked once the noise
    /// handshake has proven the remote's key, so a non-partner never gets a usable connection.
    /// Removing a partner from the set (a temporary ban) closes its connections.
    pub allow: allow_block_list::Behaviour<AllowedPeers>,
    /// Broadcast of entries, heads and checkpoint signatures. Messages are signed by their author
    /// (strict validation), bounded in size, and validated by the swarm task before being forwarded:
    /// a message that does not decode is rejected, which lowers the sender's peer score.
    pub gossip: gossipsub::Behaviour,
    /// Point-to-point questions (log ranges, votes, heads) on `/coalition/3/rpc` with our framed
    /// canonical codec.
    pub rpc: request_response::Behaviour<RpcCodec>,
    /// Exchanges listen addresses and the coalition (genesis hash) with each partner: a connection is
    /// "up" once identify succeeds, and learned addresses are redialled after a disconnect.
    pub identify: identify::Behaviour,
    /// Liveness checks and round-trip times on idle connections.
    pub ping: ping::Behaviour,
}

/// The identify protocol version for a coalition: partners of another genesis are told apart.
pub fn protocol_version(genesis_hash_hex: &str) -> String {
    format!(
        "/coalition/{}/{genesis_hash_hex}",
        coalition_core::wire::WIRE_VERSION
    )
}

impl Behaviour {
    /// Builds the behaviours for `keypair`, accepting exactly the remote partners of `book`.
    pub fn new(
        keypair: &Keypair,
        book: &PartnerBook,
        genesis_hash_hex: &str,
        request_timeout: Duration,
    ) -> Result<Behaviour, NetError> {
        let transport = |reason: String| NetError::Transport { reason };

        let mut allow = allow_block_list::Behaviour::<AllowedPeers>::default();
        for p in book.remotes() {
            allow.allow_peer(p.peer);
        }

        let config = gossipsub::ConfigBuilder::default()
            .validation_mode(ValidationMode::Strict)
            .validate_messages()
            .max_transmit_size(MAX_GOSSIP_TRANSMIT)
            .build()
            .map_err(|e| transport(format!("gossipsub config: {e}")))?;
        let mut gossip =
            gossipsub::Behaviour::new(MessageAuthenticity::Signed(keypair.clone()), config)
                .map_err(|e| transport(format!("gossipsub: {e}")))?;
        gossip
            .with_peer_score(score_params(), gossipsub::PeerScoreThresholds::default())
            .map_err(|e| transport(format!("gossipsub scoring: {e}")))?;

        let rpc = request_response::Behaviour::with_codec(
            RpcCodec,
            [(RPC_PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(request_timeout),
        );

        let identify = identify::Behaviour::new(
            identify::Config::new(protocol_version(genesis_hash_hex), keypair.public())
                .with_agent_version(format!("coalition-node/{}", env!("CARGO_PKG_VERSION"))),
        );

        let ping = ping::Behaviour::new(ping::Config::new());

        Ok(Behaviour {
            allow,
            gossip,
            rpc,
            identify,
            ping,
        })
    }
}

/// Peer scoring tuned for a small, closed set of known partners: only invalid messages (P₄) and the
/// application's own strikes count. The defaults' delivery-rate penalties would punish honest partners
/// in a quiet coalition, and the IP colocation penalty would punish a demo with every node on one host.
fn score_params() -> gossipsub::PeerScoreParams {
    let mut params = gossipsub::PeerScoreParams {
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    };
    for topic in Topic::ALL {
        params.topics.insert(
            topic.hash(),
            gossipsub::TopicScoreParams {
                topic_weight: 1.0,
                time_in_mesh_weight: 0.0,
                first_message_deliveries_weight: 0.0,
                mesh_message_deliveries_weight: 0.0,
                mesh_failure_penalty_weight: 0.0,
                // P₄ is -2·k² for k invalid messages, on top of the swarm task's application score
                // of -10 per strike: one offence drops the sender below the gossip threshold (-10),
                // four below the publish threshold (-50), and the fifth strike bans it before it is
                // merely graylisted (-80), so offenders are cut off rather than silently ignored.
                // The count decays by 1% a second.
                invalid_message_deliveries_weight: -2.0,
                invalid_message_deliveries_decay: 0.99,
                ..Default::default()
            },
        );
    }
    params
}
