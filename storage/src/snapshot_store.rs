//! `SnapshotStore`: state snapshots as files `snapshots/<index>-<term>.snap`, written atomically.
//!
//! File layout (little endian):
//! ```text
//! magic "DRVSNAP1" | format_version u32 | header_len u32 | header | header_crc u32
//! | payload_len u64 | payload_crc u32 | zero pad to a 16-byte offset | payload
//! header = last_index u64 | last_term u64 | id_len u32 | id | membership_len u32 | membership
//! ```
//! The payload is the rkyv archive of a `StateImage`. It starts at a 16-byte aligned offset so
//! a reader that maps or reads the whole file into aligned memory can access it in place.
//! Blocking: the engine calls this from a blocking thread.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use rkyv::rancor;
use rkyv::util::AlignedVec;

use crate::state_image::{
    deserialize_image, ArchivedStateImage, StateImage, STATE_IMAGE_FORMAT_VERSION,
};
use crate::StorageError;

/// Version of the snapshot file layout above (not of the `StateImage` inside it).
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;
/// How many snapshot files are kept; older ones are deleted after each write.
pub const SNAPSHOTS_KEPT_MAX: usize = 2;
/// Name of the snapshot directory inside the data directory.
pub const SNAPSHOT_DIR_NAME: &str = "snapshots";
/// The largest header (snapshot id plus membership) a file may carry.
pub const SNAPSHOT_HEADER_BYTES_MAX: usize = 1024 * 1024;

const MAGIC: &[u8; 8] = b"DRVSNAP1";
const SUFFIX: &str = ".snap";
const TMP_SUFFIX: &str = ".snap.tmp";
const PAYLOAD_ALIGN: usize = 16;

/// What a snapshot covers, written in the file header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub last_index: u64,
    pub last_term: u64,
    pub snapshot_id: String,
    /// The engine's encoded Raft membership at `last_index`; opaque here.
    pub membership: Vec<u8>,
}

/// A snapshot file that was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub path: PathBuf,
    pub meta: SnapshotMeta,
    pub file_bytes: u64,
    pub payload_bytes: u64,
}

