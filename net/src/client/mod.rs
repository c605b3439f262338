//! The client side of the client protocol, and simulated client nodes built on it.
//!
//! Start at `ClientConn` (conn.rs); `sim.rs` drives fleets of fake nodes for the dev agent and
//! the load generator.

mod conn;
pub mod sim;

pub use conn::{ClientConn, CALLS_PENDING_MAX, CALL_TIMEOUT, CONNECT_TIMEOUT};
pub use sim::{node_id_for, run_sim_nodes, SimNodeSpec, SimStats};
