//! Fields that are almost always empty, in 8 bytes instead of 24.
//!
//! An allocation carries a handful of links (the allocation it replaced, the one that
//! replaced it, its follow-up evaluation, what preempted it) and lists (its reschedule
//! history, what it preempted) that stay empty for nearly every allocation of a large
//! cluster. As a `String` or `Vec` each costs 24 bytes in every record even when empty; as
//! a boxed value behind an `Option` it costs one pointer, and the box is allocated only
//! when the field is set. Reads see a `&str` or a slice, empty when unset.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use rkyv::{Archive, Deserialize, Serialize};

/// A string that is usually empty: one pointer when empty, boxed when set. Reads as `&str`.
// A `Box<String>` is one pointer where a `Box<str>` is two: the point of the type.
#[allow(clippy::box_collection)]
#[derive(Archive, Serialize, Deserialize, Clone, Default, PartialEq, Eq)]
pub struct RareString(Option<Box<String>>);

impl RareString {
    /// The text, empty when unset.
    pub fn as_str(&self) -> &str {
        self.0.as_deref().map_or("", String::as_str)
    }
}

impl Deref for RareString {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for RareString {
    /// An empty string is stored as unset, so two empty values always compare equal.
    fn from(s: String) -> RareString {
        if s.is_empty() {
            RareString(None)
        } else {
            RareString(Some(Box::new(s)))
        }
    }
}

impl From<&str> for RareString {
    fn from(s: &str) -> RareString {
        RareString::from(s.to_string())
    }
}

impl PartialEq<str> for RareString {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for RareString {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for RareString {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<RareString> for String {
    fn eq(&self, other: &RareString) -> bool {
        self == other.as_str()
    }
}

impl fmt::Debug for RareString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for RareString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for RareString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A list that is usually empty: one pointer when empty, boxed when it has entries. Reads
/// as a slice.
// As for `RareString`: a `Box<Vec<T>>` is one pointer, a `Box<[T]>` two.
#[allow(clippy::box_collection)]
#[derive(Archive, Serialize, Deserialize, Clone, PartialEq)]
pub struct RareVec<T>(Option<Box<Vec<T>>>);

impl<T> Default for RareVec<T> {
    fn default() -> Self {
        RareVec(None)
    }
}

impl<T> RareVec<T> {
    /// Appends an entry, boxing the list on the first.
    pub fn push(&mut self, value: T) {
        self.grow_by_one().push(value);
    }

    /// The list, boxed, with room for exactly one more entry. These lists stay short, and
    /// a `Vec`'s own growth would give the first entry room for four (a 320-byte block for
    /// one 80-byte task state).
    fn grow_by_one(&mut self) -> &mut Vec<T> {
        let list = self.0.get_or_insert_with(Default::default);
        list.reserve_exact(1);
        list
    }

    /// Removes every entry (and the box).
    pub fn clear(&mut self) {
        self.0 = None;
    }

    /// The entries as a slice, empty when there are none.
    pub fn as_slice(&self) -> &[T] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Inserts an entry at `index` (at most the length), boxing the list on the first.
    pub fn insert(&mut self, index: usize, value: T) {
        self.grow_by_one().insert(index, value);
    }

    /// The entries, mutable; empty when there are none.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        self.0.as_deref_mut().map_or(&mut [], Vec::as_mut_slice)
    }
}

impl<T> Deref for RareVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T> From<Vec<T>> for RareVec<T> {
    /// An empty list is stored as unset.
    fn from(v: Vec<T>) -> RareVec<T> {
        if v.is_empty() {
            RareVec(None)
        } else {
            RareVec(Some(Box::new(v)))
        }
    }
}

impl<T> Extend<T> for RareVec<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for value in iter {
            self.push(value);
        }
    }
}

impl<T> FromIterator<T> for RareVec<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> RareVec<T> {
        RareVec::from(iter.into_iter().collect::<Vec<T>>())
    }
}

impl<'a, T> IntoIterator for &'a RareVec<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl<T: fmt::Debug> fmt::Debug for RareVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

/// Archives an `Arc<str>` as a plain string (`ArchivedString`) and reads it back as a new
/// `Arc<str>`: the state shares one copy of an id between records, but an archive holds a
/// copy per record, as for a `String`. rkyv's own form for an `Arc` is a shared pointer,
/// which costs a table of every shared pointer each time an archive is written and each time
/// one is validated: at a million allocations that table made a restart about a second
/// slower.
pub struct AsPlainString;

