//! Quorum certificates for spends (DESIGN.md §4): the check of a [`RedeemCert`] on its own
//! ([`verify_cert`]) or in two halves for a log entry ([`check_cert_form`], and [`cert_signatures`]
//! verified with the entry's), and the redeemer's [`CertBuilder`] that collects votes into the
//! canonical certificate.
//!
//! A member could sign two orders with the same `member_seq` at two shops at once. Each honest partner
//! votes for at most one order per `(member, member_seq)` ([`crate::vote`]), and a certificate needs
//! [`Genesis::quorum`] votes, so two certificates for one `(member, seq)` would need more than `f`
//! partners to lie. That is what lets the ledger apply a certificate without any global ordering.

use crate::crypto::{Signature, SignatureError, SignedMessage};
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::order::{check_order, OrderError};
use crate::record::{vote_message, MemberId, PartnerId, RedeemCert, SignedOrder, Vote, VoteSig};
use crate::verified::Verified;
use std::collections::BTreeMap;

/// Why a certificate is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// The order inside is malformed.
    #[error("malformed order: {0}")]
    Order(#[from] OrderError),
    /// The member's signature over the order does not verify.
    #[error("member {member}'s signature on the order does not verify: {source}")]
    MemberSignature {
        /// The order's member.
        member: MemberId,
        /// Why.
        source: SignatureError,
    },
    /// Fewer distinct partner votes than the quorum.
    #[error("certificate has {got} votes, the quorum is {needed}")]
    TooFewVotes {
        /// Votes present.
        got: usize,
        /// The genesis quorum.
        needed: usize,
    },
    /// A vote from a key that is not a genesis partner.
    #[error("vote from {voter}, which is not a partner")]
    VoterNotPartner {
        /// The voter.
        voter: PartnerId,
    },
    /// Two votes from the same partner.
    #[error("two votes from partner {voter}")]
    DuplicateVote {
        /// The voter.
        voter: PartnerId,
    },
    /// Votes not sorted strictly by partner id (the canonical form).
    #[error("votes are not sorted by partner id at position {index}")]
    VotesUnsorted {
        /// Position of the first vote out of order.
        index: usize,
    },
    /// A vote's signature does not verify.
    #[error("vote by {voter} does not verify: {source}")]
    BadVote {
        /// The voter.
        voter: PartnerId,
        /// Why.
        source: SignatureError,
    },
}

/// Checks a certificate against the genesis: a well-formed order, the member's signature, and at least
/// [`Genesis::quorum`] votes from distinct genesis partners, sorted strictly by partner id, each signed
/// over [`vote_message`] of the order id. Cheap checks run before any signature is verified.
///
/// This says nothing about the ledger state (lot balances, the member's sequence number): that is
/// [`crate::ledger::apply`]'s job. A certificate inside a log entry has its signatures checked with the
/// entry's ([`crate::log::SignatureChecked`], batched during catch-up) and its form by `apply`
/// ([`check_cert_form`]); this function does both, for a certificate on its own.
pub fn verify_cert(
    genesis: &Genesis,
    cert: &RedeemCert,
) -> Result<Verified<RedeemCert>, CertError> {
    check_cert_form(genesis, cert)?;
    verify_cert_signatures(cert)?;
    Ok(Verified::new_unchecked(cert.clone()))
}

/// The checks on a certificate that need no signature: a well-formed order, at least
/// [`Genesis::quorum`] votes from distinct genesis partners, sorted strictly by partner id.
pub fn check_cert_form(genesis: &Genesis, cert: &RedeemCert) -> Result<(), CertError> {
    check_order(genesis, &cert.order.order)?;
    let mut previous: Option<&PartnerId> = None;
    for (index, vote) in cert.votes.iter().enumerate() {
        if !genesis.is_partner(&vote.partner) {
            return Err(CertError::VoterNotPartner {
                voter: vote.partner,
            });
        }
        if let Some(prev) = previous {
            if *prev == vote.partner {
                return Err(CertError::DuplicateVote {
                    voter: vote.partner,
                });
            }
            if *prev > vote.partner {
                return Err(CertError::VotesUnsorted { index });
            }
        }
        previous = Some(&vote.partner);
    }
    if cert.votes.len() < genesis.quorum() {
        return Err(CertError::TooFewVotes {
            got: cert.votes.len(),
            needed: genesis.quorum(),
        });
    }
    Ok(())
}

