//! The replication driver shared by the node and the auditor ([`Ledger`]).
//!
//! [`Ledger::ingest`] takes an entry in any order: it checks the log layer ([`crate::log`]), applies
//! the state rules ([`crate::ledger::apply`]) and commits through a [`LedgerStore`]. An entry that
//! waits for something (an earlier entry of its log, a lot, the member's previous spend) is parked in
//! a bounded buffer, with every later entry of its log, and retried whenever something is committed.
//! Invalid entries change nothing. The node plugs its RocksDB store in as the [`LedgerStore`]; the
//! auditor and the tests use [`crate::memory::MemoryLedger`].

use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::ledger::{apply, ApplyError, Missing, RuleError};
use crate::log::{verify_entry_presigned, EntryError, Equivocation, SignatureChecked};
use crate::record::{PartnerId, SignedEntry};
use crate::state::{LedgerStore, LedgerView};
use crate::verified::Verified;
use std::collections::BTreeMap;
use std::ops::Bound;

/// Default bound of the pending buffer.
pub const DEFAULT_MAX_PENDING: usize = 10_000;

/// A parked entry that was invalid once its turn came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Its log.
    pub partner: PartnerId,
    /// Its position.
    pub seq: u64,
    /// Its id.
    pub entry_id: Hash,
    /// The rule it breaks.
    pub reason: RuleError,
}

/// What [`Ledger::ingest`] did with an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Applied and committed; so were the parked entries in `released` (ids, in commit order), which
    /// it unblocked. Parked entries found invalid on their turn were dropped and are in `rejected`.
    Applied {
        /// Parked entries committed after this one.
        released: Vec<Hash>,
        /// Parked entries dropped as invalid.
        rejected: Vec<Rejected>,
    },
    /// Parked until what is missing arrives (fetch it).
    Pending(Missing),
    /// Already held: same id at this position.
    Duplicate,
    /// The author signed a different entry for this position: the fraud proof was stored and the
    /// author's entries are refused from now on.
    Equivocation(Box<Equivocation>),
}

/// Why [`Ledger::ingest`] refused an entry. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum IngestError<E: std::error::Error + 'static> {
    /// The entry breaks a log rule (author, signature, position).
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// The entry breaks a ledger rule.
    #[error("entry {partner}/{seq}: {source}")]
    Rule {
        /// Its log.
        partner: PartnerId,
        /// Its position.
        seq: u64,
        /// The rule (boxed: it is large and errors travel by value).
        source: Box<RuleError>,
    },
    /// The author has equivocated; its entries are refused.
    #[error("partner {partner} has equivocated; its entries are refused")]
    Banned {
        /// The author.
        partner: PartnerId,
    },
    /// The pending buffer is full; fetch in log order and retry later.
    #[error("pending buffer full ({limit} entries)")]
    PendingFull {
        /// The bound.
        limit: usize,
    },
    /// The store failed.
    #[error("ledger store failed: {0}")]
    Store(#[source] E),
}

impl<E: std::error::Error + 'static> IngestError<E> {
    /// Whether the sender is to blame (bad data: score the peer down), as opposed to our own limits or
    /// failures (log and alert).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            IngestError::Entry(_) | IngestError::Rule { .. } | IngestError::Banned { .. }
        )
    }
}

/// What [`Ledger::precheck`] found.
// Inline variants: returned once and matched at once.
#[allow(clippy::large_enum_variant)]
enum Precheck {
    /// Nothing more to do.
    Done(IngestOutcome),
    /// Go on; a different entry stored at the same position, if any.
    Held(Option<SignedEntry>),
}

#[derive(Debug, Clone)]
struct Parked {
    entry: Verified<SignedEntry>,
    missing: Missing,
}

/// The replication driver: validates entries arriving in any order and commits them to a
/// [`LedgerStore`], parking those that wait.
#[derive(Debug, Clone)]
pub struct Ledger<S: LedgerStore> {
    genesis: Genesis,
    store: S,
    pending: BTreeMap<(PartnerId, u64), Parked>,
    max_pending: usize,
}

