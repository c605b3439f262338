//! Storage benchmarks: state snapshot encode/write and read/decode, and Raft log append
//! throughput by record size and batch size, including group commit of queued appends.

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use storage::{LogRecord, LogStore, SnapshotMeta, SnapshotStore};

// The sample builders are shared with the storage tests so both exercise the same shapes.
#[path = "../../storage/tests/common/mod.rs"]
mod common;

const SNAPSHOT_ALLOCS: usize = 100_000;
const SNAPSHOT_NODES: usize = 1_000;
/// Log bytes appended before the bench purges the log (outside the timed part), so the
/// database file stays small.
const LOG_PURGE_EVERY_BYTES: usize = 64 * 1024 * 1024;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("drover-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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

fn snapshot(c: &mut Criterion) {
    let image = common::image(1_000_000, SNAPSHOT_NODES, SNAPSHOT_ALLOCS);
    let scratch = Scratch::new("snapshot");
    let store = SnapshotStore::open(&scratch.0).expect("open snapshot store");
    let meta = |index| SnapshotMeta {
        last_index: index,
        last_term: 1,
        snapshot_id: format!("bench-{index}"),
        membership: vec![0; 64],
    };

    // Prove what is timed succeeds and round-trips before timing it.
    let info = store.write(&meta(1), &image).expect("write snapshot");
    let (_, back) = store
        .latest()
        .expect("read snapshot")
        .expect("snapshot exists");
    assert_eq!(back.allocs.len(), SNAPSHOT_ALLOCS);
    assert_eq!(back, image);
    println!(
        "snapshot of {SNAPSHOT_ALLOCS} allocs and {SNAPSHOT_NODES} nodes: {} bytes",
        info.file_bytes
    );

    let mut group = c.benchmark_group("snapshot_100k_allocs_1k_nodes");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(info.payload_bytes));
    group.bench_function("encode", |b| b.iter(|| SnapshotStore::encode(&image)));
    let mut index = 1;
    group.bench_function("encode_and_write", |b| {
        b.iter(|| {
            index += 1;
            store.write(&meta(index), &image).expect("write snapshot")
        })
    });
    group.bench_function("open_and_decode", |b| {
        b.iter(|| {
            let reopened = SnapshotStore::open(&scratch.0).expect("open");
            reopened.latest().expect("read").expect("exists")
        })
    });
    let (_, payload) = store.latest_bytes().expect("read").expect("exists");
    group.bench_function("decode_only", |b| {
        b.iter(|| SnapshotStore::decode(&payload).expect("decode"))
    });
    group.finish();
}

fn log_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_append");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    // 3968 B sits just under a 4 KiB page once the 16 B record header is added; 4096 B does not.
    for record_bytes in [256usize, 3968, 4096] {
        for batch in [1usize, 64, 1024] {
            let scratch = Scratch::new(&format!("log-{record_bytes}-{batch}"));
            let store = LogStore::open(&scratch.0).expect("open log");
            let payload = vec![7u8; record_bytes];
            let mut next = 1u64;
            let mut since_purge = 0usize;
            group.throughput(Throughput::Elements(batch as u64));
            let id = BenchmarkId::new(format!("{record_bytes}B"), format!("batch_{batch}"));
            group.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        let records: Vec<_> = (0..batch as u64)
                            .map(|i| LogRecord {
                                index: next + i,
                                term: 1,
                                bytes: payload.clone(),
                            })
                            .collect();
                        let start = Instant::now();
                        store.append_sync(records).expect("append");
                        timed += start.elapsed();
                        next += batch as u64;
                        since_purge += batch * record_bytes;
                        if since_purge >= LOG_PURGE_EVERY_BYTES {
                            store.purge_upto_sync(next - 1).expect("purge");
                            since_purge = 0;
                        }
                    }
                    timed
                })
            });
            let last = store.last_sync().expect("bounds").expect("appended");
            assert_eq!(last.0, next - 1, "every timed append landed");
        }
    }

    // 64 appends of one record each, all queued before the first is awaited, as a Raft
    // leader does with many client writes in flight: group commit folds them into few fsyncs.
    for record_bytes in [256usize, 4096] {
        let scratch = Scratch::new(&format!("log-queued-{record_bytes}"));
        let store = LogStore::open(&scratch.0).expect("open log");
        let payload = vec![7u8; record_bytes];
        let mut next = 1u64;
        group.throughput(Throughput::Elements(64));
        let id = BenchmarkId::new(format!("{record_bytes}B"), "queued_64x1");
        let mut since_purge = 0usize;
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let records: Vec<_> = (0..64)
                        .map(|i| LogRecord {
                            index: next + i,
                            term: 1,
                            bytes: payload.clone(),
                        })
                        .collect();
                    let start = Instant::now();
                    let pending: Vec<_> =
                        records.into_iter().map(|r| store.append(vec![r])).collect();
                    for p in pending {
                        block_on(p).expect("append");
                    }
                    timed += start.elapsed();
                    next += 64;
                    since_purge += 64 * record_bytes;
                    if since_purge >= LOG_PURGE_EVERY_BYTES {
                        store.purge_upto_sync(next - 1).expect("purge");
                        since_purge = 0;
                    }
                }
                timed
            })
        });
        let stats = store.stats();
        println!(
            "queued {record_bytes}B: {} appends in {} commits",
            stats.write_requests, stats.commits
        );
    }
    group.finish();
}

criterion_group!(benches, snapshot, log_append);
criterion_main!(benches);