/// The snapshot directory of one server.
pub struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    /// Opens or creates `<data_dir>/snapshots` and removes temporary files left by a crash
    /// during a write (they were never renamed, so they never counted as snapshots).
    pub fn open(data_dir: &Path) -> Result<SnapshotStore, StorageError> {
        let dir = data_dir.join(SNAPSHOT_DIR_NAME);
        fs::create_dir_all(&dir).map_err(StorageError::io(&dir))?;
        for entry in fs::read_dir(&dir).map_err(StorageError::io(&dir))? {
            let entry = entry.map_err(StorageError::io(&dir))?;
            let name = entry.file_name();
            if name.to_string_lossy().ends_with(TMP_SUFFIX) {
                tracing::warn!(file = ?name, "removing unfinished snapshot file");
                fs::remove_file(entry.path()).map_err(StorageError::io(entry.path()))?;
            }
        }
        Ok(SnapshotStore { dir })
    }

    /// Returns the snapshot directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the rkyv archive of `image`.
    pub fn encode(image: &StateImage) -> Vec<u8> {
        encode_aligned(image).into_vec()
    }

    /// Validates an rkyv archive of a `StateImage` and deserializes it.
    pub fn decode(bytes: &[u8]) -> Result<StateImage, StorageError> {
        let aligned = to_aligned(bytes);
        let archived = check_payload(&aligned)?;
        deserialize_image(archived).map_err(|e| StorageError::Format {
            reason: format!("state image: {e}"),
        })
    }

    /// Writes a snapshot received from a leader as raw payload bytes, after checking that they
    /// are a valid `StateImage` archive of this version.
    pub fn write_bytes(
        &self,
        meta: &SnapshotMeta,
        payload: &[u8],
    ) -> Result<SnapshotInfo, StorageError> {
        check_payload(&to_aligned(payload))?;
        self.write_file(meta, payload)
    }

    /// Reads, validates and decodes the newest snapshot.
    pub fn latest(&self) -> Result<Option<(SnapshotMeta, StateImage)>, StorageError> {
        let started = std::time::Instant::now();
        let Some((meta, file, offset)) = self.read_latest()? else {
            return Ok(None);
        };
        let read = started.elapsed();
        let archived = check_payload(&file[offset..]).map_err(|e| {
            tracing::error!(error = %e, index = meta.last_index, "snapshot payload invalid");
            StorageError::Corrupt {
                what: "snapshot payload",
                index: meta.last_index,
            }
        })?;
        let validated = started.elapsed();
        let image = deserialize_image(archived).map_err(|e| StorageError::Format {
            reason: format!("state image: {e}"),
        })?;
        tracing::info!(
            index = meta.last_index,
            bytes = file.len() - offset,
            read_ms = read.as_millis() as u64,
            validate_ms = (validated - read).as_millis() as u64,
            decode_ms = (started.elapsed() - validated).as_millis() as u64,
            "snapshot read"
        );
        Ok(Some((meta, image)))
    }

    /// Returns the newest snapshot's header and raw payload (checksum verified), for sending to
    /// a follower.
    pub fn latest_bytes(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StorageError> {
        let Some((meta, file, offset)) = self.read_latest()? else {
            return Ok(None);
        };
        Ok(Some((meta, file[offset..].to_vec())))
    }

    /// Returns the size in bytes of the newest snapshot file, if there is one.
    pub fn latest_file_bytes(&self) -> Result<Option<u64>, StorageError> {
        let Some(&id) = self.list()?.first() else {
            return Ok(None);
        };
        let path = self.path_of(id);
        let meta = fs::metadata(&path).map_err(StorageError::io(&path))?;
        Ok(Some(meta.len()))
    }

    /// Returns the header of the newest snapshot without decoding its payload.
    pub fn latest_meta(&self) -> Result<Option<SnapshotMeta>, StorageError> {
        Ok(self.read_latest()?.map(|(meta, _, _)| meta))
    }

    /// Returns the (index, term) of every snapshot file, newest first.
    pub fn list(&self) -> Result<Vec<(u64, u64)>, StorageError> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(StorageError::io(&self.dir))? {
            let entry = entry.map_err(StorageError::io(&self.dir))?;
            if let Some(id) = parse_file_name(&entry.file_name().to_string_lossy()) {
                ids.push(id);
            }
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        Ok(ids)
    }

    fn path_of(&self, (index, term): (u64, u64)) -> PathBuf {
        self.dir.join(format!("{index}-{term}{SUFFIX}"))
    }

    /// Maps the newest file into memory; returns its header and the payload offset. A map
    /// starts on a page boundary, so the payload (at a 16-byte offset in the file) is aligned
    /// for in-place access, and reading it costs no copy and no fresh memory: the pages are
    /// the page cache's.
    fn read_latest(&self) -> Result<Option<(SnapshotMeta, memmap2::Mmap, usize)>, StorageError> {
        let Some(&id) = self.list()?.first() else {
            return Ok(None);
        };
        let path = self.path_of(id);
        let file = File::open(&path).map_err(StorageError::io(&path))?;
        // SAFETY: a snapshot file is complete and never written again once it has its final
        // name (it is written under a temporary name and renamed); it is only ever deleted,
        // which leaves an existing map intact.
        let bytes = unsafe { memmap2::Mmap::map(&file) }.map_err(StorageError::io(&path))?;
        assert_eq!(
            bytes.as_ptr() as usize % PAYLOAD_ALIGN,
            0,
            "a file map starts on a page boundary"
        );
        let (meta, offset) = parse_file(&bytes, id.0)?;
        if (meta.last_index, meta.last_term) != id {
            return Err(StorageError::Corrupt {
                what: "snapshot file name",
                index: id.0,
            });
        }
        Ok(Some((meta, bytes, offset)))
    }

    /// Writes `image` as the snapshot described by `meta`, then deletes all but the newest
    /// `SNAPSHOTS_KEPT_MAX` snapshots. The archive is encoded straight into the file: no
    /// buffer of it is held, so a snapshot of a large state costs one pass over the state and
    /// a few megabytes of memory. The file is the one `write_bytes` makes of `encode(image)`.
    pub fn write(
        &self,
        meta: &SnapshotMeta,
        image: &StateImage,
    ) -> Result<SnapshotInfo, StorageError> {
        assert_eq!(
            image.format_version, STATE_IMAGE_FORMAT_VERSION,
            "writing a state image of version {} at index {}",
            image.format_version, meta.last_index
        );
        let (prefix, sums_at) = file_prefix(meta, 0, 0)?;
        let (tmp, path) = self.paths_of(meta);
        let file = File::create(&tmp).map_err(StorageError::io(&tmp))?;
        (&file).write_all(&prefix).map_err(StorageError::io(&tmp))?;
        let mut sink = PayloadSink {
            file: &file,
            buf: Vec::with_capacity(STREAM_BUFFER_BYTES),
            crc: crc32fast::Hasher::new(),
            len: 0,
            failed: None,
        };
        let encoded = rkyv::api::high::to_bytes_in::<_, rancor::Error>(image, &mut sink).map(drop);
        let flushed = sink.flush_buf();
        if let Some(e) = sink.failed.take() {
            return Err(StorageError::io(&tmp)(e));
        }
        encoded.map_err(|e| StorageError::Format {
            reason: format!("state image: {e}"),
        })?;
        flushed.map_err(StorageError::io(&tmp))?;
        let (payload_len, crc) = (sink.len, sink.crc.clone().finalize());
        // The payload's length and checksum are known only now: fill them in.
        let mut sums = [0u8; 12];
        sums[..8].copy_from_slice(&payload_len.to_le_bytes());
        sums[8..].copy_from_slice(&crc.to_le_bytes());
        std::os::unix::fs::FileExt::write_all_at(&file, &sums, sums_at as u64)
            .map_err(StorageError::io(&tmp))?;
        file.sync_all().map_err(StorageError::io(&tmp))?;
        self.publish(
            meta,
            &tmp,
            path,
            prefix.len() as u64 + payload_len,
            payload_len,
        )
    }

    /// Returns the temporary and final paths of the snapshot `meta` describes.
    fn paths_of(&self, meta: &SnapshotMeta) -> (PathBuf, PathBuf) {
        let id = (meta.last_index, meta.last_term);
        let tmp = self.dir.join(format!("{}-{}{TMP_SUFFIX}", id.0, id.1));
        (tmp, self.path_of(id))
    }

    fn write_file(
        &self,
        meta: &SnapshotMeta,
        payload: &[u8],
    ) -> Result<SnapshotInfo, StorageError> {
        let (out, _) = file_prefix(meta, payload.len() as u64, crc32fast::hash(payload))?;
        let (tmp, path) = self.paths_of(meta);
        let file_bytes = (out.len() + payload.len()) as u64;
        {
            let mut file = File::create(&tmp).map_err(StorageError::io(&tmp))?;
            file.write_all(&out).map_err(StorageError::io(&tmp))?;
            file.write_all(payload).map_err(StorageError::io(&tmp))?;
            file.sync_all().map_err(StorageError::io(&tmp))?;
        }
        self.publish(meta, &tmp, path, file_bytes, payload.len() as u64)
    }

    /// Renames a complete, synced temporary file into place and prunes old snapshots.
    fn publish(
        &self,
        meta: &SnapshotMeta,
        tmp: &Path,
        path: PathBuf,
        file_bytes: u64,
        payload_bytes: u64,
    ) -> Result<SnapshotInfo, StorageError> {
        // The rename makes the snapshot visible whole or not at all; syncing the directory
        // makes the rename itself survive a power loss.
        fs::rename(tmp, &path).map_err(StorageError::io(&path))?;
        sync_dir(&self.dir)?;
        self.prune()?;
        tracing::info!(path = %path.display(), file_bytes, "wrote snapshot");
        Ok(SnapshotInfo {
            path,
            meta: meta.clone(),
            file_bytes,
            payload_bytes,
        })
    }

    fn prune(&self) -> Result<(), StorageError> {
        let ids = self.list()?;
        if ids.len() <= SNAPSHOTS_KEPT_MAX {
            return Ok(());
        }
        for id in &ids[SNAPSHOTS_KEPT_MAX..] {
            let path = self.path_of(*id);
            fs::remove_file(&path).map_err(StorageError::io(&path))?;
        }
        sync_dir(&self.dir)
    }
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StorageError::io(dir))
}

