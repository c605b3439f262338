//! The `raft` scenario: the raw replicated commit rate. Three servers of the load generator's
//! own (temporary data dirs, loopback ports, `enable_debug`) take
//! `PUT /v1/operator/raft/write-test` writes from `-submitters` concurrent HTTP clients for
//! `-duration-secs` per payload size; every write is acknowledged only once a quorum has it
//! on disk (fsync). With `-etcd`, a three-member etcd cluster (the `etcd` binary on `PATH`,
//! Debian's etcd-server) is started on loopback and driven the same way through its JSON
//! gateway (`POST /v3/kv/put`), and both are reported side by side.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use super::failover::{drover_binary, free_port, start_three, wait_until};
use super::{http, LoadgenArgs, Report};

/// How long one write may take before it counts as an error.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Keys each etcd writer cycles through (so the keyspace stays small).
const ETCD_KEYS_PER_WRITER: usize = 1_000;

/// Parses `-payloads` ("256,4096") into sizes in bytes.
pub(super) fn payload_sizes(spec: &str) -> anyhow::Result<Vec<usize>> {
    let mut sizes = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let size: usize = part
            .parse()
            .map_err(|_| anyhow!("-payloads: {part:?} is not a size in bytes"))?;
        if size == 0 || size > 1 << 20 {
            bail!("-payloads: {size} must be between 1 and 1048576 bytes");
        }
        sizes.push(size);
    }
    if sizes.is_empty() {
        bail!("-payloads: give at least one size, e.g. 256,4096");
    }
    Ok(sizes)
}

/// What the writers of one run measured.
struct Measured {
    writes: u64,
    errors: u64,
    seconds: f64,
    latency_us: Histogram<u64>,
    /// Highest Raft index a write reported (drover only).
    max_index: u64,
}

impl Measured {
    fn row(&self, size: usize, entries: Option<u64>) -> Value {
        let per_second = self.writes as f64 / self.seconds.max(1e-9);
        let ms = |q: f64| self.latency_us.value_at_quantile(q) as f64 / 1000.0;
        let mut row = json!({
            "payload_bytes": size,
            "writes": self.writes,
            "errors": self.errors,
            "seconds": self.seconds,
            "writes_per_second": per_second,
            "mb_per_second": per_second * size as f64 / 1e6,
            "write_p50_ms": ms(0.5),
            "write_p99_ms": ms(0.99),
        });
        // A drover log entry carries every write that arrived while earlier entries were
        // replicating; etcd appends one entry per put.
        let entries = entries.unwrap_or(self.writes);
        row["entries"] = json!(entries);
        row["entries_per_second"] = json!(entries as f64 / self.seconds.max(1e-9));
        row
    }
}

/// Runs `writers` threads that call `write(agent, writer, n)` until `duration` has passed.
/// `write` returns the Raft index the write reported (0 if the system reports none).
fn drive(
    writers: usize,
    duration: Duration,
    write: impl Fn(&ureq::Agent, usize, u64) -> anyhow::Result<u64> + Send + Sync + 'static,
) -> Measured {
    let write = Arc::new(write);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let write = write.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let agent = http::agent(WRITE_TIMEOUT);
                let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                    .expect("histogram bounds are valid");
                let (mut writes, mut errors, mut max_index) = (0u64, 0u64, 0u64);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match write(&agent, w, n) {
                        Ok(index) => {
                            writes += 1;
                            max_index = max_index.max(index);
                            let _ = latency.record(t.elapsed().as_micros().max(1) as u64);
                        }
                        Err(_) => errors += 1,
                    }
                    n += 1;
                }
                (writes, errors, max_index, latency)
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let mut total = Measured {
        writes: 0,
        errors: 0,
        seconds: 0.0,
        latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
        max_index: 0,
    };
    for t in threads {
        let (writes, errors, max_index, latency) = t.join().expect("writer thread panicked");
        total.writes += writes;
        total.errors += errors;
        total.max_index = total.max_index.max(max_index);
        let _ = total.latency_us.add(&latency);
    }
    total.seconds = started.elapsed().as_secs_f64();
    total
}

