//! The scenarios, run on the load generator's executor beside the simulated fleet.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use net::client::sim::{node_id_for, run_sim_nodes, SimNodeSpec, SimStats, SimStatsSnapshot};
use net::rpc::StopSignal;
use serde_json::{json, Value};

use super::http::{count_down_nodes, start_submitters, JobShape, SubmitProgress};
use super::{progress, LoadgenArgs, Report, Scenario};

/// How often progress is sampled.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Time given to freshly registered nodes to report allocations they already hold, so that
/// those are not counted as this run's placements.
const BASELINE_SETTLE: Duration = Duration::from_millis(500);

/// Runs the chosen scenario and returns its report.
pub(super) async fn run(
    args: LoadgenArgs,
    http_base: String,
    rpc_addr: SocketAddr,
) -> anyhow::Result<Report> {
    let spec = SimNodeSpec {
        count: args.nodes,
        datacenter: args.datacenter.clone(),
        cpu_mhz: args.node_cpu,
        memory_mb: args.node_memory,
        name_prefix: format!("loadgen-{}", args.seed),
        seed: args.seed,
        ..SimNodeSpec::default()
    };
    let stats = Rc::new(SimStats::new());
    let stop = StopSignal::new();
    let fleet = {
        let stop = stop.clone();
        glommio::spawn_local(run_sim_nodes(
            rpc_addr,
            spec,
            args.conns,
            stats.clone(),
            async move { stop.wait().await },
        ))
    };
    let timeout = Duration::from_secs(args.timeout_secs);
    let started = Instant::now();
    let registered = wait_registered(&stats, args.nodes as u64, timeout).await;
    let seconds_to_register = started.elapsed().as_secs_f64();
    let mut report = json!({
        "scenario": args.scenario.as_str(),
        "params": params(&args),
        "nodes_registered": stats.snapshot().nodes_registered,
        "seconds_to_register": seconds_to_register,
    });
    let samples = Rc::new(RefCell::new(Vec::new()));
    let recorder_stop = StopSignal::new();
    let recorder = args.out.as_ref().map(|_| {
        glommio::spawn_local(super::series::record(
            stats.clone(),
            recorder_stop.clone(),
            samples.clone(),
        ))
    });
    let completed = if !registered {
        report["error"] = json!("timed out waiting for the nodes to register");
        false
    } else {
        match args.scenario {
            Scenario::Place | Scenario::C1m => {
                place(&args, &http_base, &stats, timeout, &mut report).await
            }
            Scenario::Heartbeats => heartbeats(&args, &http_base, &stats, &mut report).await,
            Scenario::Api => api(&args, &http_base, &mut report).await,
            // Run before any fleet is started (see `super::run`).
            Scenario::Failover | Scenario::Restart | Scenario::Raft => false,
        }
    };
    recorder_stop.stop();
    if let Some(recorder) = recorder {
        recorder.await;
    }
    let last = stats.snapshot();
    report["sim_errors"] = json!(last.errors);
    report["reregistrations"] = json!(last.reregistrations);
    stop.stop();
    fleet.await;
    if let Some(dir) = args.out.as_ref() {
        let title = format!(
            "drover-loadgen {} ({} nodes)",
            args.scenario.as_str(),
            args.nodes
        );
        super::series::write(dir, &title, &samples.borrow())?;
        report["out"] = json!(dir.display().to_string());
    }
    Ok(Report {
        json: report,
        completed,
    })
}

fn params(args: &LoadgenArgs) -> Value {
    json!({
        "http": args.http, "rpc": args.rpc, "nodes": args.nodes, "jobs": args.jobs,
        "count": args.count, "cpu": args.cpu, "memory": args.memory, "node_cpu": args.node_cpu,
        "node_memory": args.node_memory, "submitters": args.submitters, "seed": args.seed,
        "conns": args.conns, "duration_secs": args.duration_secs, "servers": args.servers,
    })
}

async fn wait_registered(stats: &SimStats, nodes: u64, timeout: Duration) -> bool {
    let bar = progress(nodes, "registering");
    let deadline = Instant::now() + timeout;
    loop {
        let registered = stats.nodes_registered.get();
        bar.set_position(registered);
        if registered >= nodes {
            bar.finish_and_clear();
            return true;
        }
        if Instant::now() >= deadline {
            bar.abandon();
            return false;
        }
        glommio::timer::sleep(POLL_INTERVAL).await;
    }
}

