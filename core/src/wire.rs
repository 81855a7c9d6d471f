//! The typed messages partners exchange, and their wire form.
//!
//! Gossip goes to every partner through gossipsub ([`Gossip`]); point-to-point questions go through
//! request-response ([`Request`] → [`Response`]). Every message is encoded with the protocol's one
//! canonical encoding ([`crate::encoding`]: version byte, size limit, no trailing bytes), and
//! decoding also enforces the item limits below, so a peer cannot make us hold more than we would
//! ever send. Enums here are versioned by position like the ledger's records: add variants at the end
//! only.
//!
//! This is protocol, not transport, so it lives in the pure core: the node's libp2p layer carries
//! these bytes, and the fuzzers decode them without pulling in the node.

use crate::checkpoint::CheckpointSig;
use crate::encoding::{self, DecodeError, EncodeError, MAX_ENCODED_LEN};
use crate::hash::Hash;
use crate::record::{PartnerId, SignedEntry, SignedOrder, Vote};
use crate::refusal::RefusalCode;
use crate::vote::VoteRefusal;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// The version of this wire format, in every topic and protocol name. Version 2: refusal codes
/// are an enum ([`RefusalCode`]) and checkpoint signatures are typed, where version 1 carried a
/// string and opaque bytes. Version 3: the ledger refuses a certificate appended after the epoch
/// following its order's, and voters may release a sequence number no certificate took
/// (`crate::cert_window`), with the refusal `order_too_late`; a node of version 2 would apply
/// certificates this one refuses. Nodes of different versions do not talk to each other at all,
/// rather than misread each other.
pub const WIRE_VERSION: u32 = 3;

/// Builds `/coalition/<wire version>/<name>` at compile time (the digit is [`WIRE_VERSION`]; the
/// `topics_carry_the_wire_version` test keeps them equal).
macro_rules! versioned {
    ($name:literal) => {
        concat!("/coalition/3/", $name)
    };
}

/// New log entries, as their authors append them (`Gossip::Entry`).
pub const ENTRIES: &str = versioned!("entries");
/// Log heads (size and last entry id per partner), for anti-entropy (`Gossip::Heads`).
pub const HEADS: &str = versioned!("heads");
/// Partner signatures over epoch checkpoints (`Gossip::CheckpointSig`).
pub const CHECKPOINTS: &str = versioned!("checkpoints");

/// One of the coalition's gossip topics, versioned so that a future incompatible wire format gets its
/// own topics and old and new nodes never misread each other's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// [`ENTRIES`].
    Entries,
    /// [`HEADS`].
    Heads,
    /// [`CHECKPOINTS`].
    Checkpoints,
}

impl Topic {
    /// Every topic; a node subscribes to all of them.
    pub const ALL: [Topic; 3] = [Topic::Entries, Topic::Heads, Topic::Checkpoints];

    /// The topic's wire name.
    pub fn name(self) -> &'static str {
        match self {
            Topic::Entries => ENTRIES,
            Topic::Heads => HEADS,
            Topic::Checkpoints => CHECKPOINTS,
        }
    }

    /// The topic with this wire name, if it is one of ours.
    pub fn from_name(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// Most entries in one [`Response::Range`]; a server answers at most this many whatever the request's
/// `limit`, and a client rejects a longer answer.
pub const MAX_RANGE_ENTRIES: usize = 1024;
/// Most heads in one [`Gossip::Heads`] or [`Response::Heads`] (one per partner, so ample).
pub const MAX_HEADS: usize = 1024;
/// Most votes in one [`Response::HeldVotes`].
pub const MAX_HELD_VOTES: usize = 1024;

/// A node's random name for one run of its process, sent in [`Request::Hello`]: two runs with one
/// partner key at once have two different names, which is how a partner notices them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InstanceId(pub [u8; 16]);

/// A vote a redeemer holds for an order it could not certify (yet): the voter's own signed vote
/// and the order it is for, so a voter that lost its copy can check and restore it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldVote {
    /// The order voted for.
    pub order: SignedOrder,
    /// The vote.
    pub vote: Vote,
}