fn drover_write(agent: &ureq::Agent, url: &str, payload: &[u8]) -> anyhow::Result<u64> {
    let reply: Value = agent
        .put(url)
        .set("Content-Type", "application/octet-stream")
        .send_bytes(payload)?
        .into_json()?;
    reply["Index"]
        .as_u64()
        .ok_or_else(|| anyhow!("write-test reply without Index: {reply}"))
}

/// Measures drover's three servers, one row per payload size.
fn measure_drover(args: &LoadgenArgs, sizes: &[usize]) -> anyhow::Result<Value> {
    let drover = drover_binary()?;
    let root = tempfile::tempdir()?;
    let (servers, leader) = start_three(root.path(), &drover, 0, "enable_debug = true")?;
    let url = format!("{}/v1/operator/raft/write-test", servers[leader].base());
    let mut rows = Map::new();
    for &size in sizes {
        let payload: Arc<[u8]> = vec![b'd'; size].into();
        let agent = http::agent(WRITE_TIMEOUT);
        let first = drover_write(&agent, &url, &payload)
            .context("the leader refused the first write-test write")?;
        let target = url.clone();
        let measured = drive(
            args.submitters,
            Duration::from_secs(args.duration_secs),
            move |agent, _, _| drover_write(agent, &target, &payload),
        );
        let entries = measured.max_index.saturating_sub(first);
        rows.insert(size.to_string(), measured.row(size, Some(entries)));
    }
    drop(servers);
    Ok(Value::Object(rows))
}

/// A three-member etcd cluster on loopback; the processes are killed when it is dropped.
struct Etcd {
    children: Vec<Child>,
    clients: Vec<String>,
    dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Finds `etcd` on `PATH`.
fn etcd_binary() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!("-etcd: no etcd binary on PATH; install Debian's etcd-server (apt-get install etcd-server)")
        })
}

impl Etcd {
    fn start(binary: &Path) -> anyhow::Result<Etcd> {
        let dir = tempfile::tempdir()?;
        let mut ports = Vec::new();
        for _ in 0..3 {
            ports.push((free_port()?, free_port()?));
        }
        let cluster: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("e{i}=http://127.0.0.1:{peer}"))
            .collect();
        let mut etcd = Etcd {
            children: Vec::new(),
            clients: Vec::new(),
            dir,
        };
        for (i, (client, peer)) in ports.iter().enumerate() {
            let log = std::fs::File::create(etcd.dir.path().join(format!("e{i}.log")))?;
            let child = Command::new(binary)
                .arg("--name")
                .arg(format!("e{i}"))
                .arg("--data-dir")
                .arg(etcd.dir.path().join(format!("e{i}")))
                .arg("--listen-client-urls")
                .arg(format!("http://127.0.0.1:{client}"))
                .arg("--advertise-client-urls")
                .arg(format!("http://127.0.0.1:{client}"))
                .arg("--listen-peer-urls")
                .arg(format!("http://127.0.0.1:{peer}"))
                .arg("--initial-advertise-peer-urls")
                .arg(format!("http://127.0.0.1:{peer}"))
                .arg("--initial-cluster")
                .arg(cluster.join(","))
                .arg("--initial-cluster-token")
                .arg("drover-loadgen")
                .arg("--initial-cluster-state")
                .arg("new")
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .with_context(|| format!("starting {}", binary.display()))?;
            etcd.children.push(child);
            etcd.clients.push(format!("http://127.0.0.1:{client}"));
        }
        Ok(etcd)
    }

    /// The client URL of the member that leads, once one does.
    fn leader(&self) -> Option<String> {
        let agent = http::agent(Duration::from_secs(2));
        for url in &self.clients {
            let status: Value = agent
                .post(&format!("{url}/v3/maintenance/status"))
                .send_json(json!({}))
                .ok()?
                .into_json()
                .ok()?;
            let leader = status["leader"].as_str().unwrap_or_default();
            if !leader.is_empty() && leader == status["header"]["member_id"].as_str().unwrap_or("")
            {
                return Some(url.clone());
            }
        }
        None
    }
}

