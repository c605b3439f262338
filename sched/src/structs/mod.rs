//! Domain types shared by every crate: jobs, nodes, allocations, evaluations and plans.
//!
//! These are drover's internal forms. They carry rkyv derives so `storage` can archive them
//! and the client protocol can frame them; they carry no JSON names (that is `net`'s job).

mod alloc;
mod eval;
mod job;
mod node;
mod plan;
mod resources;

pub use alloc::*;
pub use eval::*;
pub use job::*;
pub use node::*;
pub use plan::*;
pub use resources::*;

/// The namespace a request lands in when it names none.
pub const DEFAULT_NAMESPACE: &str = "default";
/// The node pool a job or node belongs to when it names none.
pub const DEFAULT_NODE_POOL: &str = "default";

/// Returns a fresh random identifier in Nomad's UUID text form.
pub fn new_id(rng: &mut impl rand::RngCore) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = |s: &[u8]| s.iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "{}-{}-{}-{}-{}",
        h(&b[0..4]),
        h(&b[4..6]),
        h(&b[6..8]),
        h(&b[8..10]),
        h(&b[10..16])
    )
}
