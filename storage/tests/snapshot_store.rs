//! Snapshot store behaviour: round trip, retention, atomicity and refusal of bad bytes.

mod common;

use std::fs;

use storage::{SnapshotMeta, SnapshotStore, StateImage, StorageError, SNAPSHOTS_KEPT_MAX};

fn meta(last_index: u64, last_term: u64) -> SnapshotMeta {
    SnapshotMeta {
        last_index,
        last_term,
        snapshot_id: format!("{last_term}-{last_index}-a1"),
        membership: format!("voters:1,2,3@{last_index}").into_bytes(),
    }
}

#[test]
fn an_empty_store_has_no_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    assert!(store.latest().unwrap().is_none());
    assert!(store.latest_bytes().unwrap().is_none());
    assert!(store.latest_meta().unwrap().is_none());
    assert!(dir.path().join("snapshots").is_dir());
}

#[test]
fn write_then_latest_returns_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    let image = common::image(42, 20, 200);
    let info = store.write(&meta(42, 3), &image).unwrap();
    assert_eq!(info.path, dir.path().join("snapshots").join("42-3.snap"));
    assert_eq!(fs::metadata(&info.path).unwrap().len(), info.file_bytes);
    assert!(info.payload_bytes > 0 && info.payload_bytes < info.file_bytes);

    let (got_meta, got_image) = store.latest().unwrap().expect("a snapshot");
    assert_eq!(got_meta, meta(42, 3));
    assert_eq!(got_image, image);
    assert_eq!(store.latest_meta().unwrap(), Some(meta(42, 3)));
}

#[test]
fn encode_and_decode_round_trip() {
    let image = common::image(7, 3, 10);
    let bytes = SnapshotStore::encode(&image);
    assert_eq!(SnapshotStore::decode(&bytes).unwrap(), image);
    // Decoding must not depend on where the caller's buffer happens to start.
    let mut shifted = vec![0u8];
    shifted.extend_from_slice(&bytes);
    assert_eq!(SnapshotStore::decode(&shifted[1..]).unwrap(), image);
    assert_eq!(
        SnapshotStore::decode(&SnapshotStore::encode(&StateImage::default())).unwrap(),
        StateImage::default()
    );
}

#[test]
fn only_the_newest_two_are_kept_and_the_newest_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    for (index, term) in [(10, 1), (30, 2), (20, 1), (40, 2)] {
        store
            .write(&meta(index, term), &common::image(index, 2, 2))
            .unwrap();
    }
    assert_eq!(SNAPSHOTS_KEPT_MAX, 2);
    assert_eq!(store.list().unwrap(), vec![(40, 2), (30, 2)]);
    let (got, image) = store.latest().unwrap().unwrap();
    assert_eq!(got.last_index, 40);
    assert_eq!(image.last_applied_index, 40);
    let names: Vec<_> = fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn a_leftover_tmp_file_is_ignored_and_cleaned_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    store.write(&meta(5, 1), &common::image(5, 2, 2)).unwrap();
    tracing::info!("a crash mid-write leaves a newer, half-written tmp file");
    let tmp = store.dir().join("9-1.snap.tmp");
    fs::write(&tmp, b"DRVSNAP1 half written").unwrap();
    assert_eq!(store.latest().unwrap().unwrap().0, meta(5, 1));
    assert_eq!(store.list().unwrap(), vec![(5, 1)]);

    drop(store);
    let store = SnapshotStore::open(dir.path()).unwrap();
    assert!(!tmp.exists());
    assert_eq!(store.latest().unwrap().unwrap().0, meta(5, 1));
}

#[test]
fn latest_bytes_install_on_another_server() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let leader = SnapshotStore::open(leader_dir.path()).unwrap();
    let follower = SnapshotStore::open(follower_dir.path()).unwrap();
    let image = common::image(100, 5, 50);
    leader.write(&meta(100, 4), &image).unwrap();

    let (sent_meta, payload) = leader.latest_bytes().unwrap().unwrap();
    assert_eq!(SnapshotStore::decode(&payload).unwrap(), image);
    follower.write_bytes(&sent_meta, &payload).unwrap();
    assert_eq!(follower.latest().unwrap().unwrap(), (meta(100, 4), image));
}

