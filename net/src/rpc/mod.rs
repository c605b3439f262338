//! The RPC port: framing of the client protocol and the server's accept loop.
//!
//! Start at `serve_rpc` (server.rs); `frame.rs` is the codec both sides share.

mod error;
pub mod frame;
mod server;
mod stop;

pub use error::RpcError;
pub use frame::{decode_body, encode_frame, frame_bytes, FrameDecoder};
pub(crate) use server::write_envelopes;
pub use server::{serve_rpc, CONNECTION_REQUESTS_IN_FLIGHT_MAX};
pub use stop::StopSignal;