/// How far a partner's log has grown: what anti-entropy compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadAnnouncement {
    /// Whose log.
    pub partner: PartnerId,
    /// Number of entries in it.
    pub size: u64,
    /// Id of its last entry ([`Hash::ZERO`] when empty).
    pub last: Hash,
}

/// A message broadcast to every partner. Each variant has its own topic ([`Gossip::topic`]).
// An entry is inline rather than boxed: a message is built or decoded once and moved, and the
// service matches on it directly.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Gossip {
    /// A new entry of its author's log.
    Entry(SignedEntry),
    /// The sender's view of log heads.
    Heads(Vec<HeadAnnouncement>),
    /// A partner's signature over its checkpoint of an epoch.
    CheckpointSig(CheckpointSig),
}

/// Why a partner declined to vote, in words a client can show and a code it can match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Stable machine-readable reason; [`RefusalCode::is_transient`] says whether to ask again.
    pub code: RefusalCode,
    /// Human-readable detail.
    pub message: String,
}

impl From<&VoteRefusal> for Refusal {
    fn from(r: &VoteRefusal) -> Refusal {
        Refusal {
            code: r.code(),
            message: r.to_string(),
        }
    }
}

/// A question to one partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Entries `from..from+limit` of `partner`'s log (answered with [`Response::Range`], at most
    /// [`MAX_RANGE_ENTRIES`] and fewer if they would not fit in one message).
    GetRange {
        /// Whose log.
        partner: PartnerId,
        /// First sequence number wanted.
        from: u64,
        /// How many wanted.
        limit: u32,
    },
    /// Asks for a vote on a member-signed order ([`Response::Vote`]).
    Vote {
        /// The order.
        order: SignedOrder,
    },
    /// Asks for the partner's view of every log head ([`Response::Heads`]).
    GetHeads,
    /// Asks for the checkpoint signatures the partner holds for `epoch`
    /// ([`Response::CheckpointSigs`]): how a node that missed the gossip completes a seal.
    GetCheckpointSigs {
        /// The epoch.
        epoch: u64,
    },
    /// Says which run of its process the sender is ([`Response::Hello`]); sent on connecting and
    /// then every few seconds, so a partner can tell when two runs use one key.
    Hello {
        /// The sender's run.
        instance: InstanceId,
    },
    /// Asks for the votes of `voter` that the partner holds for orders not certified
    /// ([`Response::HeldVotes`]): how a node that lost votes from its store learns them back.
    GetHeldVotes {
        /// Whose votes.
        voter: PartnerId,
    },
}

/// An answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Consecutive entries from the requested position (possibly fewer than asked, possibly none).
    Range {
        /// The entries, in sequence order.
        entries: Vec<SignedEntry>,
    },
    /// The vote, or why not.
    Vote(Result<Vote, Refusal>),
    /// Log heads.
    Heads(Vec<HeadAnnouncement>),
    /// The request could not be served (malformed, unsupported, internal failure, no answer in time).
    Error {
        /// What went wrong.
        message: String,
    },
    /// Checkpoint signatures of the epoch asked for.
    CheckpointSigs(Vec<CheckpointSig>),
    /// The answer to [`Request::Hello`].
    Hello {
        /// Whether another run with the sender's key is connected to the answering partner and
        /// said hello recently.
        live_elsewhere: bool,
    },
    /// The answer to [`Request::GetHeldVotes`].
    HeldVotes(Vec<HeldVote>),
}

/// Why bytes are not a valid message, or a message cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Not the canonical encoding of the expected type.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Too large to encode.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A list longer than the protocol allows.
    #[error("{what} holds {len} items, more than the limit of {max}")]
    TooMany {
        /// Which list.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A gossip message on a topic that is not its own.
    #[error("{kind} gossip arrived on topic {topic}")]
    WrongTopic {
        /// The message's kind.
        kind: &'static str,
        /// The topic it came on.
        topic: String,
    },
}

/// A message type with a wire form: canonical bytes plus item limits checked both ways.
pub trait WireMessage: Serialize + DeserializeOwned {
    /// Checks the protocol's item limits.
    fn check_bounds(&self) -> Result<(), MessageError>;

