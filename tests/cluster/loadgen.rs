//! `drover-loadgen -servers 3`: the place scenario on a three-server cluster that the load
//! generator starts itself. Every allocation is placed and reported running through the
//! leader, and the servers are gone when the load generator exits.

use std::process::Command;

use serde_json::Value;

use crate::harness::bin;

#[test]
fn place_on_three_servers_places_everything_and_stops_its_servers() {
    let output = Command::new(bin("drover-loadgen"))
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

    // The leader it drove listened on this address; nothing answers there any more.
    let http = report["params"]["http"].as_str().expect("http in params");
    let addr = http.trim_start_matches("http://");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "a server still listens on {addr} after the load generator exited"
    );
}
