//! Log store behaviour through its public API: bounds, truncation, purge, reopen, concurrency.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use common::{record, records};
use storage::{LogBounds, LogStore, StorageError};

/// Drives a future to completion on the current thread; the store's futures need no runtime.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => std::thread::park(),
        }
    }
}

#[test]
fn empty_log_has_no_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    assert_eq!(store.bounds_sync().unwrap(), LogBounds::default());
    assert_eq!(store.last_sync().unwrap(), None);
    assert_eq!(store.first_index_sync().unwrap(), None);
    assert!(store.read_range_sync(0, 100).unwrap().is_empty());
    assert_eq!(store.get_meta_sync("vote").unwrap(), None);
    assert!(dir.path().join("raft.redb").exists());
}

#[test]
fn append_then_read_ranges_and_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store.append_sync(records(1, 5, 1)).unwrap();
    store.append_sync(records(6, 10, 2)).unwrap();
    store.append_sync(Vec::new()).unwrap();

    assert_eq!(
        store.read_range_sync(1, 11).unwrap(),
        [records(1, 5, 1), records(6, 10, 2)].concat()
    );
    assert_eq!(
        store.read_range_sync(4, 7).unwrap(),
        vec![record(4, 1), record(5, 1), record(6, 2)]
    );
    assert_eq!(store.read_range_sync(9, 100).unwrap(), records(9, 10, 2));
    assert!(store.read_range_sync(7, 7).unwrap().is_empty());
    assert!(store.read_range_sync(8, 3).unwrap().is_empty());
    assert_eq!(store.first_index_sync().unwrap(), Some(1));
    assert_eq!(store.last_sync().unwrap(), Some((10, 2)));
    assert_eq!(store.last_purged_sync().unwrap(), None);
}

#[test]
fn async_api_resolves_without_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    block_on(store.append(records(0, 3, 1))).unwrap();
    block_on(store.put_meta("vote", b"term=1".to_vec())).unwrap();
    assert_eq!(block_on(store.read_range(0, 4)).unwrap(), records(0, 3, 1));
    assert_eq!(block_on(store.last()).unwrap(), Some((3, 1)));
    assert_eq!(block_on(store.first_index()).unwrap(), Some(0));
    assert_eq!(
        block_on(store.get_meta("vote")).unwrap(),
        Some(b"term=1".to_vec())
    );
    block_on(store.truncate_from(2)).unwrap();
    block_on(store.purge_upto(0)).unwrap();
    assert_eq!(block_on(store.last_purged()).unwrap(), Some((0, 1)));
    assert_eq!(block_on(store.bounds()).unwrap().last_stored, Some((1, 1)));
}

#[test]
fn truncate_removes_the_tail_and_appends_continue_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store.append_sync(records(1, 10, 1)).unwrap();
    store.truncate_from_sync(7).unwrap();
    assert_eq!(store.last_sync().unwrap(), Some((6, 1)));
    assert!(store.read_range_sync(7, 11).unwrap().is_empty());

    tracing::info!("a new leader's entries replace the truncated tail");
    store.append_sync(records(7, 8, 2)).unwrap();
    assert_eq!(
        store.read_range_sync(6, 9).unwrap(),
        vec![record(6, 1), record(7, 2), record(8, 2)]
    );

    tracing::info!("truncating past the end changes nothing; truncating everything empties");
    store.truncate_from_sync(100).unwrap();
    assert_eq!(store.last_sync().unwrap(), Some((8, 2)));
    store.truncate_from_sync(1).unwrap();
    assert_eq!(store.bounds_sync().unwrap(), LogBounds::default());
    store.append_sync(records(1, 1, 3)).unwrap();
    assert_eq!(store.last_sync().unwrap(), Some((1, 3)));
}