    /// The wire bytes, or why this message may not be sent.
    fn to_wire(&self) -> Result<Vec<u8>, MessageError> {
        self.check_bounds()?;
        Ok(encoding::try_encode(self)?)
    }

    /// Parses wire bytes, rejecting anything non-canonical or over the limits.
    fn from_wire(bytes: &[u8]) -> Result<Self, MessageError> {
        let value: Self = encoding::decode(bytes)?;
        value.check_bounds()?;
        Ok(value)
    }
}

fn at_most(what: &'static str, len: usize, max: usize) -> Result<(), MessageError> {
    if len > max {
        return Err(MessageError::TooMany { what, len, max });
    }
    Ok(())
}

impl Gossip {
    /// The topic this message is published on.
    pub fn topic(&self) -> Topic {
        match self {
            Gossip::Entry(_) => Topic::Entries,
            Gossip::Heads(_) => Topic::Heads,
            Gossip::CheckpointSig(_) => Topic::Checkpoints,
        }
    }

    /// Short name of the kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Gossip::Entry(_) => "entry",
            Gossip::Heads(_) => "heads",
            Gossip::CheckpointSig(_) => "checkpoint-sig",
        }
    }

    /// Parses a message received on `topic`, rejecting one that belongs to another topic.
    pub fn from_wire_on(bytes: &[u8], topic: Topic) -> Result<Gossip, MessageError> {
        let msg = Gossip::from_wire(bytes)?;
        if msg.topic() != topic {
            return Err(MessageError::WrongTopic {
                kind: msg.kind(),
                topic: topic.name().into(),
            });
        }
        Ok(msg)
    }
}

impl WireMessage for Gossip {
    fn check_bounds(&self) -> Result<(), MessageError> {
        match self {
            Gossip::Heads(heads) => at_most("heads", heads.len(), MAX_HEADS),
            Gossip::Entry(_) | Gossip::CheckpointSig(_) => Ok(()),
        }
    }
}

impl WireMessage for Request {
    fn check_bounds(&self) -> Result<(), MessageError> {
        Ok(())
    }
}

impl WireMessage for Response {
    fn check_bounds(&self) -> Result<(), MessageError> {
        match self {
            Response::Range { entries } => at_most("range", entries.len(), MAX_RANGE_ENTRIES),
            Response::Heads(heads) => at_most("heads", heads.len(), MAX_HEADS),
            Response::CheckpointSigs(sigs) => {
                at_most("checkpoint signatures", sigs.len(), MAX_HEADS)
            }
            Response::HeldVotes(votes) => at_most("held votes", votes.len(), MAX_HELD_VOTES),
            Response::Vote(_) | Response::Error { .. } | Response::Hello { .. } => Ok(()),
        }
    }
}

impl Response {
    /// Short name of the kind, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Response::Range { .. } => "range",
            Response::Vote(_) => "vote",
            Response::Heads(_) => "heads",
            Response::Error { .. } => "error",
            Response::CheckpointSigs(_) => "checkpoint-sigs",
            Response::Hello { .. } => "hello",
            Response::HeldVotes(_) => "held-votes",
        }
    }

    /// This response made sendable: a range or a head list is cut to the item limit and to what
    /// fits in one message (the requester asks again from where it ends); anything else that still
    /// cannot be encoded becomes [`Response::Error`].
    pub fn fit_to_limits(self) -> Response {
        let fitted = match self {
            Response::Range { entries } => Response::Range {
                entries: fit(entries, MAX_RANGE_ENTRIES),
            },
            Response::Heads(heads) => Response::Heads(fit(heads, MAX_HEADS)),
            Response::HeldVotes(votes) => Response::HeldVotes(fit(votes, MAX_HELD_VOTES)),
            other => other,
        };
        match fitted.to_wire() {
            Ok(_) => fitted,
            Err(e) => Response::Error {
                message: format!("response cannot be sent: {e}"),
            },
        }
    }
}