#[test]
fn bad_payload_bytes_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    let good = SnapshotStore::encode(&common::image(3, 2, 5));
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xff;
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("garbage", b"not an archive at all".to_vec()),
        ("truncated", good[..good.len() - 8].to_vec()),
        ("all ones", vec![0xff; good.len()]),
    ];
    // A flipped byte inside a string may still validate; it must never panic either way.
    let _ = SnapshotStore::decode(&flipped);
    let _ = store.write_bytes(&meta(2, 1), &flipped);
    for (name, bytes) in cases.drain(..) {
        assert!(SnapshotStore::decode(&bytes).is_err(), "{name} decoded");
        let err = store.write_bytes(&meta(3, 1), &bytes).unwrap_err();
        assert!(matches!(err, StorageError::Format { .. }), "{name}: {err}");
    }
    assert!(!store.list().unwrap().contains(&(3, 1)));
}

#[test]
fn an_image_of_another_version_is_refused() {
    let image = StateImage {
        format_version: 999,
        ..StateImage::default()
    };
    let err = SnapshotStore::decode(&SnapshotStore::encode(&image)).unwrap_err();
    assert!(matches!(err, StorageError::Format { .. }), "{err}");
}

/// Writes one snapshot, lets `damage` change the file, and returns what `latest` says.
fn latest_after(damage: impl FnOnce(&mut Vec<u8>)) -> Result<(), StorageError> {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    let info = store.write(&meta(8, 2), &common::image(8, 3, 30)).unwrap();
    let mut bytes = fs::read(&info.path).unwrap();
    damage(&mut bytes);
    fs::write(&info.path, &bytes).unwrap();
    let latest = store.latest().map(|_| ());
    let latest_bytes = store.latest_bytes().map(|_| ());
    assert_eq!(
        latest.is_err(),
        latest_bytes.is_err(),
        "both readers must agree"
    );
    latest
}

#[test]
fn damaged_files_are_reported_never_panic() {
    assert!(latest_after(|_| {}).is_ok());
    let corrupt =
        |r: Result<(), StorageError>| matches!(r, Err(StorageError::Corrupt { index: 8, .. }));
    assert!(corrupt(latest_after(|b| b[0] = b'X')), "magic");
    assert!(corrupt(latest_after(|b| b[20] ^= 1)), "header");
    assert!(
        corrupt(latest_after(|b| {
            let last = b.len() - 1;
            b[last] ^= 1;
        })),
        "payload"
    );
    assert!(
        corrupt(latest_after(|b| b.truncate(b.len() - 1))),
        "truncated"
    );
    assert!(corrupt(latest_after(|b| b.push(0))), "extended");
    assert!(corrupt(latest_after(|b| b.clear())), "empty");
    assert!(corrupt(latest_after(|b| b.truncate(12))), "header cut");
    let version = latest_after(|b| b[8] = 2);
    assert!(
        matches!(version, Err(StorageError::Format { .. })),
        "{version:?}"
    );
    // Every single-byte truncation point is handled.
    for len in 0..64 {
        assert!(latest_after(|b| b.truncate(len)).is_err(), "len {len}");
    }
}

#[test]
fn a_file_whose_name_disagrees_with_its_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    let info = store.write(&meta(8, 2), &common::image(8, 1, 1)).unwrap();
    fs::rename(&info.path, store.dir().join("9-2.snap")).unwrap();
    assert!(matches!(
        store.latest(),
        Err(StorageError::Corrupt { index: 9, .. })
    ));
}

/// The layout a `StateImage` archive has always had: records in plain vectors. The image now
/// holds its records by `Arc`; the archive must not change with it.
#[derive(rkyv::Archive, rkyv::Serialize)]
struct PlainImage {
    format_version: u32,
    last_applied_index: u64,
    jobs: Vec<sched::structs::Job>,
    job_versions: Vec<sched::structs::Job>,
    nodes: Vec<sched::structs::Node>,
    allocs: Vec<sched::structs::Allocation>,
    evals: Vec<sched::structs::Evaluation>,
    scheduler_config: sched::env::SchedulerConfig,
    scheduler_config_index: u64,
    extra: Vec<(String, Vec<u8>)>,
}