#[test]
fn purge_keeps_the_last_purged_id_as_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store.append_sync(records(1, 4, 1)).unwrap();
    store.append_sync(records(5, 10, 2)).unwrap();

    store.purge_upto_sync(4).unwrap();
    let bounds = store.bounds_sync().unwrap();
    assert_eq!(bounds.first_index, Some(5));
    assert_eq!(bounds.last_stored, Some((10, 2)));
    assert_eq!(bounds.last_purged, Some((4, 1)));
    assert!(store.read_range_sync(0, 5).unwrap().is_empty());

    tracing::info!("purging an index already purged is a no-op");
    store.purge_upto_sync(2).unwrap();
    assert_eq!(store.last_purged_sync().unwrap(), Some((4, 1)));

    tracing::info!("purging everything: the last id is the purged one");
    store.purge_upto_sync(10).unwrap();
    assert_eq!(store.first_index_sync().unwrap(), None);
    assert_eq!(store.last_sync().unwrap(), None, "nothing is stored");
    assert_eq!(store.bounds_sync().unwrap().last_log_id(), Some((10, 2)));
    store.append_sync(records(11, 12, 3)).unwrap();
    assert_eq!(store.first_index_sync().unwrap(), Some(11));
    assert_eq!(store.last_sync().unwrap(), Some((12, 3)));
}

#[test]
fn purge_past_the_end_replaces_the_whole_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store.append_sync(records(1, 3, 1)).unwrap();

    tracing::info!("without a term, the last known term is recorded as a lower bound");
    store.purge_upto_sync(20).unwrap();
    assert_eq!(store.last_purged_sync().unwrap(), Some((20, 1)));
    assert_eq!(store.last_sync().unwrap(), None);
    assert!(store.read_range_sync(0, 100).unwrap().is_empty());

    tracing::info!("a snapshot installed at (50, 4) records its exact id");
    store.purge_upto_log_id_sync(50, 4).unwrap();
    assert_eq!(store.bounds_sync().unwrap().last_log_id(), Some((50, 4)));
    store.append_sync(vec![record(51, 4)]).unwrap();
    assert_eq!(store.read_range_sync(0, 100).unwrap(), vec![record(51, 4)]);
    assert_eq!(store.last_sync().unwrap(), Some((51, 4)));
}

#[test]
fn purge_below_the_first_stored_index_keeps_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store.append_sync(records(2, 5, 1)).unwrap();
    store.purge_upto_log_id_sync(1, 1).unwrap();
    let bounds = store.bounds_sync().unwrap();
    assert_eq!(bounds.first_index, Some(2));
    assert_eq!(bounds.last_stored, Some((5, 1)));
    assert_eq!(bounds.last_purged, Some((1, 1)));
    store.append_sync(vec![record(6, 1)]).unwrap();
}

#[test]
fn everything_survives_drop_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = LogStore::open(dir.path()).unwrap();
        store.append_sync(records(1, 20, 3)).unwrap();
        store.purge_upto_sync(5).unwrap();
        store.truncate_from_sync(18).unwrap();
        store.put_meta_sync("vote", vec![3, 0, 1]).unwrap();
        store.put_meta_sync("committed", vec![17]).unwrap();
        store.put_meta_sync("committed", vec![16]).unwrap();
        // Dropped without close: drop must finish queued work and release the file.
    }
    let store = LogStore::open(dir.path()).unwrap();
    let bounds = store.bounds_sync().unwrap();
    assert_eq!(bounds.first_index, Some(6));
    assert_eq!(bounds.last_stored, Some((17, 3)));
    assert_eq!(bounds.last_purged, Some((5, 3)));
    assert_eq!(store.read_range_sync(0, 100).unwrap(), records(6, 17, 3));
    assert_eq!(store.get_meta_sync("vote").unwrap(), Some(vec![3, 0, 1]));
    assert_eq!(store.get_meta_sync("committed").unwrap(), Some(vec![16]));
    store.close().unwrap();

    tracing::info!("after purging everything, the purged id alone survives a reopen");
    drop(store);
    let store = LogStore::open(dir.path()).unwrap();
    store.purge_upto_sync(17).unwrap();
    drop(store);
    let store = LogStore::open(dir.path()).unwrap();
    assert_eq!(store.last_sync().unwrap(), None);
    assert_eq!(store.bounds_sync().unwrap().last_log_id(), Some((17, 3)));
    assert_eq!(store.first_index_sync().unwrap(), None);
}