/// What [`Ledger::drain`] did: entries committed, entries dropped as invalid.
type Drained = (Vec<Hash>, Vec<Rejected>);

type IngestResult<S> = Result<IngestOutcome, IngestError<<S as LedgerView>::Error>>;

impl<S: LedgerStore> Ledger<S> {
    /// A driver over `store` for the coalition `genesis` (already validated), parking at most
    /// `max_pending` entries.
    pub fn new(genesis: Genesis, store: S, max_pending: usize) -> Ledger<S> {
        Ledger {
            genesis,
            store,
            pending: BTreeMap::new(),
            max_pending,
        }
    }
    /// The coalition.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }
    /// The store, to read.
    pub fn store(&self) -> &S {
        &self.store
    }
    /// The store, to write what is not the ledger's (a node's votes, say). Commits of entries go
    /// through [`Ledger::ingest`], never here.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }
    /// The store back; parked entries are dropped.
    pub fn into_store(self) -> S {
        self.store
    }
    /// Entries parked.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }
    /// For each log with parked entries, the first parked position and what it waits for: what to
    /// fetch.
    pub fn pending_missing(&self) -> Vec<(PartnerId, u64, Missing)> {
        self.pending_partners()
            .into_iter()
            .filter_map(|partner| {
                let first = self
                    .pending
                    .range((partner, 0)..=(partner, u64::MAX))
                    .next();
                first.map(|((p, seq), parked)| (*p, *seq, parked.missing.clone()))
            })
            .collect()
    }

    /// The earliest epoch of any parked entry: settlement of that epoch or a later one must wait
    /// until the entry applies.
    pub fn pending_min_epoch(&self) -> Option<crate::record::Epoch> {
        self.pending.values().map(|p| p.entry.entry.epoch).min()
    }

    /// Takes one entry from anywhere (a peer, a file) and applies it if it can.
    pub fn ingest(&mut self, entry: SignedEntry) -> IngestResult<S> {
        let held = match self.precheck(&entry)? {
            Precheck::Done(done) => return Ok(done),
            Precheck::Held(held) => held,
        };
        let checked = SignatureChecked::verify(entry)?;
        self.place(checked, held)
    }

    /// [`ingest`](Self::ingest) for an entry whose signature was verified already (in a batch).
    pub fn ingest_presigned(&mut self, entry: SignatureChecked) -> IngestResult<S> {
        let held = match self.precheck(entry.entry())? {
            Precheck::Done(done) => return Ok(done),
            Precheck::Held(held) => held,
        };
        self.place(entry, held)
    }

    /// Removes the entry parked at `partner`/`seq`, if any, and returns it. For a log's own author
    /// whose new entry has to wait: it reports the entry as not appended, so the position stays free,
    /// and a parked copy would make its next entry at that position look like an equivocation.
    pub fn unpark(&mut self, partner: &PartnerId, seq: u64) -> Option<SignedEntry> {
        self.pending
            .remove(&(*partner, seq))
            .map(|p| p.entry.into_inner())
    }

    /// The cheap checks before any signature: a partner's entry, not banned, not already held.
    /// Otherwise, the different entry stored at its position, if any, for [`place`](Self::place)
    /// (read once here rather than twice).
    fn precheck(&self, entry: &SignedEntry) -> Result<Precheck, IngestError<S::Error>> {
        let (partner, seq) = (entry.entry.partner, entry.entry.seq);
        if !self.genesis.is_partner(&partner) {
            return Err(EntryError::NotAPartner { partner }.into());
        }
        if self
            .store
            .equivocation(&partner)
            .map_err(IngestError::Store)?
            .is_some()
        {
            return Err(IngestError::Banned { partner });
        }
        let id = entry.id();
        let held = self
            .store
            .entry(&partner, seq)
            .map_err(IngestError::Store)?;
        if held.as_ref().map(SignedEntry::id) == Some(id) {
            return Ok(Precheck::Done(IngestOutcome::Duplicate));
        }
        match self.pending.get(&(partner, seq)) {
            Some(parked) if parked.entry.id() == id => Ok(Precheck::Done(IngestOutcome::Pending(
                parked.missing.clone(),
            ))),
            _ => Ok(Precheck::Held(held)),
        }
    }

