//! placeholder
pub mod client;
pub mod config;
pub mod error;
pub mod gossip;
pub mod http;
pub mod jobspec;
pub mod rpc;
