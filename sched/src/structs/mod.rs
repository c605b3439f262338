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
    // Written out by hand: this runs once per placement, and a `format!` per byte was a
    // noticeable share of placement cost.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::new_id;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn ids_have_uuid_v4_shape() {
        let id = new_id(&mut StdRng::seed_from_u64(1));
        assert_eq!(id.len(), 36);
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            vec![8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"));
        assert!(id
            .chars()
            .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
}