impl rkyv::with::ArchiveWith<Arc<str>> for AsPlainString {
    type Archived = rkyv::string::ArchivedString;
    type Resolver = rkyv::string::StringResolver;

    fn resolve_with(field: &Arc<str>, resolver: Self::Resolver, out: rkyv::Place<Self::Archived>) {
        rkyv::string::ArchivedString::resolve_from_str(field, resolver, out);
    }
}

impl<S> rkyv::with::SerializeWith<Arc<str>, S> for AsPlainString
where
    S: rkyv::rancor::Fallible + ?Sized,
    S::Error: rkyv::rancor::Source,
    str: rkyv::SerializeUnsized<S>,
{
    fn serialize_with(field: &Arc<str>, serializer: &mut S) -> Result<Self::Resolver, S::Error> {
        rkyv::string::ArchivedString::serialize_from_str(field, serializer)
    }
}

impl<D> rkyv::with::DeserializeWith<rkyv::string::ArchivedString, Arc<str>, D> for AsPlainString
where
    D: rkyv::rancor::Fallible + ?Sized,
{
    fn deserialize_with(
        field: &rkyv::string::ArchivedString,
        _: &mut D,
    ) -> Result<Arc<str>, D::Error> {
        Ok(Arc::from(field.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Archive, Serialize, Deserialize)]
    struct Shared {
        #[rkyv(with = AsPlainString)]
        id: Arc<str>,
    }

    #[test]
    fn a_shared_text_archives_as_a_plain_string_and_reads_back() {
        let id: Arc<str> = Arc::from("0190a3c4-7d1e-7abc-8def-0123456789ab");
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&Shared { id: id.clone() }).unwrap();
        let plain = rkyv::to_bytes::<rkyv::rancor::Error>(&id.to_string()).unwrap();
        assert_eq!(
            bytes.as_slice(),
            plain.as_slice(),
            "not the archive of a String"
        );
        let back = rkyv::from_bytes::<Shared, rkyv::rancor::Error>(&bytes).unwrap();
        assert_eq!(back.id, id);
    }

    #[test]
    fn a_list_grows_by_exactly_one_entry() {
        let mut v = RareVec::default();
        for i in 0..3u64 {
            v.push(i);
            assert_eq!(v.0.as_ref().map(|l| l.capacity()), Some(i as usize + 1));
        }
        v.insert(0, 9);
        assert_eq!(v.0.as_ref().map(|l| l.capacity()), Some(4));
        assert_eq!(v.as_slice(), [9, 0, 1, 2]);
    }

    #[test]
    fn both_are_one_pointer_and_read_empty_when_unset() {
        assert_eq!(std::mem::size_of::<RareString>(), 8);
        assert_eq!(std::mem::size_of::<RareVec<String>>(), 8);
        let s = RareString::default();
        assert_eq!(s.as_str(), "");
        assert!(s.is_empty());
        assert_eq!(RareString::from(""), s, "empty is unset");
        let v: RareVec<u32> = RareVec::default();
        assert!(v.is_empty());
        assert_eq!(RareVec::from(Vec::<u32>::new()), v, "empty is unset");
    }

    #[test]
    fn set_values_read_back_and_survive_an_archive_round_trip() {
        let s = RareString::from("alloc-1");
        assert_eq!(s, "alloc-1");
        assert_eq!(s.to_string(), "alloc-1");
        let mut v = RareVec::default();
        v.push("a".to_string());
        v.extend(["b".to_string()]);
        assert_eq!(v.as_slice(), ["a", "b"]);
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&(s.clone(), v.clone())).unwrap();
        let back: (RareString, RareVec<String>) =
            rkyv::from_bytes::<_, rkyv::rancor::Error>(&bytes).unwrap();
        assert_eq!(back, (s, v));
        let empty = (RareString::default(), RareVec::<String>::default());
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&empty).unwrap();
        let back: (RareString, RareVec<String>) =
            rkyv::from_bytes::<_, rkyv::rancor::Error>(&bytes).unwrap();
        assert_eq!(back, empty);
    }
}
