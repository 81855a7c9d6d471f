//! Gossipsub topic names, versioned so that a future incompatible wire format gets its own topics and
//! old and new nodes never misread each other's messages.

use libp2p::gossipsub::{IdentTopic, TopicHash};

/// Builds `/coalition/<wire version>/<name>` at compile time.
macro_rules! versioned {
    ($name:literal) => {
        concat!("/coalition/1/", $name)
    };
}

/// New log entries, as their authors append them (`Gossip::Entry`).
pub const ENTRIES: &str = versioned!("entries");
/// Log heads (size and last entry id per partner), for anti-entropy (`Gossip::Heads`).
pub const HEADS: &str = versioned!("heads");
/// Partner signatures over epoch checkpoints (`Gossip::CheckpointSig`).
pub const CHECKPOINTS: &str = versioned!("checkpoints");

/// One of the coalition's gossip topics.
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

    /// The gossipsub topic (identity-hashed: the hash is the name).
    pub fn ident(self) -> IdentTopic {
        IdentTopic::new(self.name())
    }

    /// The gossipsub topic hash, as carried by received messages.
    pub fn hash(self) -> TopicHash {
        self.ident().hash()
    }

    /// The topic a received message was published on, if it is one of ours.
    pub fn from_hash(hash: &TopicHash) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == hash.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_versioned_and_round_trip() {
        assert_eq!(ENTRIES, "/coalition/1/entries");
        assert_eq!(HEADS, "/coalition/1/heads");
        assert_eq!(CHECKPOINTS, "/coalition/1/checkpoints");
        for t in Topic::ALL {
            assert_eq!(Topic::from_hash(&t.hash()), Some(t));
        }
        assert_eq!(
            Topic::from_hash(&IdentTopic::new("/coalition/2/entries").hash()),
            None
        );
    }
}
