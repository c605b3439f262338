//! `LogRecord` and its on-disk encoding: one Raft entry with a crc32 over index, term and bytes.
//!
//! Stored value layout (little endian):
//! `crc32: u32 | term: u64 | len: u32 | bytes[len] | pad?`
//! The crc covers the record's index (the table key), term, len and bytes, so a value that was
//! written under the wrong key is detected too. One zero pad byte is appended when the encoded
//! length would be an exact power of two, because the database rounds such values up to the
//! next power and doubles the space they take.

use crate::StorageError;

/// One Raft log entry as the storage sees it: opaque bytes at (index, term).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    pub index: u64,
    pub term: u64,
    pub bytes: Vec<u8>,
}

/// Bytes in front of the payload: crc32, term, payload length.
pub(crate) const RECORD_HEADER_BYTES: usize = 4 + 8 + 4;

/// The largest payload one record may carry; the length must fit the u32 header field.
pub const RECORD_BYTES_MAX: usize = 64 * 1024 * 1024;

const _: () = assert!(RECORD_BYTES_MAX <= u32::MAX as usize);

fn record_crc(index: u64, term: u64, bytes: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&index.to_le_bytes());
    hasher.update(&term.to_le_bytes());
    hasher.update(&(bytes.len() as u32).to_le_bytes());
    hasher.update(bytes);
    hasher.finalize()
}

/// Returns the stored value for `record`.
pub(crate) fn encode_record(record: &LogRecord) -> Vec<u8> {
    assert!(
        record.bytes.len() <= RECORD_BYTES_MAX,
        "log record {} is {} bytes, over RECORD_BYTES_MAX",
        record.index,
        record.bytes.len()
    );
    let mut len = RECORD_HEADER_BYTES + record.bytes.len();
    let pad = len.is_power_of_two();
    if pad {
        len += 1;
    }
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&record_crc(record.index, record.term, &record.bytes).to_le_bytes());
    out.extend_from_slice(&record.term.to_le_bytes());
    out.extend_from_slice(&(record.bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&record.bytes);
    if pad {
        out.push(0);
    }
    assert!(!out.len().is_power_of_two() || out.len() == 1);
    out
}

/// Decodes and verifies the stored value `value` found under key `index`.
pub(crate) fn decode_record(index: u64, value: &[u8]) -> Result<LogRecord, StorageError> {
    let corrupt = StorageError::Corrupt {
        what: "log record",
        index,
    };
    if value.len() < RECORD_HEADER_BYTES {
        return Err(corrupt);
    }
    let crc = u32::from_le_bytes(value[0..4].try_into().expect("slice of 4"));
    let term = u64::from_le_bytes(value[4..12].try_into().expect("slice of 8"));
    let len = u32::from_le_bytes(value[12..16].try_into().expect("slice of 4")) as usize;
    let end = RECORD_HEADER_BYTES
        .checked_add(len)
        .ok_or(StorageError::Corrupt {
            what: "log record",
            index,
        })?;
    // The only bytes allowed after the payload are the single power-of-two pad byte.
    let padded_ok = value.len() == end + 1 && end.is_power_of_two() && value[end] == 0;
    if value.len() != end && !padded_ok {
        return Err(corrupt);
    }
    let bytes = &value[RECORD_HEADER_BYTES..end];
    if record_crc(index, term, bytes) != crc {
        return Err(corrupt);
    }
    Ok(LogRecord {
        index,
        term,
        bytes: bytes.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(index: u64, len: usize) -> LogRecord {
        LogRecord {
            index,
            term: 3,
            bytes: (0..len).map(|i| i as u8).collect(),
        }
    }

    #[test]
    fn round_trips_and_avoids_power_of_two_lengths() {
        for len in [0, 1, 16, 240, 256, 4096 - 16, 4096, 70_000] {
            let rec = record(7, len);
            let value = encode_record(&rec);
            assert!(
                !value.len().is_power_of_two(),
                "len {len} encoded to {}",
                value.len()
            );
            assert_eq!(decode_record(7, &value).unwrap(), rec);
        }
    }

    #[test]
    fn any_flipped_byte_is_detected() {
        let rec = record(9, 40);
        let value = encode_record(&rec);
        for at in 0..value.len() {
            let mut bad = value.clone();
            bad[at] ^= 0x01;
            let err = decode_record(9, &bad).unwrap_err();
            assert!(
                matches!(err, StorageError::Corrupt { index: 9, .. }),
                "byte {at}: {err}"
            );
        }
    }

    #[test]
    fn value_under_wrong_key_is_detected() {
        let value = encode_record(&record(5, 10));
        assert!(matches!(
            decode_record(6, &value),
            Err(StorageError::Corrupt { index: 6, .. })
        ));
    }

    #[test]
    fn truncated_and_extended_values_are_detected() {
        let value = encode_record(&record(1, 10));
        assert!(decode_record(1, &value[..value.len() - 1]).is_err());
        assert!(decode_record(1, &value[..3]).is_err());
        let mut longer = value.clone();
        longer.push(0);
        assert!(decode_record(1, &longer).is_err());
    }
}