/// Parses `<index>-<term>.snap`; any other name (temporary files included) is not a snapshot.
fn parse_file_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(SUFFIX)?;
    let (index, term) = stem.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(index) || !digits(term) {
        return None;
    }
    Some((index.parse().ok()?, term.parse().ok()?))
}

/// Write buffer of a streamed snapshot.
const STREAM_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Where a streamed archive goes: rkyv's writes are gathered in a buffer, and each full
/// buffer is checksummed and written to the file in one call (rkyv writes every field and
/// string on its own: hundreds of small writes per allocation). A write error is kept here;
/// rkyv only learns that the write failed.
struct PayloadSink<'a> {
    file: &'a File,
    buf: Vec<u8>,
    crc: crc32fast::Hasher,
    /// Payload bytes written so far, buffered ones included.
    len: u64,
    failed: Option<std::io::Error>,
}

impl PayloadSink<'_> {
    fn flush_buf(&mut self) -> std::io::Result<()> {
        self.crc.update(&self.buf);
        let written = self.file.write_all(&self.buf);
        self.buf.clear();
        written
    }
}

impl rkyv::ser::Positional for PayloadSink<'_> {
    fn pos(&self) -> usize {
        self.len as usize
    }
}

impl<E: rancor::Source> rkyv::ser::Writer<E> for PayloadSink<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), E> {
        if self.failed.is_some() {
            return Err(E::new(std::io::Error::other("an earlier write failed")));
        }
        self.buf.extend_from_slice(bytes);
        self.len += bytes.len() as u64;
        if self.buf.len() >= STREAM_BUFFER_BYTES {
            if let Err(e) = self.flush_buf() {
                let kind = e.kind();
                self.failed = Some(e);
                return Err(E::new(std::io::Error::from(kind)));
            }
        }
        Ok(())
    }
}

