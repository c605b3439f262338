//! `IdString`: an id held inside the record that names it.
//!
//! Every allocation carries its own id, a 36-character UUID. As a `String` that is 24 bytes
//! in the record and a 48-byte heap block beside it, 72 bytes in all, and a million
//! allocations hold a million such blocks. `IdString` keeps up to `INLINE` bytes of text
//! in its own 40 bytes, so a UUID costs 40 bytes and no block; a longer id (operators and
//! tests may choose any text) is boxed. It reads as a `&str` and archives as a plain string,
//! exactly as a `String` does, so the archived form is the same.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use rkyv::rancor::{Fallible, Source};
use rkyv::string::{ArchivedString, StringResolver};
use rkyv::{Archive, Place, SerializeUnsized};

/// The longest text held inline: every byte of the 40 but the variant's tag and the length.
pub const INLINE: usize = 38;

/// An id of any text: inline up to `INLINE` bytes (every UUID), boxed beyond. Compares,
/// orders and hashes as its text.
#[derive(Clone)]
pub enum IdString {
    /// `bytes[..len]` is the text, valid UTF-8: it is only ever copied from a `&str`.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// Text longer than `INLINE` bytes.
    Boxed(Box<str>),
}

impl IdString {
    /// Returns the id's text.
    #[inline]
    pub fn as_str(&self) -> &str {
        match self {
            IdString::Inline { len, bytes } => {
                // SAFETY: `bytes[..len]` was copied whole from a `&str` (see `From<&str>`),
                // so it is valid UTF-8, and `len` never exceeds `INLINE`.
                unsafe { std::str::from_utf8_unchecked(bytes.get_unchecked(..usize::from(*len))) }
            }
            IdString::Boxed(s) => s,
        }
    }
}

impl Default for IdString {
    fn default() -> IdString {
        IdString::Inline {
            len: 0,
            bytes: [0; INLINE],
        }
    }
}

impl From<&str> for IdString {
    fn from(s: &str) -> IdString {
        if s.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            IdString::Inline {
                len: s.len() as u8,
                bytes,
            }
        } else {
            IdString::Boxed(s.into())
        }
    }
}

impl From<String> for IdString {
    fn from(s: String) -> IdString {
        if s.len() <= INLINE {
            IdString::from(s.as_str())
        } else {
            IdString::Boxed(s.into_boxed_str())
        }
    }
}

impl From<&String> for IdString {
    fn from(s: &String) -> IdString {
        IdString::from(s.as_str())
    }
}

impl From<IdString> for String {
    fn from(s: IdString) -> String {
        match s {
            IdString::Boxed(b) => b.into_string(),
            inline => inline.as_str().to_string(),
        }
    }
}

impl Deref for IdString {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for IdString {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for IdString {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for IdString {
    #[inline]
    fn eq(&self, other: &IdString) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for IdString {}

impl PartialOrd for IdString {
    fn partial_cmp(&self, other: &IdString) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for IdString {
    fn cmp(&self, other: &IdString) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for IdString {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialEq<str> for IdString {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for IdString {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for IdString {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<IdString> for str {
    fn eq(&self, other: &IdString) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<IdString> for &str {
    fn eq(&self, other: &IdString) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<IdString> for String {
    fn eq(&self, other: &IdString) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Debug for IdString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for IdString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for IdString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

// Archived as a `String` is: the same bytes, read back as an `ArchivedString`.
impl Archive for IdString {
    type Archived = ArchivedString;
    type Resolver = StringResolver;

    fn resolve(&self, resolver: StringResolver, out: Place<ArchivedString>) {
        ArchivedString::resolve_from_str(self.as_str(), resolver, out);
    }
}

impl<S> rkyv::Serialize<S> for IdString
where
    S: Fallible + ?Sized,
    S::Error: Source,
    str: SerializeUnsized<S>,
{
    fn serialize(&self, serializer: &mut S) -> Result<StringResolver, S::Error> {
        ArchivedString::serialize_from_str(self.as_str(), serializer)
    }
}

impl<D: Fallible + ?Sized> rkyv::Deserialize<IdString, D> for ArchivedString {
    fn deserialize(&self, _: &mut D) -> Result<IdString, D::Error> {
        Ok(IdString::from(self.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_forty_bytes_and_holds_a_uuid_inline() {
        assert_eq!(std::mem::size_of::<IdString>(), 40);
        let uuid = "0190a3c4-7d1e-7abc-8def-0123456789ab";
        let id = IdString::from(uuid);
        assert!(matches!(id, IdString::Inline { .. }), "a UUID is inline");
        assert_eq!(id.as_str(), uuid);
        let edge = "x".repeat(INLINE);
        assert!(matches!(
            IdString::from(edge.as_str()),
            IdString::Inline { .. }
        ));
        assert_eq!(IdString::from(edge.as_str()), edge);
    }

    #[test]
    fn longer_text_is_boxed_and_every_form_reads_back_its_text() {
        let long = "an-operator-chose-an-allocation-id-of-many-bytes-é";
        let id = IdString::from(long);
        assert!(matches!(id, IdString::Boxed(_)));
        assert_eq!(id, long);
        assert_eq!(IdString::from(long.to_string()), id);
        for s in ["", "a", "é-ü", long] {
            let id = IdString::from(s);
            assert_eq!(id.as_str(), s);
            assert_eq!(id.to_string(), s);
            assert_eq!(String::from(id.clone()), s);
            assert_eq!(format!("{id:?}"), format!("{s:?}"));
        }
        assert_eq!(IdString::default(), "");
    }

    #[test]
    fn orders_and_hashes_as_its_text_whatever_its_form() {
        let texts = ["", "a", "ab", "b", &"c".repeat(60), "d"];
        let ids: Vec<IdString> = texts.iter().map(|s| IdString::from(*s)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let set: std::collections::HashSet<IdString> = ids.iter().cloned().collect();
        for t in texts {
            assert!(set.contains(t), "{t:?} found by its text");
        }
    }

    #[test]
    fn archives_as_a_string_does_and_reads_back() {
        for s in ["0190a3c4-7d1e-7abc-8def-0123456789ab", &"z".repeat(80)] {
            let id = IdString::from(s);
            let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&id).unwrap();
            let plain = rkyv::to_bytes::<rkyv::rancor::Error>(&s.to_string()).unwrap();
            assert_eq!(
                bytes.as_slice(),
                plain.as_slice(),
                "the archive of a String"
            );
            let back = rkyv::from_bytes::<IdString, rkyv::rancor::Error>(&bytes).unwrap();
            assert_eq!(back, id);
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, serde_json::to_string(s).unwrap());
        }
    }
}
