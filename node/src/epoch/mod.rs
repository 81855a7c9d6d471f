//! Epochs (DESIGN.md §5), as three jobs: closing our own log's epochs on the genesis clock
//! ([`close`]), sealing checkpoints once every partner has closed one ([`seal`]), and the anchor
//! file that pins each sealed checkpoint ([`anchor`]). Closing and sealing are separate tasks, so
//! a slow partner delays a seal but never our own close.

pub mod anchor;
pub mod close;
pub mod seal;