/// Everything a snapshot file holds before its payload, padded so the payload starts
/// aligned, and the offset of the payload's length and checksum within it.
fn file_prefix(
    meta: &SnapshotMeta,
    payload_len: u64,
    payload_crc: u32,
) -> Result<(Vec<u8>, usize), StorageError> {
    let header = encode_header(meta)?;
    let mut out = Vec::with_capacity(64 + header.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&crc32fast::hash(&header).to_le_bytes());
    let sums_at = out.len();
    out.extend_from_slice(&payload_len.to_le_bytes());
    out.extend_from_slice(&payload_crc.to_le_bytes());
    out.resize(out.len().next_multiple_of(PAYLOAD_ALIGN), 0);
    Ok((out, sums_at))
}

fn encode_aligned(image: &StateImage) -> AlignedVec {
    // Serializing owned in-memory data into a growable buffer has no failure mode but running
    // out of memory, which aborts anyway.
    rkyv::to_bytes::<rancor::Error>(image).expect("state image serializes into memory")
}

fn to_aligned(bytes: &[u8]) -> AlignedVec {
    let mut aligned = AlignedVec::<PAYLOAD_ALIGN>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    aligned
}

/// Validates an aligned archive and checks its version.
fn check_payload(bytes: &[u8]) -> Result<&ArchivedStateImage, StorageError> {
    let archived = rkyv::access::<ArchivedStateImage, rancor::Error>(bytes).map_err(|e| {
        StorageError::Format {
            reason: format!("state image archive: {e}"),
        }
    })?;
    let version = archived.format_version.to_native();
    if version != STATE_IMAGE_FORMAT_VERSION {
        return Err(StorageError::Format {
            reason: format!(
                "state image format version {version}, this build reads \
                 {STATE_IMAGE_FORMAT_VERSION}"
            ),
        });
    }
    Ok(archived)
}

