//! A partner's ed25519 key is its libp2p identity: this module converts between the two.
//!
//! The [`PartnerBook`] maps every genesis partner's key to its libp2p [`PeerId`] once at start-up, so
//! the swarm task can name the partner behind any connection or message (and refuse anything that is
//! not one).

use super::error::NetError;
use coalition_core::genesis::Genesis;
use coalition_core::record::PartnerId;
use libp2p::identity::{ed25519, Keypair, PublicKey};
use libp2p::PeerId;
use std::collections::HashMap;

/// The libp2p keypair for a partner's 32-byte ed25519 secret seed (the same key that signs its log).
pub fn keypair_from_secret(secret: &[u8; 32]) -> Result<Keypair, NetError> {
    // `ed25519_from_bytes` zeroes the buffer it is given: hand it a copy.
    let mut seed = *secret;
    Keypair::ed25519_from_bytes(&mut seed).map_err(|e| NetError::Transport {
        reason: format!("invalid ed25519 secret: {e}"),
    })
}

/// The libp2p public key of a partner.
pub fn public_key_of(partner: &PartnerId) -> Result<PublicKey, NetError> {
    ed25519::PublicKey::try_from_bytes(&partner.0 .0)
        .map(PublicKey::from)
        .map_err(|_| NetError::UnknownPartner { partner: *partner })
}

/// The libp2p peer id of a partner.
pub fn peer_id_of(partner: &PartnerId) -> Result<PeerId, NetError> {
    public_key_of(partner).map(|k| k.to_peer_id())
}

/// The partner key behind a libp2p public key, if it is an ed25519 key.
pub fn partner_of_key(key: &PublicKey) -> Option<PartnerId> {
    let ed = key.clone().try_into_ed25519().ok()?;
    Some(PartnerId(coalition_core::crypto::PublicKey(ed.to_bytes())))
}

/// One genesis partner as the network sees it.
#[derive(Debug, Clone)]
pub struct PartnerPeer {
    /// Its key.
    pub partner: PartnerId,
    /// Its libp2p identity.
    pub peer: PeerId,
    /// Its display name, for logs.
    pub name: String,
}

/// Every genesis partner's [`PeerId`], built once; lookups both ways.
#[derive(Debug, Clone)]
pub struct PartnerBook {
    local: PartnerId,
    partners: Vec<PartnerPeer>,
    by_peer: HashMap<PeerId, usize>,
    by_partner: HashMap<PartnerId, usize>,
}

impl PartnerBook {
    /// The book for `genesis`, seen from partner `local`. Fails if a genesis key is not a valid
    /// ed25519 key or `local` is not a genesis partner.
    pub fn new(genesis: &Genesis, local: PartnerId) -> Result<PartnerBook, NetError> {
        if !genesis.is_partner(&local) {
            return Err(NetError::UnknownPartner { partner: local });
        }
        let mut partners = Vec::with_capacity(genesis.partners.len());
        let mut by_peer = HashMap::new();
        let mut by_partner = HashMap::new();
        for (i, p) in genesis.partners.iter().enumerate() {
            let peer = peer_id_of(&p.id)?;
            partners.push(PartnerPeer {
                partner: p.id,
                peer,
                name: p.name.clone(),
            });
            by_peer.insert(peer, i);
            by_partner.insert(p.id, i);
        }
        Ok(PartnerBook {
            local,
            partners,
            by_peer,
            by_partner,
        })
    }

    /// Our own partner id.
    pub fn local(&self) -> PartnerId {
        self.local
    }

    /// The partner behind a peer id, if it is one.
    pub fn partner(&self, peer: &PeerId) -> Option<PartnerId> {
        self.by_peer
            .get(peer)
            .and_then(|&i| self.partners.get(i))
            .map(|p| p.partner)
    }

    /// The peer id of a partner, if it is one.
    pub fn peer(&self, partner: &PartnerId) -> Option<PeerId> {
        self.by_partner
            .get(partner)
            .and_then(|&i| self.partners.get(i))
            .map(|p| p.peer)
    }

    /// The partner's display name, or its short key if it is not a partner.
    pub fn name(&self, partner: &PartnerId) -> String {
        match self
            .by_partner
            .get(partner)
            .and_then(|&i| self.partners.get(i))
        {
            Some(p) => p.name.clone(),
            None => partner.short(),
        }
    }

    /// A peer's display name for logs: the partner's name, else the raw peer id.
    pub fn label(&self, peer: &PeerId) -> String {
        match self.by_peer.get(peer).and_then(|&i| self.partners.get(i)) {
            Some(p) => p.name.clone(),
            None => format!("non-partner {peer}"),
        }
    }

    /// Every partner except ourselves: the peers we accept connections from.
    pub fn remotes(&self) -> impl Iterator<Item = &PartnerPeer> + '_ {
        self.partners
            .iter()
            .filter(move |p| p.partner != self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coalition_core::crypto;

    #[test]
    fn partner_key_is_the_libp2p_identity() {
        let key = crypto::Keypair::generate();
        let partner = PartnerId(key.public());
        let kp = keypair_from_secret(&key.secret_bytes()).unwrap();
        assert_eq!(kp.public().to_peer_id(), peer_id_of(&partner).unwrap());
        assert_eq!(partner_of_key(&kp.public()), Some(partner));
    }

    #[test]
    fn book_maps_both_ways_and_excludes_self() {
        let (genesis, keys) = coalition_core::test_util::test_genesis(3);
        let me = PartnerId(keys[0].public());
        let book = PartnerBook::new(&genesis, me).unwrap();
        for k in &keys {
            let id = PartnerId(k.public());
            let peer = book.peer(&id).unwrap();
            assert_eq!(book.partner(&peer), Some(id));
        }
        assert_eq!(book.remotes().count(), 2);
        assert!(book.remotes().all(|p| p.partner != me));
        assert_eq!(book.name(&me), "p0");
        let stranger = PartnerId(crypto::Keypair::generate().public());
        assert!(matches!(
            PartnerBook::new(&genesis, stranger),
            Err(NetError::UnknownPartner { .. })
        ));
    }
}
