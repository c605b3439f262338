//! placeholder
pub mod config;
pub mod jobspec;
pub mod rpc;
pub mod client;
pub mod http;
pub mod error;
