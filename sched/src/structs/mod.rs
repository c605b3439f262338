//! Domain types shared by every crate: jobs, nodes, allocations, evaluations and plans.
//!
//! These are drover's internal forms. They carry rkyv derives so `storage` can archive them
//! and the client protocol can frame them; they carry no JSON names (that is `net`'s job).

mod alloc;
mod eval;
mod id_string;
mod job;
mod node;
mod plan;
mod rare;
mod resources;

pub use alloc::*;
pub use compact_str::CompactString;
pub use eval::*;
pub use id_string::IdString;
pub use job::*;
pub use node::*;
pub use plan::*;
pub use rare::{AsPlainString, RareString, RareVec};
pub use resources::*;

/// The namespace a request lands in when it names none.
pub const DEFAULT_NAMESPACE: &str = "default";
/// The node pool a job or node belongs to when it names none.
pub const DEFAULT_NODE_POOL: &str = "default";

/// Returns a fresh random identifier in Nomad's UUID text form (version 4).
pub fn new_id(rng: &mut impl rand::RngCore) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    uuid_text(b, 0x40)
}

/// Returns a fresh allocation identifier: a version 7 UUID (RFC 9562), whose first 48 bits
/// are `now_unix_ns` in milliseconds and whose other 74 free bits are random.
///
/// The text form sorts by time, so allocations created together get neighbouring keys in
/// the state's ordered maps. A batch of new allocations then fills a few new leaves at one
/// end of the map by id instead of landing in hundreds of random leaves, each of which a
/// persistent map must copy when an older version of the state is still being read (as
/// the shards' read view always is). Clients see an ordinary UUID.
pub fn new_time_ordered_id(now_unix_ns: i64, rng: &mut impl rand::RngCore) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    let ms = (now_unix_ns.max(0) / 1_000_000) as u64;
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    uuid_text(b, 0x70)
}

/// Writes 16 bytes as `8-4-4-4-12` lowercase hex, with `version` in the high nibble of the
/// seventh byte and the RFC 9562 variant in the ninth.
fn uuid_text(mut b: [u8; 16], version: u8) -> String {
    b[6] = (b[6] & 0x0f) | version;
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
    use super::{new_id, new_time_ordered_id};
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

    #[test]
    fn allocation_ids_are_version_7_and_sort_by_their_time() {
        let mut rng = StdRng::seed_from_u64(7);
        let t = 1_764_000_000_123_456_789i64;
        let id = new_time_ordered_id(t, &mut rng);
        assert_eq!(id.len(), 36);
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            vec![8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('7'), "{id}");
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{id}");
        // The first 48 bits are the time in milliseconds.
        let ms = u64::from_str_radix(&format!("{}{}", parts[0], parts[1]), 16).unwrap();
        assert_eq!(ms, (t / 1_000_000) as u64);
        // Ids a millisecond apart sort as their times, whatever their random bits.
        let mut earlier: Vec<String> = (0..100).map(|_| new_time_ordered_id(t, &mut rng)).collect();
        let later: Vec<String> = (0..100)
            .map(|_| new_time_ordered_id(t + 1_000_000, &mut rng))
            .collect();
        assert!(earlier.iter().all(|e| later.iter().all(|l| e < l)));
        // Random bits differ between ids of the same millisecond.
        earlier.sort();
        earlier.dedup();
        assert_eq!(earlier.len(), 100);
    }
}
