//! Where time comes from ([`Clock`]): the system clock in a node and a wallet, a [`ManualClock`]
//! in tests, so that nothing reads the wall clock behind the code's back and a test of expiry or
//! epochs moves time instead of sleeping.
//!
//! The protocol rules themselves never read a clock: they take the time as an argument (the vote
//! rule's `now`, an epoch close's time). A clock is what the caller reads that argument from.

use crate::record::Timestamp;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A source of the current time, in whole seconds since the Unix epoch (UTC).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock that moves only when told to. Clones share one time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock standing at `time`.
    pub fn at(time: Timestamp) -> ManualClock {
        ManualClock(Arc::new(AtomicU64::new(time)))
    }
    /// Sets the time.
    pub fn set(&self, time: Timestamp) {
        self.0.store(time, Ordering::SeqCst);
    }
    /// Moves the time forward by `secs` (saturating).
    pub fn advance(&self, secs: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(secs))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.0.load(Ordering::SeqCst)
    }
}

/// A shared clock, as tasks hold it.
pub type SharedClock = Arc<dyn Clock>;

/// The system clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_when_told_and_clones_share_it() {
        let c = ManualClock::at(100);
        let d = c.clone();
        c.advance(5);
        assert_eq!(d.now(), 105);
        d.set(7);
        assert_eq!(c.now(), 7);
        c.set(u64::MAX);
        c.advance(1);
        assert_eq!(c.now(), u64::MAX);
        assert!(SystemClock.now() > 1_700_000_000);
    }
}
