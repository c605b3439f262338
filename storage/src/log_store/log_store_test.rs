//! Unit tests of the log store that need its internals: batching and on-disk corruption.

use super::writer::{KEY_FORMAT_VERSION, LOG_TABLE, STORE_TABLE};
use super::*;
use redb::ReadableTable;

fn rec(index: u64, term: u64) -> LogRecord {
    LogRecord {
        index,
        term,
        bytes: format!("entry-{index}").into_bytes(),
    }
}

#[test]
fn oversized_append_is_refused_before_queueing() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    let big = LogRecord {
        index: 1,
        term: 1,
        bytes: vec![0; RECORD_BYTES_MAX + 1],
    };
    let err = store.append_sync(vec![big]).unwrap_err();
    assert!(matches!(err, StorageError::Overloaded { .. }), "{err}");
    assert_eq!(store.last_sync().unwrap(), None);
}

#[test]
fn requests_after_close_return_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    let other = store.clone();
    store.append_sync(vec![rec(1, 1)]).unwrap();
    store.close().unwrap();
    assert!(matches!(
        other.append_sync(vec![rec(2, 1)]),
        Err(StorageError::Closed)
    ));
    assert!(matches!(other.last_sync(), Err(StorageError::Closed)));
}

#[test]
fn a_file_with_another_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::create(dir.path().join(LOG_FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(STORE_TABLE)
            .unwrap()
            .insert(KEY_FORMAT_VERSION, 99u32.to_le_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let err = LogStore::open(dir.path()).err().expect("open must fail");
    assert!(matches!(err, StorageError::Format { .. }), "{err}");
}

fn hold(store: &LogStore) -> (crossbeam::channel::Sender<()>, Pending<()>) {
    let (release, held) = channel::bounded::<()>(0);
    (release, store.submit::<()>(Op::Hold(held)))
}

#[test]
fn queued_writes_from_several_threads_share_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store.append_sync(vec![rec(1, 1)]).unwrap();
    let before = store.stats();

    tracing::info!("hold the storage thread so every request below waits in the queue");
    let (release, held) = hold(&store);
    let mut pending = Vec::new();
    for index in 2..=101 {
        pending.push(store.submit::<()>(Op::Append(vec![rec(index, 1)])));
    }
    let metas: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let key: &'static str = ["a", "b", "c", "d"][t];
                store.submit::<()>(Op::PutMeta {
                    key,
                    value: vec![t as u8],
                })
            })
        })
        .map(|h| h.join().unwrap())
        .collect();

    tracing::info!("release: the thread drains all 104 writes into one transaction");
    drop(release);
    wait_sync(held).unwrap();
    for p in pending.into_iter().chain(metas) {
        wait_sync(p).unwrap();
    }
    let after = store.stats();
    assert_eq!(after.commits - before.commits, 1, "{before:?} -> {after:?}");
    assert_eq!(after.write_requests - before.write_requests, 104);
    assert_eq!(store.last_sync().unwrap(), Some((101, 1)));
    assert_eq!(store.get_meta_sync("c").unwrap(), Some(vec![2]));
}

#[test]
fn a_failed_request_in_a_batch_does_not_fail_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store
        .append_sync(vec![rec(1, 1), rec(2, 1), rec(3, 1)])
        .unwrap();
    store.close().unwrap();
    drop(store);
    corrupt_record(dir.path(), 2);

    let store = LogStore::open(dir.path()).unwrap();
    let (release, held) = hold(&store);
    let good = store.submit::<()>(Op::Append(vec![rec(4, 1), rec(5, 1)]));
    // Purging up to the corrupt record cannot learn its term: refused on its own.
    let bad = store.submit::<()>(Op::PurgeUpto {
        index: 2,
        term: None,
    });
    let meta = store.submit::<()>(Op::PutMeta {
        key: "vote",
        value: vec![7],
    });
    drop(release);
    wait_sync(held).unwrap();
    wait_sync(good).unwrap();
    assert!(matches!(
        wait_sync(bad),
        Err(StorageError::Corrupt { index: 2, .. })
    ));
    wait_sync(meta).unwrap();
    assert_eq!(store.last_sync().unwrap(), Some((5, 1)));
    assert_eq!(store.first_index_sync().unwrap(), Some(1));
    assert_eq!(store.last_purged_sync().unwrap(), None);
    assert_eq!(store.get_meta_sync("vote").unwrap(), Some(vec![7]));
}

/// Overwrites the stored value of `index` with one flipped byte, bypassing the codec.
fn corrupt_record(dir: &std::path::Path, index: u64) {
    let db = Database::create(dir.join(LOG_FILE_NAME)).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut log = txn.open_table(LOG_TABLE).unwrap();
        let mut value = log
            .get(index)
            .unwrap()
            .expect("record stored")
            .value()
            .to_vec();
        let last = value.len() - 1;
        value[last] ^= 0x40;
        log.insert(index, value.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn a_flipped_byte_on_disk_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store
        .append_sync((1..=5).map(|i| rec(i, 2)).collect())
        .unwrap();
    store.close().unwrap();
    drop(store);
    corrupt_record(dir.path(), 3);

    let store = LogStore::open(dir.path()).unwrap();
    assert_eq!(store.read_range_sync(1, 3).unwrap().len(), 2);
    let err = store.read_range_sync(1, 6).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Corrupt {
                what: "log record",
                index: 3
            }
        ),
        "{err}"
    );
    assert!(matches!(
        store.purge_upto_sync(3),
        Err(StorageError::Corrupt { index: 3, .. })
    ));
    store.close().unwrap();
    drop(store);

    tracing::info!("a corrupt last record makes open fail: the log's end is unknown");
    corrupt_record(dir.path(), 5);
    let err = LogStore::open(dir.path()).err().expect("open must fail");
    assert!(
        matches!(err, StorageError::Corrupt { index: 5, .. }),
        "{err}"
    );
}

#[test]
fn a_gap_inside_one_batch_stops_the_storage_thread() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store.append_sync(vec![rec(1, 1)]).unwrap();
    // The assertion fires on the storage thread; callers then see the store as closed.
    assert!(matches!(
        store.append_sync(vec![rec(2, 1), rec(4, 1)]),
        Err(StorageError::Closed)
    ));
    assert!(matches!(store.last_sync(), Err(StorageError::Closed)));
    assert!(store.close().is_err(), "close reports the crashed thread");
}

#[test]
fn overflowing_the_request_queue_returns_overloaded() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    let (release, held) = hold(&store);
    // The hold request itself may still occupy one slot when the loop starts.
    let mut accepted = Vec::new();
    let err = loop {
        match store.submit::<LogBounds>(Op::Bounds) {
            Ok(pending) => accepted.push(pending),
            Err(e) => break e,
        }
        assert!(
            accepted.len() <= REQUEST_QUEUE_MAX,
            "the queue is unbounded"
        );
    };
    assert!(
        accepted.len() >= REQUEST_QUEUE_MAX - 1,
        "refused after {}",
        accepted.len()
    );
    assert!(
        matches!(err, StorageError::Overloaded { limit, .. } if limit == REQUEST_QUEUE_MAX as u64),
        "{err}"
    );
    drop(release);
    wait_sync(held).unwrap();
    for pending in accepted {
        assert_eq!(wait_sync(Ok(pending)).unwrap(), LogBounds::default());
    }
    assert_eq!(store.bounds_sync().unwrap(), LogBounds::default());
}

#[test]
fn handles_can_be_shared_across_threads() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<LogStore>();
}
