//! `drover-loadgen -servers 3`: the place scenario on a three-server cluster that the load
//! generator starts itself. Every allocation is placed and reported running through the
//! leader, and the servers are gone when the load generator exits.

use std::process::Command;

use serde_json::Value;

use crate::harness::bin;

#[test]
fn place_on_three_servers_places_everything_and_stops_its_servers() {
    // The load generator keeps its servers' data dirs under TMPDIR: one of this test's own,
    // so any server left running would name it on its command line.
    let tmp = tempfile::tempdir().expect("temporary dir");
    let output = Command::new(bin("drover-loadgen"))
        .env("TMPDIR", tmp.path())
        .args([
            "-servers",
            "3",
            "-nodes",
            "6",
            "-jobs",
            "3",
            "-count",
            "4",
            "-submitters",
            "2",
            "-timeout-secs",
            "120",
            "place",
        ])
        .output()
        .expect("running drover-loadgen");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let line = stdout.lines().last().expect("a JSON line");
    let report: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(report["params"]["servers"], 3, "{report}");
    assert_eq!(report["allocs_placed_seen"], 12, "{report}");
    assert_eq!(report["allocs_running_reported"], 12, "{report}");
    assert_eq!(report["jobs_failed"], 0, "{report}");

    let root = tmp.path().to_string_lossy().into_owned();
    let left: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(&root))
        .collect();
    assert!(left.is_empty(), "servers left running: {left:?}");
}