/// The jobs of this run: ids `<kind>-<seed>-<run id>-<n>`, new on every run, so a run never
/// updates the jobs of an earlier one.
fn job_shape(args: &LoadgenArgs, kind: &str) -> JobShape {
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    JobShape {
        id_prefix: format!("{kind}-{}-{run_id}", args.seed),
        datacenter: args.datacenter.clone(),
        count: args.count,
        cpu_mhz: args.cpu,
        memory_mb: args.memory,
    }
}

/// Submits the jobs and waits until every allocation is placed, then running.
async fn place(
    args: &LoadgenArgs,
    http_base: &str,
    stats: &SimStats,
    timeout: Duration,
    report: &mut Value,
) -> bool {
    glommio::timer::sleep(BASELINE_SETTLE).await;
    let baseline = stats.snapshot();
    let shape = job_shape(args, "loadgen");
    let target = args.jobs as u64 * args.count;
    let submit = Arc::new(SubmitProgress::default());
    let started = Instant::now();
    let threads = start_submitters(
        http_base,
        &shape,
        args.jobs,
        args.submitters,
        submit.clone(),
    );
    let bar = progress(target, "placing");
    let deadline = started + timeout;
    let mut seconds_to_all_placed = None;
    let mut seconds_to_all_running = None;
    let mut seconds_to_submit = None;
    let submitters = threads.len();
    while seconds_to_all_running.is_none() && Instant::now() < deadline {
        let now = stats.snapshot();
        let placed = now.allocs_placed_seen - baseline.allocs_placed_seen;
        // The server commits client status updates without waking the node's GetAllocs (as
        // Nomad does), so "running" is the server accepting the node's Running report.
        let running = now.allocs_running_reported - baseline.allocs_running_reported;
        bar.set_position(placed.min(target));
        let elapsed = started.elapsed().as_secs_f64();
        if seconds_to_submit.is_none() && submit.threads_done.load(Ordering::Relaxed) == submitters
        {
            seconds_to_submit = Some(elapsed);
        }
        if seconds_to_all_placed.is_none() && placed >= target {
            seconds_to_all_placed = Some(elapsed);
        }
        if running >= target {
            seconds_to_all_running = Some(elapsed);
        }
        glommio::timer::sleep(POLL_INTERVAL).await;
    }
    bar.finish_and_clear();
    let last = stats.snapshot();
    report["allocs_expected"] = json!(target);
    report["allocs_placed_seen"] = json!(last.allocs_placed_seen - baseline.allocs_placed_seen);
    report["allocs_running_reported"] =
        json!(last.allocs_running_reported - baseline.allocs_running_reported);
    report["jobs_submitted"] = json!(submit.submitted.load(Ordering::Relaxed));
    report["jobs_failed"] = json!(submit.failed.load(Ordering::Relaxed));
    if let Ok(first) = submit.first_error.lock() {
        if let Some(error) = first.as_ref() {
            report["first_submit_error"] = json!(error);
        }
    }
    report["seconds_to_submit"] = json!(seconds_to_submit);
    report["seconds_to_all_placed"] = json!(seconds_to_all_placed);
    report["placements_per_second"] =
        json!(seconds_to_all_placed.map(|seconds| target as f64 / seconds.max(1e-9)));
    report["seconds_to_all_running"] = json!(seconds_to_all_running);
    // Submitters finish on their own (each request has a timeout); do not block the executor.
    drop(threads);
    if seconds_to_all_running.is_none() {
        report["error"] = json!("timed out before every allocation was running");
        return false;
    }
    true
}

