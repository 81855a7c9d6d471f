//! What can go wrong in the networking layer, as seen by a caller of the handle.
//!
//! "A peer sent bad data" is not an error returned here: the swarm task scores the peer down, bans it
//! after repeated offences and logs it; callers only learn that their own request failed.

use super::messages::MessageError;
use coalition_core::record::PartnerId;
use std::time::Duration;

/// Why a networking operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// No response arrived within the request timeout. The peer may still have processed the request.
    #[error("no response from partner {} within {after:?}", .partner.short())]
    Timeout {
        /// The partner asked.
        partner: PartnerId,
        /// How long we waited.
        after: Duration,
    },
    /// The partner is a genesis partner but we hold no usable connection to it right now.
    #[error("partner {} is not connected", .partner.short())]
    NotConnected {
        /// The partner.
        partner: PartnerId,
    },
    /// The key is not a genesis partner (or is our own key where a remote one is needed).
    #[error("{} is not a remote genesis partner", .partner.short())]
    UnknownPartner {
        /// The key given.
        partner: PartnerId,
    },
    /// The network task has stopped (shut down or crashed), so the command could not be delivered or
    /// its answer never came.
    #[error("the network task has stopped")]
    ChannelClosed,
    /// The request reached the transport but failed there: connection closed, dial failure, the
    /// remote does not speak our protocol, an I/O error.
    #[error("request to partner {} failed: {reason}", .partner.short())]
    RequestFailed {
        /// The partner asked.
        partner: PartnerId,
        /// What the transport said.
        reason: String,
    },
    /// Another process listens on our p2p port: most likely a second instance of this partner,
    /// which peers would see as a second history of one partner.
    #[error(
        "cannot listen on {addr}: the address is in use (is another coalition-node of this \
         partner, or another program, already running on it?)"
    )]
    AddressInUse {
        /// The listen address.
        addr: String,
    },
    /// Setting up the transport or the behaviours failed (listen error, bad key, invalid gossipsub
    /// configuration).
    #[error("transport: {reason}")]
    Transport {
        /// What failed.
        reason: String,
    },
    /// An address in the configuration is neither a multiaddr nor an `ip:port`.
    #[error("invalid address {addr:?}: {reason}")]
    InvalidAddress {
        /// The address as given.
        addr: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A message could not be encoded (too large, too many items) or a response could not be decoded.
    #[error("codec: {0}")]
    Codec(#[from] MessageError),
}
