//! net: drover's transports and parsers: the HTTP API, the RPC port (client and server
//! protocols), server-to-server connections, the gossip pool, job specs and agent config.
pub mod client;
pub mod config;
pub mod error;
pub mod gossip;
pub mod http;
pub mod jobspec;
pub mod peer;
pub mod rpc;
