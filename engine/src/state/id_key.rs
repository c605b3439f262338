//! Keys for allocation and evaluation ids in the state's maps.

use std::fmt;

/// An allocation or evaluation id as a map key. The servers generate these ids as lowercase
/// UUIDs, which are kept as two integers: stored inline, compared without touching the heap,
/// and ordered as their text is. Any other text is kept as text and sorts after every UUID,
/// so the key is exact for every id, whatever its shape.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IdKey {
    /// A lowercase `8-4-4-4-12` UUID, high and low 64 bits.
    Uuid(u64, u64),
    /// Anything else, verbatim.
    Text(Box<str>),
}

impl IdKey {
    /// Returns the key of an id.
    pub fn new(id: &str) -> IdKey {
        match parse_uuid(id) {
            Some(v) => IdKey::Uuid((v >> 64) as u64, v as u64),
            None => IdKey::Text(id.into()),
        }
    }
}

impl From<&str> for IdKey {
    fn from(id: &str) -> IdKey {
        IdKey::new(id)
    }
}

impl From<&String> for IdKey {
    fn from(id: &String) -> IdKey {
        IdKey::new(id)
    }
}

impl fmt::Display for IdKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdKey::Uuid(hi, lo) => write!(
                f,
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                hi >> 32,
                (hi >> 16) & 0xffff,
                hi & 0xffff,
                lo >> 48,
                lo & 0xffff_ffff_ffff
            ),
            IdKey::Text(s) => f.write_str(s),
        }
    }
}

impl fmt::Debug for IdKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Parses a lowercase `8-4-4-4-12` UUID. Uppercase is refused: it would map a second text
/// onto the same key, and ids are compared as text.
fn parse_uuid(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut v: u128 = 0;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u128::from(d);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::IdKey;

    #[test]
    fn uuids_round_trip_and_sort_as_their_text() {
        let ids = [
            "00000000-0000-0000-0000-000000000000",
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
            "9fffffff-ffff-ffff-ffff-fffffffffffe",
            "a0000000-0000-0000-0000-000000000001",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
        ];
        let keys: Vec<IdKey> = ids.iter().map(|s| IdKey::new(s)).collect();
        for (k, s) in keys.iter().zip(ids) {
            assert!(matches!(k, IdKey::Uuid(..)), "{s} is a UUID");
            assert_eq!(k.to_string(), s);
        }
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "ordered as text");
    }

    #[test]
    fn other_text_is_kept_verbatim_and_never_equals_a_uuid() {
        for s in [
            "alloc-1",
            "",
            "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0",
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f",
            "0f1e2d3c_4b5a-6978-8796-a5b4c3d2e1f0",
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1g0",
        ] {
            let k = IdKey::new(s);
            assert_eq!(k, IdKey::Text(s.into()), "{s:?}");
            assert_eq!(k.to_string(), s);
        }
        assert_ne!(
            IdKey::new("0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0"),
            IdKey::new("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
        );
        assert!(IdKey::new("zzz") > IdKey::new("ffffffff-ffff-ffff-ffff-ffffffffffff"));
    }
}