fn encode_header(meta: &SnapshotMeta) -> Result<Vec<u8>, StorageError> {
    let len = 8 + 8 + 4 + meta.snapshot_id.len() + 4 + meta.membership.len();
    if len > SNAPSHOT_HEADER_BYTES_MAX {
        return Err(StorageError::Overloaded {
            what: "snapshot header bytes",
            limit: SNAPSHOT_HEADER_BYTES_MAX as u64,
        });
    }
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&meta.last_index.to_le_bytes());
    out.extend_from_slice(&meta.last_term.to_le_bytes());
    out.extend_from_slice(&(meta.snapshot_id.len() as u32).to_le_bytes());
    out.extend_from_slice(meta.snapshot_id.as_bytes());
    out.extend_from_slice(&(meta.membership.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta.membership);
    Ok(out)
}

/// A cursor over untrusted bytes; every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// Parses and checks a whole snapshot file; returns its header and the payload offset.
/// `index` (from the file name) only labels errors.
fn parse_file(bytes: &[u8], index: u64) -> Result<(SnapshotMeta, usize), StorageError> {
    let corrupt = |what| StorageError::Corrupt { what, index };
    let mut r = Reader { bytes, at: 0 };
    if r.take(MAGIC.len()) != Some(MAGIC.as_slice()) {
        return Err(corrupt("snapshot magic"));
    }
    let version = r.u32().ok_or(corrupt("snapshot version"))?;
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err(StorageError::Format {
            reason: format!(
                "snapshot file version {version} at index {index}, this build reads \
                 {SNAPSHOT_FORMAT_VERSION}"
            ),
        });
    }
    let header_len = r.u32().ok_or(corrupt("snapshot header"))? as usize;
    if header_len > SNAPSHOT_HEADER_BYTES_MAX {
        return Err(corrupt("snapshot header"));
    }
    let header = r.take(header_len).ok_or(corrupt("snapshot header"))?;
    let header_crc = r.u32().ok_or(corrupt("snapshot header"))?;
    if crc32fast::hash(header) != header_crc {
        return Err(corrupt("snapshot header"));
    }
    let meta = parse_header(header).ok_or(corrupt("snapshot header"))?;
    let payload_len = r.u64().ok_or(corrupt("snapshot payload"))?;
    let payload_crc = r.u32().ok_or(corrupt("snapshot payload"))?;
    let offset = r.at.next_multiple_of(PAYLOAD_ALIGN);
    let payload_len = usize::try_from(payload_len).map_err(|_| corrupt("snapshot payload"))?;
    if offset.checked_add(payload_len) != Some(bytes.len()) {
        return Err(corrupt("snapshot payload"));
    }
    if crc32fast::hash(&bytes[offset..]) != payload_crc {
        return Err(corrupt("snapshot payload"));
    }
    Ok((meta, offset))
}

fn parse_header(header: &[u8]) -> Option<SnapshotMeta> {
    let mut r = Reader {
        bytes: header,
        at: 0,
    };
    let last_index = r.u64()?;
    let last_term = r.u64()?;
    let id_len = r.u32()? as usize;
    let snapshot_id = String::from_utf8(r.take(id_len)?.to_vec()).ok()?;
    let membership_len = r.u32()? as usize;
    let membership = r.take(membership_len)?.to_vec();
    if r.at != header.len() {
        return None;
    }
    Some(SnapshotMeta {
        last_index,
        last_term,
        snapshot_id,
        membership,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_parse_strictly() {
        assert_eq!(parse_file_name("12-3.snap"), Some((12, 3)));
        assert_eq!(parse_file_name("12-3.snap.tmp"), None);
        assert_eq!(parse_file_name("12-.snap"), None);
        assert_eq!(parse_file_name("-3.snap"), None);
        assert_eq!(parse_file_name("+1-3.snap"), None);
        assert_eq!(parse_file_name("12-3-4.snap"), None);
        assert_eq!(parse_file_name("99999999999999999999999-1.snap"), None);
    }

    #[test]
    fn header_round_trips_and_rejects_trailing_bytes() {
        let meta = SnapshotMeta {
            last_index: 7,
            last_term: 2,
            snapshot_id: "s-7".to_string(),
            membership: vec![1, 2, 3],
        };
        let header = encode_header(&meta).unwrap();
        assert_eq!(parse_header(&header), Some(meta));
        let mut longer = header.clone();
        longer.push(0);
        assert_eq!(parse_header(&longer), None);
        assert_eq!(parse_header(&header[..header.len() - 1]), None);
    }
}