    /// Places an entry that passed [`precheck`](Self::precheck), which found `stored` at its
    /// position (a different entry, or none).
    fn place(&mut self, checked: SignatureChecked, stored: Option<SignedEntry>) -> IngestResult<S> {
        let (partner, seq) = (checked.entry().entry.partner, checked.entry().entry.seq);
        let held = match stored {
            Some(stored) => Some(stored),
            None => self
                .pending
                .get(&(partner, seq))
                .map(|p| p.entry.inner().clone()),
        };
        if let Some(first) = held {
            // Both signatures are verified and the ids differ (precheck caught equal ids).
            let proof = Equivocation {
                partner,
                seq,
                first,
                second: checked.into_inner(),
            };
            self.store
                .record_equivocation(&proof)
                .map_err(IngestError::Store)?;
            self.pending.retain(|(p, _), _| *p != partner);
            return Ok(IngestOutcome::Equivocation(Box::new(proof)));
        }
        let entry = verify_entry_presigned(&self.genesis, checked)?;
        match apply(&self.genesis, &self.store, &entry) {
            Ok(changes) => {
                self.store
                    .commit(&entry, &changes)
                    .map_err(IngestError::Store)?;
                let (released, rejected) = self.drain()?;
                Ok(IngestOutcome::Applied { released, rejected })
            }
            Err(ApplyError::Waiting(missing)) => {
                if self.pending.len() >= self.max_pending {
                    return Err(IngestError::PendingFull {
                        limit: self.max_pending,
                    });
                }
                self.pending.insert(
                    (partner, seq),
                    Parked {
                        entry,
                        missing: missing.clone(),
                    },
                );
                Ok(IngestOutcome::Pending(missing))
            }
            Err(ApplyError::Invalid(RuleError::Log(e))) => Err(IngestError::Entry(e)),
            Err(ApplyError::Invalid(source)) => Err(IngestError::Rule {
                partner,
                seq,
                source: Box::new(source),
            }),
            Err(ApplyError::Store(e)) => Err(IngestError::Store(e)),
        }
    }

    /// The logs with parked entries. Found by skipping from log to log, since a log can have many
    /// entries parked behind its first one and this runs after every commit.
    fn pending_partners(&self) -> Vec<PartnerId> {
        let mut partners = Vec::new();
        let mut next = self.pending.keys().next().map(|(p, _)| *p);
        while let Some(partner) = next {
            partners.push(partner);
            next = self
                .pending
                .range((Bound::Excluded((partner, u64::MAX)), Bound::Unbounded))
                .next()
                .map(|((p, _), _)| *p);
        }
        partners
    }

    /// Retries the parked entry at the head of each log until nothing more applies.
    fn drain(&mut self) -> Result<Drained, IngestError<S::Error>> {
        let (mut released, mut rejected) = (Vec::new(), Vec::new());
        loop {
            let mut progress = false;
            for partner in self.pending_partners() {
                let next = self
                    .store
                    .log_head(&partner)
                    .map_err(IngestError::Store)?
                    .size;
                let Some(parked) = self.pending.remove(&(partner, next)) else {
                    continue;
                };
                match apply(&self.genesis, &self.store, &parked.entry) {
                    Ok(changes) => {
                        self.store
                            .commit(&parked.entry, &changes)
                            .map_err(IngestError::Store)?;
                        released.push(changes.entry_id);
                        progress = true;
                    }
                    Err(ApplyError::Waiting(missing)) => {
                        self.pending
                            .insert((partner, next), Parked { missing, ..parked });
                    }
                    Err(ApplyError::Invalid(reason)) => {
                        let entry_id = parked.entry.id();
                        rejected.push(Rejected {
                            partner,
                            seq: next,
                            entry_id,
                            reason,
                        });
                    }
                    Err(ApplyError::Store(e)) => {
                        self.pending.insert((partner, next), parked);
                        return Err(IngestError::Store(e));
                    }
                }
            }
            if !progress {
                return Ok((released, rejected));
            }
        }
    }
}
