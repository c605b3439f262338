//! Tests that run real `drover` processes on 127.0.0.1, each with its own temporary data dir.
//! Build the binaries first: `cargo build --bins`.

mod ha_harness;
mod harness;

mod alloc_wake;
mod bad_input;
mod blocking;
mod durability;
mod ha;
mod ha_more;
mod heartbeat;
mod loadgen;
mod node_lifecycle;
mod periodic;
mod placement;
mod preemption;
mod python_nomad;
mod raft_write_test;
mod reschedule;
mod scheduler_config;