/// Measures a local etcd cluster the same way, one row per payload size.
fn measure_etcd(args: &LoadgenArgs, sizes: &[usize]) -> anyhow::Result<Value> {
    let binary = etcd_binary()?;
    let etcd = Etcd::start(&binary)?;
    let leader = wait_until("the etcd cluster to elect a leader", || etcd.leader())?;
    let url = format!("{leader}/v3/kv/put");
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut rows = Map::new();
    for &size in sizes {
        let value = Arc::new(b64.encode(vec![b'd'; size]));
        let keys: Arc<Vec<Vec<String>>> = Arc::new(
            (0..args.submitters)
                .map(|w| {
                    (0..ETCD_KEYS_PER_WRITER)
                        .map(|k| b64.encode(format!("bench/{size}/{w}/{k}")))
                        .collect()
                })
                .collect(),
        );
        let target = url.clone();
        let put = move |agent: &ureq::Agent, w: usize, n: u64| -> anyhow::Result<u64> {
            let key = &keys[w][n as usize % ETCD_KEYS_PER_WRITER];
            let reply: Value = agent
                .post(&target)
                .send_json(json!({ "key": key, "value": &*value }))?
                .into_json()?;
            if reply.get("header").is_none() {
                bail!("etcd put reply without header: {reply}");
            }
            Ok(0)
        };
        put(&http::agent(WRITE_TIMEOUT), 0, 0).context("etcd refused the first put")?;
        let measured = drive(
            args.submitters,
            Duration::from_secs(args.duration_secs),
            put,
        );
        rows.insert(size.to_string(), measured.row(size, None));
    }
    Ok(Value::Object(rows))
}

pub(super) fn run(args: &LoadgenArgs) -> anyhow::Result<Report> {
    let sizes = payload_sizes(&args.payloads)?;
    // Look for etcd before spending the drover run.
    if args.etcd {
        etcd_binary()?;
    }
    let drover = measure_drover(args, &sizes)?;
    let etcd = if args.etcd {
        Some(measure_etcd(args, &sizes)?)
    } else {
        None
    };
    let mut ratio = Map::new();
    if let Some(etcd) = &etcd {
        for size in &sizes {
            let key = size.to_string();
            let d = drover[&key]["writes_per_second"].as_f64().unwrap_or(0.0);
            let e = etcd[&key]["writes_per_second"].as_f64().unwrap_or(0.0);
            if e > 0.0 {
                ratio.insert(key, json!(d / e));
            }
        }
    }
    let json = json!({
        "scenario": "raft",
        "params": {"submitters": args.submitters, "duration_secs": args.duration_secs,
                   "payloads": sizes},
        "drover": drover,
        "etcd": etcd,
        "drover_over_etcd_writes": Value::Object(ratio),
    });
    let completed = sizes.iter().all(|s| {
        json["drover"][s.to_string()]["writes"]
            .as_u64()
            .unwrap_or(0)
            > 0
    });
    Ok(Report { json, completed })
}

#[cfg(test)]
mod raft_test {
    use super::payload_sizes;

    #[test]
    fn payload_sizes_parse_and_name_the_flag_when_wrong() {
        assert_eq!(payload_sizes("256,4096").unwrap(), vec![256, 4096]);
        assert_eq!(payload_sizes(" 512 ").unwrap(), vec![512]);
        for bad in ["", "0", "abc", "2000000"] {
            let err = payload_sizes(bad).unwrap_err().to_string();
            assert!(err.starts_with("-payloads:"), "{bad:?}: {err}");
        }
    }
}
