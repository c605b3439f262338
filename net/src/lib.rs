//! placeholder
pub mod config;
pub mod jobspec;
