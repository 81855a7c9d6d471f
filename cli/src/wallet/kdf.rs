//! Key derivation: the argon2id cost a wallet records ([`KdfCost`]), the bounds a file's cost must
//! keep, and the 32-byte key derived from the passphrase and salt.

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

/// The `kdf.algorithm` field.
pub(super) const ALGORITHM: &str = "argon2id";
/// The `kdf.version` field: Argon2 version 1.3.
pub(super) const VERSION: u32 = 0x13;
/// Bytes of salt.
pub(super) const SALT_LEN: usize = 16;
/// Bytes of derived key.
const KEY_LEN: usize = 32;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

/// A cost outside the bounds this build accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KdfCostError {
    /// Too few or too many lanes.
    #[error("kdf parallelism {found} is outside 1..={max}")]
    Parallelism {
        /// The lanes asked for.
        found: u32,
        /// The most accepted.
        max: u32,
    },
    /// Too few or too many passes.
    #[error("kdf iterations {found} is outside 1..={max}")]
    Iterations {
        /// The passes asked for.
        found: u32,
        /// The most accepted.
        max: u32,
    },
    /// Too little memory for the lanes, or too much.
    #[error("kdf memory {found} KiB is outside {min}..={max}")]
    Memory {
        /// The memory asked for, KiB.
        found: u32,
        /// The least accepted for the lanes asked for (8 KiB a lane).
        min: u32,
        /// The most accepted.
        max: u32,
    },
}

/// Argon2 refused to derive the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KdfError {
    /// The parameters are not ones Argon2 accepts.
    #[error("kdf parameters: {0}")]
    Params(argon2::Error),
    /// The derivation itself failed.
    #[error("key derivation failed: {0}")]
    Derive(argon2::Error),
}

impl KdfCost {
    /// What new wallets use: 64 MiB, 3 passes, 1 lane (RFC 9106's second recommended option, with
    /// one lane because this build computes lanes one after another). About a quarter of a second.
    pub const DEFAULT: KdfCost = KdfCost {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    /// Cheap parameters so the tests that derive many keys stay fast; the format is the same.
    #[cfg(test)]
    pub(super) const CHEAP: KdfCost = KdfCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    /// Largest values accepted from a file, so a crafted wallet cannot make us allocate or loop
    /// without bound.
    const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    const MAX_ITERATIONS: u32 = 100;
    const MAX_PARALLELISM: u32 = 16;

    /// Whether these parameters are within the bounds above.
    pub(super) fn check(&self) -> Result<(), KdfCostError> {
        let min_memory = self.parallelism.saturating_mul(8);
        if !(1..=Self::MAX_PARALLELISM).contains(&self.parallelism) {
            return Err(KdfCostError::Parallelism {
                found: self.parallelism,
                max: Self::MAX_PARALLELISM,
            });
        }
        if !(1..=Self::MAX_ITERATIONS).contains(&self.iterations) {
            return Err(KdfCostError::Iterations {
                found: self.iterations,
                max: Self::MAX_ITERATIONS,
            });
        }
        if !(min_memory..=Self::MAX_MEMORY_KIB).contains(&self.memory_kib) {
            return Err(KdfCostError::Memory {
                found: self.memory_kib,
                min: min_memory,
                max: Self::MAX_MEMORY_KIB,
            });
        }
        Ok(())
    }
}

/// The key that seals a wallet's secret: `argon2id(passphrase, salt)` at `cost`.
pub(super) fn derive_key(
    passphrase: &[u8],
    salt: &[u8],
    cost: &KdfCost,
) -> Result<Zeroizing<[u8; KEY_LEN]>, KdfError> {
    let params = Params::new(
        cost.memory_kib,
        cost.iterations,
        cost.parallelism,
        Some(KEY_LEN),
    )
    .map_err(KdfError::Params)?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, &mut key[..])
        .map_err(KdfError::Derive)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_kdf_parameters_are_refused() {
        for (m, t, p) in [
            (0u32, 1u32, 1u32),
            (64, 0, 1),
            (64, 1, 0),
            (u32::MAX, 1, 1),
            (64, 1_000_000, 1),
        ] {
            let cost = KdfCost {
                memory_kib: m,
                iterations: t,
                parallelism: p,
            };
            assert!(cost.check().is_err(), "{cost:?} accepted");
        }
        assert!(KdfCost::DEFAULT.check().is_ok());
        assert!(KdfCost::CHEAP.check().is_ok());
    }

    #[test]
    fn refusals_say_which_bound() {
        let text = |m, t, p| {
            KdfCost {
                memory_kib: m,
                iterations: t,
                parallelism: p,
            }
            .check()
            .err()
            .map(|e| e.to_string())
        };
        assert_eq!(
            text(64, 1, 0).as_deref(),
            Some("kdf parallelism 0 is outside 1..=16")
        );
        assert_eq!(
            text(64, 1000, 1).as_deref(),
            Some("kdf iterations 1000 is outside 1..=100")
        );
        assert_eq!(
            text(8, 1, 2).as_deref(),
            Some("kdf memory 8 KiB is outside 16..=4194304")
        );
    }

    #[test]
    fn the_key_depends_on_passphrase_salt_and_cost() {
        let salt = [7u8; SALT_LEN];
        let key = |pass: &[u8], salt: &[u8], cost| derive_key(pass, salt, &cost).map(|k| *k).ok();
        let base = key(b"pw", &salt, KdfCost::CHEAP);
        assert!(base.is_some());
        assert_eq!(base, key(b"pw", &salt, KdfCost::CHEAP));
        assert_ne!(base, key(b"pv", &salt, KdfCost::CHEAP));
        assert_ne!(base, key(b"pw", &[8u8; SALT_LEN], KdfCost::CHEAP));
        let dearer = KdfCost {
            iterations: 2,
            ..KdfCost::CHEAP
        };
        assert_ne!(base, key(b"pw", &salt, dearer));
    }
}