/// Who made one of a certificate's signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertSigner {
    /// The member, over the order.
    Member(MemberId),
    /// A partner, over its vote.
    Voter(PartnerId),
}

impl CertSigner {
    /// The error for this signature failing.
    pub fn error(self, source: SignatureError) -> CertError {
        match self {
            CertSigner::Member(member) => CertError::MemberSignature { member, source },
            CertSigner::Voter(voter) => CertError::BadVote { voter, source },
        }
    }
}

/// Every signature in a certificate, with its signer: the member's over the order id, then each
/// vote's over [`vote_message`] of it. For batch verification.
pub fn cert_signatures(cert: &RedeemCert) -> Vec<(CertSigner, SignedMessage)> {
    let order = &cert.order.order;
    let order_id = order.id();
    let mut out = Vec::with_capacity(cert.votes.len().saturating_add(1));
    out.push((
        CertSigner::Member(order.member),
        SignedMessage {
            key: order.member.0,
            message: order_id,
            signature: cert.order.signature,
        },
    ));
    let message = vote_message(&order_id);
    for vote in &cert.votes {
        out.push((
            CertSigner::Voter(vote.partner),
            SignedMessage {
                key: vote.partner.0,
                message,
                signature: vote.signature,
            },
        ));
    }
    out
}

/// Verifies every signature of a certificate one by one with `verify_strict`: the member's first.
pub fn verify_cert_signatures(cert: &RedeemCert) -> Result<(), CertError> {
    for (signer, m) in cert_signatures(cert) {
        crate::crypto::verify(&m.key, &m.message, &m.signature).map_err(|e| signer.error(e))?;
    }
    Ok(())
}

/// Why the [`CertBuilder`] did not take a vote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddVoteError {
    /// The vote is for a different order.
    #[error("vote by {voter} is for order {found}, not {expected}")]
    WrongOrder {
        /// The voter.
        voter: PartnerId,
        /// The order being certified.
        expected: Hash,
        /// The order the vote names.
        found: Hash,
    },
    /// The voter is not a genesis partner.
    #[error("vote from {voter}, which is not a partner")]
    NotAPartner {
        /// The voter.
        voter: PartnerId,
    },
    /// The vote's signature does not verify.
    #[error("vote by {voter} does not verify: {source}")]
    BadSignature {
        /// The voter.
        voter: PartnerId,
        /// Why.
        source: SignatureError,
    },
}

/// What [`CertBuilder::add`] did with a valid vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    /// A new partner's vote was added.
    Added,
    /// This partner had already voted; the first vote is kept.
    Duplicate,
}

/// Collects votes for one order on the redeemer's side and makes the canonical certificate.
///
/// Every vote is verified as it is added, so a peer's bad vote is named at once and never makes the
/// redeemer append a certificate that other nodes would reject.
#[derive(Debug, Clone)]
pub struct CertBuilder<'g> {
    genesis: &'g Genesis,
    order: SignedOrder,
    order_id: Hash,
    votes: BTreeMap<PartnerId, Signature>,
}

impl<'g> CertBuilder<'g> {
    /// Starts collecting votes for `order`, which must be well formed and carry a valid member
    /// signature (the same checks [`verify_cert`] runs on the order).
    pub fn new(genesis: &'g Genesis, order: SignedOrder) -> Result<CertBuilder<'g>, CertError> {
        check_order(genesis, &order.order)?;
        order
            .verify_signature()
            .map_err(|source| CertError::MemberSignature {
                member: order.order.member,
                source,
            })?;
        let order_id = order.order.id();
        Ok(CertBuilder {
            genesis,
            order,
            order_id,
            votes: BTreeMap::new(),
        })
    }

    /// The id of the order being certified.
    pub fn order_id(&self) -> Hash {
        self.order_id
    }

    /// The order being certified.
    pub fn order(&self) -> &SignedOrder {
        &self.order
    }

    /// The coalition the certificate is for.
    pub fn genesis(&self) -> &'g Genesis {
        self.genesis
    }