#[test]
fn an_image_holding_shared_records_archives_as_plain_records() {
    let image = common::image(42, 3, 10);
    fn owned<T: Clone>(v: &[std::sync::Arc<T>]) -> Vec<T> {
        v.iter().map(|r| (**r).clone()).collect()
    }
    let plain = PlainImage {
        format_version: image.format_version,
        last_applied_index: image.last_applied_index,
        jobs: owned(&image.jobs),
        job_versions: owned(&image.job_versions),
        nodes: owned(&image.nodes),
        allocs: owned(&image.allocs),
        evals: owned(&image.evals),
        scheduler_config: image.scheduler_config.clone(),
        scheduler_config_index: image.scheduler_config_index,
        extra: image.extra.clone(),
    };
    let plain_bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&plain).unwrap();
    assert_eq!(
        plain_bytes.as_slice(),
        SnapshotStore::encode(&image).as_slice(),
        "same bytes"
    );
    assert_eq!(SnapshotStore::decode(&plain_bytes).unwrap(), image);
}

#[test]
fn a_streamed_snapshot_file_is_the_file_of_its_encoded_bytes() {
    let streamed_dir = tempfile::tempdir().unwrap();
    let buffered_dir = tempfile::tempdir().unwrap();
    let streamed = SnapshotStore::open(streamed_dir.path()).unwrap();
    let buffered = SnapshotStore::open(buffered_dir.path()).unwrap();
    let image = common::image(9, 4, 300);
    let a = streamed.write(&meta(9, 2), &image).unwrap();
    let b = buffered
        .write_bytes(&meta(9, 2), &SnapshotStore::encode(&image))
        .unwrap();
    assert_eq!(
        (a.file_bytes, a.payload_bytes),
        (b.file_bytes, b.payload_bytes)
    );
    assert_eq!(fs::read(&a.path).unwrap(), fs::read(&b.path).unwrap());
    // No temporary file is left behind.
    assert_eq!(fs::read_dir(a.path.parent().unwrap()).unwrap().count(), 1);
}

#[test]
fn a_large_image_decoded_on_several_threads_is_the_image_written() {
    // Enough allocations that the decode spreads them over threads; their order is kept.
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    let image = common::image(11, 8, 25_000);
    store.write(&meta(11, 1), &image).unwrap();
    let (_, back) = store.latest().unwrap().unwrap();
    assert_eq!(back.allocs.len(), 25_000);
    assert_eq!(back, image);
}

#[test]
fn decoded_allocations_share_the_texts_they_repeat() {
    // 25,000 allocations on 8 nodes, one evaluation and one job: decoded on up to four
    // threads, each thread's records hold one copy of each text, so the whole image holds
    // at most four copies of a text instead of one per record.
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    let image = common::image(11, 8, 25_000);
    store.write(&meta(11, 1), &image).unwrap();
    let (_, back) = store.latest().unwrap().unwrap();
    let copies = |field: fn(&sched::structs::Allocation) -> &std::sync::Arc<str>| {
        let mut seen: Vec<*const u8> = back.allocs.iter().map(|a| field(a).as_ptr()).collect();
        seen.sort();
        seen.dedup();
        seen.len()
    };
    assert!(copies(|a| &a.eval_id) <= 4, "{}", copies(|a| &a.eval_id));
    assert!(copies(|a| &a.job_id) <= 4, "{}", copies(|a| &a.job_id));
    assert!(
        copies(|a| &a.node_id) <= 8 * 4,
        "{}",
        copies(|a| &a.node_id)
    );
    assert!(
        copies(|a| &a.node_name) <= 8 * 4,
        "{}",
        copies(|a| &a.node_name)
    );
    assert_eq!(back, image, "sharing changes no text");
}