#[test]
fn the_same_directory_cannot_be_opened_twice_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let _store = LogStore::open(dir.path()).unwrap();
    assert!(matches!(
        LogStore::open(dir.path()),
        Err(StorageError::Db { .. })
    ));
}

#[test]
fn concurrent_appends_from_many_threads_are_all_durable_and_ordered() {
    const THREADS: u64 = 8;
    const APPENDS_PER_THREAD: u64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    // The lock hands out indexes and queues the append in one step, as the Raft core does, so
    // the queue order is the index order; the wait for durability happens outside the lock.
    let next_index = Arc::new(Mutex::new(1u64));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            let next_index = Arc::clone(&next_index);
            std::thread::spawn(move || {
                for _ in 0..APPENDS_PER_THREAD {
                    let pending = {
                        let mut next = next_index.lock().unwrap();
                        let index = *next;
                        *next += 1;
                        store.append(vec![record(index, t + 1)])
                    };
                    block_on(pending).unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let total = THREADS * APPENDS_PER_THREAD;
    let stats = store.stats();
    assert_eq!(stats.write_requests, total);
    assert!(stats.commits <= total, "{stats:?}");
    drop(store);

    let store = LogStore::open(dir.path()).unwrap();
    let all = store.read_range_sync(0, u64::MAX).unwrap();
    assert_eq!(all.len() as u64, total);
    for (i, rec) in all.iter().enumerate() {
        assert_eq!(rec.index, i as u64 + 1);
        assert_eq!(rec.bytes, record(rec.index, rec.term).bytes);
    }
}

#[test]
fn large_records_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    let big: Vec<_> = [4096 - 16, 4096, 1 << 20]
        .iter()
        .enumerate()
        .map(|(i, &len)| storage::LogRecord {
            index: i as u64 + 1,
            term: 1,
            bytes: (0..len).map(|b| (b % 251) as u8).collect(),
        })
        .collect();
    store.append_sync(big.clone()).unwrap();
    drop(store);
    let store = LogStore::open(dir.path()).unwrap();
    assert_eq!(store.read_range_sync(1, 4).unwrap(), big);
}

#[test]
fn dropping_the_last_handle_finishes_queued_requests_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    let pending: Vec<_> = (1..=200)
        .map(|i| store.append(vec![record(i, 1)]))
        .collect();
    let meta = store.put_meta("vote", vec![9]);
    drop(store);
    for p in pending {
        block_on(p).unwrap();
    }
    block_on(meta).unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    assert_eq!(store.last_sync().unwrap(), Some((200, 1)));
    assert_eq!(store.get_meta_sync("vote").unwrap(), Some(vec![9]));
}

#[test]
fn appended_bytes_count_every_append_with_its_record_headers() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    assert_eq!(store.stats().appended_bytes, 0);
    let batch = vec![
        storage::LogRecord {
            index: 1,
            term: 1,
            bytes: vec![7; 1000],
        },
        storage::LogRecord {
            index: 2,
            term: 1,
            bytes: vec![7; 24],
        },
    ];
    store.append_sync(batch).unwrap();
    let after_one = store.stats().appended_bytes;
    // 1,024 payload bytes and a header per record.
    assert!(after_one > 1024 && after_one < 1024 + 2 * 64, "{after_one}");
    store.append_sync(records(3, 4, 1)).unwrap();
    let after_two = store.stats().appended_bytes;
    assert!(after_two > after_one);
    // The path openraft uses (acknowledged from the storage thread) counts as well.
    let (tx, rx) = std::sync::mpsc::channel();
    store
        .append_with(records(5, 5, 1), move |r| tx.send(r).unwrap())
        .unwrap();
    rx.recv().unwrap().unwrap();
    assert!(store.stats().appended_bytes > after_two);
}
