//! The `restart` scenario: one real server of the load generator's own (temporary data dir,
//! loopback ports) is filled with `-jobs` × `-count` allocations by the `place` scenario,
//! stopped with SIGTERM and started again; the figure is the time from the new process's
//! start until it serves the whole state again (it leads and lists every job).

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;

use super::failover::{drover_binary, free_port, get};
use super::{LoadgenArgs, Report, Scenario};

/// Longest the restarted server may take to serve again.
const SERVING_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a graceful stop may take before the process is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the server is left without work before its memory is read: past the idle trim
/// (2 s without an applied entry), so the figure is what the server holds at rest and not
/// the free pages of its last burst.
const REST: Duration = Duration::from_secs(6);

/// A server process and the ports it listens on.
struct Server {
    child: Option<Child>,
    http: u16,
}

impl Server {
    fn start(drover: &Path, config: &Path, log: &Path) -> anyhow::Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        Command::new(drover)
            .arg("agent")
            .arg("-server")
            .arg("-config")
            .arg(config)
            .arg("-dev-nodes")
            .arg("0")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", drover.display()))
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends SIGTERM and waits for the exit; kills the process if it takes too long.
    fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // SAFETY: kill(2) on a child we own; a stale pid cannot occur before `wait`.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the server did not stop within {STOP_TIMEOUT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Resident memory of a process in bytes, from `/proc/<pid>/status`.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The duration of the newest snapshot restore the server logged, in milliseconds.
fn snapshot_restore_ms(log: &str) -> Option<u64> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("state restored from the latest snapshot"))?;
    let rest = &line[line.find("elapsed_ms=")? + "elapsed_ms=".len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Jobs the server lists, or `None` while it cannot answer.
fn jobs_listed(base: &str) -> Option<usize> {
    get(base, "/v1/jobs").ok()?.as_array().map(Vec::len)
}

pub(super) fn run(args: &LoadgenArgs) -> anyhow::Result<Report> {
    let drover = drover_binary()?;
    let root = tempfile::tempdir()?;
    let dir = root.path();
    let (http_port, rpc, serf) = (free_port()?, free_port()?, free_port()?);
    let config = dir.join("agent.hcl");
    let log = dir.join("agent.log");
    std::fs::File::create(&config)?.write_all(
        format!(
            "name = \"restart\"\nbind_addr = \"127.0.0.1\"\ndata_dir = \"{}\"\nports {{\n  http = {http_port}\n  rpc = {rpc}\n  serf = {serf}\n}}\nserver {{\n  enabled = true\n  bootstrap_expect = 1\n}}\n",
            dir.join("data").display()
        )
        .as_bytes(),
    )?;
    let mut server = Server {
        child: Some(Server::start(&drover, &config, &log)?),
        http: http_port,
    };
    let base = server.base();
    wait_for(&mut server, &log, SERVING_TIMEOUT, |_| true)
        .context("the server did not come up to be filled")?;

    // Fill it through the place scenario and its simulated fleet.
    let fill = super::run(LoadgenArgs {
        http: base.clone(),
        rpc: format!("127.0.0.1:{rpc}"),
        scenario: Scenario::Place,
        out: None,
        ..args.clone()
    })?;
    if !fill.completed {
        bail!("filling the server failed: {}", fill.json);
    }
    // The fill's figures stand on their own (at the C1M shape they are the C1M figures):
    // keep them even if the restart fails.
    eprintln!("fill: {}", fill.json);
    let jobs = jobs_listed(&base).unwrap_or(0);
    let allocs = fill.json["allocs_placed_seen"].as_u64().unwrap_or(0);
    std::thread::sleep(REST);
    let rss_before = server.pid().and_then(rss_bytes);

    let stopping = Instant::now();
    server.stop()?;
    let seconds_to_stop = stopping.elapsed().as_secs_f64();

    let started = Instant::now();
    server.child = Some(Server::start(&drover, &config, &log)?);
    wait_for(&mut server, &log, SERVING_TIMEOUT, |_| true)?;
    let seconds_to_leader = started.elapsed().as_secs_f64();
    wait_for(&mut server, &log, SERVING_TIMEOUT, |listed| listed >= jobs)?;
    let seconds_to_serving = started.elapsed().as_secs_f64();
    let rss_at_serving = server.pid().and_then(rss_bytes);
    std::thread::sleep(REST);
    let rss_after = server.pid().and_then(rss_bytes);
    let seconds_to_restore_snapshot = std::fs::read_to_string(&log)
        .ok()
        .and_then(|text| snapshot_restore_ms(&text))
        .map(|ms| ms as f64 / 1000.0);
    let per_alloc = |rss: Option<u64>| rss.map(|b| b as f64 / allocs.max(1) as f64);
    let json = json!({
        "scenario": "restart",
        "params": {"nodes": args.nodes, "jobs": args.jobs, "count": args.count,
                   "submitters": args.submitters},
        "allocations": allocs,
        "jobs": jobs,
        "seconds_to_fill": fill.json["seconds_to_all_running"],
        // The fill is a place run; at the C1M shape its figures are the C1M figures.
        "fill": fill.json,
        "seconds_to_stop": seconds_to_stop,
        // Of the time to a leader: reading the latest snapshot into memory (the rest is
        // replaying the log after it and electing).
        "seconds_to_restore_snapshot": seconds_to_restore_snapshot,
        "seconds_to_leader": seconds_to_leader,
        "seconds_to_serving": seconds_to_serving,
        // Memory at rest, `REST` after the fill and after serving again; and right when
        // the restarted server served, with what the restore freed not yet given back.
        "server_rss_bytes_before": rss_before,
        "server_rss_bytes_after_restart": rss_after,
        "server_rss_bytes_at_serving": rss_at_serving,
        "server_rss_bytes_per_alloc_before": per_alloc(rss_before),
        "server_rss_bytes_per_alloc_after_restart": per_alloc(rss_after),
        "server_rss_bytes_per_alloc_at_serving": per_alloc(rss_at_serving),
    });
    server.stop()?;
    Ok(Report {
        json,
        completed: true,
    })
}

/// Waits until the server has a leader and lists a number of jobs `ready` accepts; fails
/// with the end of its log if it exits meanwhile.
fn wait_for(
    server: &mut Server,
    log: &Path,
    timeout: Duration,
    ready: impl Fn(usize) -> bool,
) -> anyhow::Result<()> {
    let base = server.base();
    let base = base.as_str();
    let started = Instant::now();
    loop {
        if let Some(child) = server.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                server.child = None;
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(3).collect();
                bail!(
                    "the server exited ({status}) before it served; its log ends:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
        }
        let leader = get(base, "/v1/status/leader")
            .ok()
            .and_then(|v| v.as_str().map(|s| !s.is_empty()))
            .unwrap_or(false);
        if leader && jobs_listed(base).is_some_and(&ready) {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for the server at {base} to serve");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::snapshot_restore_ms;

    #[test]
    fn the_newest_restore_line_gives_the_duration() {
        let log = "2026-12-03T10:00:00Z  INFO engine::server::start: state restored from the latest snapshot elapsed_ms=12\n\
                   2026-12-03T10:05:00Z  INFO engine::server::start: state restored from the latest snapshot elapsed_ms=4567\n\
                   2026-12-03T10:05:01Z  INFO engine::server::start: serving\n";
        assert_eq!(snapshot_restore_ms(log), Some(4567));
        assert_eq!(snapshot_restore_ms("no such line\n"), None);
    }
}
