//! The parts of the `coalition` command that read files from outside and are worth reaching without
//! the binary: the member wallet format and the careful file writes it uses. The fuzzers decode wallet
//! files through this library; everything else of the CLI lives in the binary (`main.rs`).

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod files;
pub mod wallet;