/// Registers `jobs` jobs, then times `queries` reads of `GET /v1/jobs` (one at a time, from a
/// thread of their own) and reports the latency percentiles.
async fn api(args: &LoadgenArgs, http_base: &str, report: &mut Value) -> bool {
    let shape = job_shape(args, "api");
    let submit = Arc::new(SubmitProgress::default());
    let started = Instant::now();
    let threads = start_submitters(
        http_base,
        &shape,
        args.jobs,
        args.submitters,
        submit.clone(),
    );
    let submitters = threads.len();
    let bar = progress(args.jobs as u64, "registering jobs");
    while submit.threads_done.load(Ordering::Relaxed) < submitters {
        bar.set_position(submit.submitted.load(Ordering::Relaxed));
        glommio::timer::sleep(POLL_INTERVAL).await;
    }
    bar.finish_and_clear();
    report["jobs_submitted"] = json!(submit.submitted.load(Ordering::Relaxed));
    report["jobs_failed"] = json!(submit.failed.load(Ordering::Relaxed));
    report["seconds_to_submit"] = json!(started.elapsed().as_secs_f64());
    // The reads run on a plain thread: blocking HTTP calls must not stall the fleet's executor.
    let url = format!("{http_base}/v1/jobs");
    let queries = args.queries.max(1);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let agent = super::http::agent(Duration::from_secs(60));
        let mut histogram = hdrhistogram::Histogram::<u64>::new(3).expect("histogram bounds");
        let mut listed = 0usize;
        let mut bytes = 0usize;
        let mut failed = 0u64;
        for query in 0..queries {
            let started = Instant::now();
            match agent.get(&url).call().map(read_body) {
                Ok(Ok(body)) => {
                    let _ = histogram.record(started.elapsed().as_micros().max(1) as u64);
                    bytes = body.len();
                    // Decoding a multi-megabyte answer takes the client longer than the server
                    // takes to build it; once is enough to count what the list holds.
                    if query == 0 {
                        listed = serde_json::from_slice::<Value>(&body)
                            .ok()
                            .and_then(|v| v.as_array().map(Vec::len))
                            .unwrap_or(0);
                    }
                }
                _ => failed += 1,
            }
        }
        let _ = tx.send((histogram, listed, bytes, failed));
    });
    let (histogram, listed, bytes, failed) = loop {
        match rx.try_recv() {
            Ok(result) => break result,
            Err(std::sync::mpsc::TryRecvError::Empty) => glommio::timer::sleep(POLL_INTERVAL).await,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                report["error"] = json!("the query thread died");
                return false;
            }
        }
    };
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    report["queries"] = json!(queries);
    report["queries_failed"] = json!(failed);
    report["jobs_listed"] = json!(listed);
    report["response_bytes"] = json!(bytes);
    report["jobs_list_p50_ms"] = json!(ms(0.5));
    report["jobs_list_p99_ms"] = json!(ms(0.99));
    report["jobs_list_max_ms"] = json!(histogram.max() as f64 / 1000.0);
    failed == 0
}

/// Most bytes of one answer the `api` scenario reads (and sizes its buffer for).
const BODY_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// Reads a whole answer as bytes, into a buffer sized by its `Content-Length`; an answer
/// longer than `BODY_BYTES_MAX` is an error.
fn read_body(response: ureq::Response) -> std::io::Result<Vec<u8>> {
    let len = response
        .header("Content-Length")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        .min(BODY_BYTES_MAX);
    let mut body = Vec::with_capacity(len as usize);
    let mut reader = std::io::Read::take(response.into_reader(), BODY_BYTES_MAX + 1);
    std::io::Read::read_to_end(&mut reader, &mut body)?;
    if body.len() as u64 > BODY_BYTES_MAX {
        return Err(std::io::Error::other(format!(
            "answer longer than {BODY_BYTES_MAX} bytes"
        )));
    }
    Ok(body)
}

/// Holds the fleet on the heartbeat path for the configured duration.
async fn heartbeats(
    args: &LoadgenArgs,
    http_base: &str,
    stats: &SimStats,
    report: &mut Value,
) -> bool {
    // The fleet keeps beating while this waits; what it sees here is not measured.
    glommio::timer::sleep(Duration::from_secs(args.settle_secs)).await;
    stats.reset_heartbeats();
    let errors_before = stats.snapshot().errors;
    let duration = Duration::from_secs(args.duration_secs);
    let bar = progress(args.duration_secs, "heartbeats");
    let started = Instant::now();
    while started.elapsed() < duration {
        bar.set_position(started.elapsed().as_secs());
        glommio::timer::sleep(POLL_INTERVAL.max(Duration::from_millis(100))).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let measured: SimStatsSnapshot = stats.snapshot();
    let node_ids: Vec<String> = (0..args.nodes).map(|i| node_id_for(args.seed, i)).collect();
    // A short blocking call on this executor; the fleet pauses for its duration only.
    let down = count_down_nodes(http_base, &node_ids);
    report["seconds_settled"] = json!(args.settle_secs);
    report["seconds_measured"] = json!(elapsed);
    report["heartbeats"] = json!(measured.heartbeats_sent);
    report["heartbeats_per_second"] = json!(measured.heartbeats_sent as f64 / elapsed);
    report["heartbeat_p50_ms"] = json!(measured.heartbeat_p50_us as f64 / 1000.0);
    report["heartbeat_p99_ms"] = json!(measured.heartbeat_p99_us as f64 / 1000.0);
    report["heartbeat_errors"] = json!(measured.errors - errors_before);
    match down {
        Ok(down) => {
            report["false_node_downs"] = json!(down);
            true
        }
        Err(error) => {
            report["false_node_downs"] = Value::Null;
            report["error"] = json!(format!("cannot list nodes: {error}"));
            false
        }
    }
}