    /// Adds a vote after checking it is for this order, from a partner, and correctly signed. A
    /// second vote from the same partner is ignored.
    pub fn add(&mut self, vote: &Vote) -> Result<AddOutcome, AddVoteError> {
        if vote.order_id != self.order_id {
            return Err(AddVoteError::WrongOrder {
                voter: vote.partner,
                expected: self.order_id,
                found: vote.order_id,
            });
        }
        if !self.genesis.is_partner(&vote.partner) {
            return Err(AddVoteError::NotAPartner {
                voter: vote.partner,
            });
        }
        if self.votes.contains_key(&vote.partner) {
            return Ok(AddOutcome::Duplicate);
        }
        vote.verify_signature()
            .map_err(|source| AddVoteError::BadSignature {
                voter: vote.partner,
                source,
            })?;
        self.votes.insert(vote.partner, vote.signature);
        Ok(AddOutcome::Added)
    }

    /// The valid votes collected so far, one per partner.
    pub fn votes(&self) -> impl Iterator<Item = Vote> + '_ {
        self.votes.iter().map(|(partner, signature)| Vote {
            order_id: self.order_id,
            partner: *partner,
            signature: *signature,
        })
    }

    /// Distinct valid votes so far.
    pub fn count(&self) -> usize {
        self.votes.len()
    }

    /// Whether enough votes are in to [`finish`](Self::finish).
    pub fn has_quorum(&self) -> bool {
        self.votes.len() >= self.genesis.quorum()
    }

    /// The certificate with every vote collected, sorted by partner id; [`CertError::TooFewVotes`]
    /// before the quorum is reached.
    pub fn finish(self) -> Result<Verified<RedeemCert>, CertError> {
        if !self.has_quorum() {
            return Err(CertError::TooFewVotes {
                got: self.votes.len(),
                needed: self.genesis.quorum(),
            });
        }
        let votes = self
            .votes
            .into_iter()
            .map(|(partner, signature)| VoteSig { partner, signature })
            .collect();
        // Every part was verified on the way in; the map keeps the votes sorted and distinct.
        Ok(Verified::new_unchecked(RedeemCert {
            order: self.order,
            votes,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::test_util::{test_genesis, test_order};

    #[test]
    fn builder_makes_a_canonical_cert() {
        let (g, keys) = test_genesis(4);
        let m = Keypair::generate();
        let so = test_order(g.partners[0].id, &m, vec![(Hash([1; 32]), 5)], 10);
        let mut b = CertBuilder::new(&g, so.clone()).unwrap();
        let id = b.order_id();
        // Added in reverse key order; the certificate comes out sorted.
        let mut sorted: Vec<&Keypair> = keys.iter().collect();
        sorted.sort_by_key(|k| k.public());
        assert_eq!(b.add(&Vote::sign(id, sorted[3])), Ok(AddOutcome::Added));
        assert_eq!(b.add(&Vote::sign(id, sorted[3])), Ok(AddOutcome::Duplicate));
        assert!(matches!(
            b.add(&Vote::sign(Hash([9; 32]), sorted[2])),
            Err(AddVoteError::WrongOrder { .. })
        ));
        assert!(matches!(
            b.add(&Vote::sign(id, &m)),
            Err(AddVoteError::NotAPartner { .. })
        ));
        let mut forged = Vote::sign(id, sorted[1]);
        forged.signature.0[0] ^= 1;
        assert!(matches!(
            b.add(&forged),
            Err(AddVoteError::BadSignature { .. })
        ));
        assert_eq!(b.add(&Vote::sign(id, sorted[1])), Ok(AddOutcome::Added));
        assert!(!b.has_quorum());
        assert!(matches!(
            b.clone().finish(),
            Err(CertError::TooFewVotes { got: 2, needed: 3 })
        ));
        assert_eq!(b.add(&Vote::sign(id, sorted[0])), Ok(AddOutcome::Added));
        let cert = b.finish().unwrap().into_inner();
        assert_eq!(cert.order, so);
        assert!(verify_cert(&g, &cert).is_ok());
        let mut swapped = cert;
        swapped.votes.swap(0, 1);
        assert_eq!(
            verify_cert(&g, &swapped),
            Err(CertError::VotesUnsorted { index: 1 })
        );
    }
}
