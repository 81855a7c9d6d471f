//! The gossipsub side of the protocol's topics ([`coalition_core::wire::Topic`]): their libp2p
//! identities. Topic names are identity-hashed, so a received message's hash is its topic's name.

pub use coalition_core::wire::{Topic, CHECKPOINTS, ENTRIES, HEADS};
use libp2p::gossipsub::{IdentTopic, TopicHash};

/// A protocol topic as gossipsub knows it.
pub trait GossipTopic {
    /// The gossipsub topic.
    fn ident(self) -> IdentTopic;
    /// The gossipsub topic hash, as carried by received messages.
    fn hash(self) -> TopicHash;
}

impl GossipTopic for Topic {
    fn ident(self) -> IdentTopic {
        IdentTopic::new(self.name())
    }

    fn hash(self) -> TopicHash {
        self.ident().hash()
    }
}

/// The topic a received message was published on, if it is one of ours.
pub fn from_hash(hash: &TopicHash) -> Option<Topic> {
    Topic::from_name(hash.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_versioned_and_round_trip() {
        assert_eq!(ENTRIES, "/coalition/3/entries");
        assert_eq!(HEADS, "/coalition/3/heads");
        assert_eq!(CHECKPOINTS, "/coalition/3/checkpoints");
        for t in Topic::ALL {
            assert_eq!(from_hash(&t.hash()), Some(t));
        }
        assert_eq!(
            from_hash(&IdentTopic::new("/coalition/1/entries").hash()),
            None
        );
    }
}