/// The longest prefix of `items`, at most `max` long, whose encoding fits in one message.
fn fit<T: Serialize>(mut items: Vec<T>, max: usize) -> Vec<T> {
    items.truncate(max);
    // Room for the version byte, the enum tag and the length prefix, with a margin.
    let mut budget = MAX_ENCODED_LEN.saturating_sub(64);
    let mut keep: usize = 0;
    for item in &items {
        // Each item's canonical form minus its own version byte is what it adds to the list.
        let size = match encoding::try_encode(item) {
            Ok(bytes) => bytes.len().saturating_sub(1),
            Err(_) => break,
        };
        if size > budget {
            break;
        }
        budget = budget.saturating_sub(size);
        keep = keep.saturating_add(1);
    }
    items.truncate(keep);
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::record::{Entry, EpochClose, Record};

    fn entry(seq: u64) -> SignedEntry {
        let key = Keypair::generate();
        Entry {
            partner: PartnerId(key.public()),
            seq,
            prev: Hash::ZERO,
            epoch: 0,
            time: 1,
            record: Record::EpochClose(EpochClose { epoch: 0 }),
        }
        .sign(&key)
    }

    fn checkpoint_sig() -> CheckpointSig {
        let key = Keypair::generate();
        let checkpoint = Hash([3; 32]);
        CheckpointSig {
            epoch: 4,
            checkpoint,
            partner: PartnerId(key.public()),
            signature: key.sign(&checkpoint),
        }
    }

    #[test]
    fn topics_carry_the_wire_version() {
        for topic in Topic::ALL {
            assert!(topic
                .name()
                .starts_with(&format!("/coalition/{WIRE_VERSION}/")));
        }
    }

    #[test]
    fn round_trips() {
        let msgs = [
            Gossip::Entry(entry(0)),
            Gossip::Heads(vec![HeadAnnouncement {
                partner: entry(0).entry.partner,
                size: 3,
                last: Hash([9; 32]),
            }]),
            Gossip::CheckpointSig(checkpoint_sig()),
        ];
        for m in msgs {
            let bytes = m.to_wire().unwrap();
            assert_eq!(Gossip::from_wire_on(&bytes, m.topic()).unwrap(), m);
        }
        let r = Response::Vote(Err(Refusal {
            code: RefusalCode::StaleSeq,
            message: "no".into(),
        }));
        assert_eq!(Response::from_wire(&r.to_wire().unwrap()).unwrap(), r);
        let q = Request::GetRange {
            partner: entry(0).entry.partner,
            from: 5,
            limit: 10,
        };
        assert_eq!(Request::from_wire(&q.to_wire().unwrap()).unwrap(), q);
        let hello = Request::Hello {
            instance: InstanceId([7; 16]),
        };
        assert_eq!(
            Request::from_wire(&hello.to_wire().unwrap()).unwrap(),
            hello
        );
    }

    #[test]
    fn wrong_topic_is_rejected() {
        let bytes = Gossip::CheckpointSig(checkpoint_sig()).to_wire().unwrap();
        assert!(matches!(
            Gossip::from_wire_on(&bytes, Topic::Entries),
            Err(MessageError::WrongTopic { .. })
        ));
    }

    #[test]
    fn too_many_items_are_rejected_both_ways() {
        let one = entry(0);
        let long = Response::Range {
            entries: vec![one; MAX_RANGE_ENTRIES + 1],
        };
        assert!(matches!(long.to_wire(), Err(MessageError::TooMany { .. })));
        // A peer that encodes it anyway is refused on decode.
        let bytes = encoding::encode(&long);
        assert!(matches!(
            Response::from_wire(&bytes),
            Err(MessageError::TooMany { .. })
        ));
        // The server side trims instead of failing.
        match long.fit_to_limits() {
            Response::Range { entries } => assert_eq!(entries.len(), MAX_RANGE_ENTRIES),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn oversized_range_is_trimmed_to_fit() {
        // Items of ~100 KiB each: only about ten fit in one message.
        let items = vec![vec![7u8; 100 * 1024]; 30];
        let kept = fit(items, MAX_RANGE_ENTRIES);
        assert!(!kept.is_empty() && kept.len() < 30);
        assert!(encoding::try_encode(&kept).is_ok());
    }
}
