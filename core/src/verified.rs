//! Proof in the type that a value passed its checks.

/// A value that has been checked against the genesis and the rules. Only the checking functions of
/// this crate construct it (through [`Verified::new_unchecked`], which is `pub(crate)`), so the ledger
/// can take `Verified<T>` and an unchecked value cannot reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T>(T);

impl<T> Verified<T> {
    /// Wraps a value that the caller has just verified. Crate-private on purpose.
    pub(crate) fn new_unchecked(value: T) -> Verified<T> {
        Verified(value)
    }
    /// The checked value.
    pub fn inner(&self) -> &T {
        &self.0
    }
    /// Unwraps, giving up the proof.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
