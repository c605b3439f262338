//! The load generator's HTTP side: job submission threads and the node-status check.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};

/// How long one HTTP request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Returns an HTTP agent with connect and request timeouts.
pub(super) fn agent(timeout: Duration) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(timeout)
        .timeout(timeout)
        .build()
}

/// The shape of the jobs one run submits.
#[derive(Clone, Debug)]
pub(super) struct JobShape {
    /// Job ids are `<id_prefix>-<n>`; the prefix is unique per run so jobs are always new.
    pub id_prefix: String,
    pub datacenter: String,
    pub count: u64,
    pub cpu_mhz: u64,
    pub memory_mb: u64,
}

impl JobShape {
    /// Returns the `PUT /v1/jobs` body of job `n`.
    pub fn body(&self, n: usize) -> Value {
        let id = format!("{}-{n}", self.id_prefix);
        json!({
            "Job": {
                "ID": id,
                "Name": id,
                "Type": "service",
                "Datacenters": [self.datacenter],
                "TaskGroups": [{
                    "Name": "load",
                    "Count": self.count,
                    "Tasks": [{
                        "Name": "sleep",
                        "Driver": "raw_exec",
                        "Config": { "command": "/bin/sleep", "args": ["3600"] },
                        "Resources": { "CPU": self.cpu_mhz, "MemoryMB": self.memory_mb }
                    }]
                }]
            }
        })
    }
}

/// Counters the submitter threads share with the measuring executor.
#[derive(Default)]
pub(super) struct SubmitProgress {
    pub submitted: AtomicU64,
    pub failed: AtomicU64,
    pub threads_done: AtomicUsize,
    /// First error text, for the report.
    pub first_error: std::sync::Mutex<Option<String>>,
}

/// Starts `submitters` threads that together register jobs `0..jobs`.
pub(super) fn start_submitters(
    http_base: &str,
    shape: &JobShape,
    jobs: usize,
    submitters: usize,
    progress: Arc<SubmitProgress>,
) -> Vec<JoinHandle<()>> {
    let submitters = submitters.clamp(1, jobs.max(1));
    (0..submitters)
        .map(|thread_index| {
            let url = format!("{http_base}/v1/jobs");
            let shape = shape.clone();
            let progress = progress.clone();
            std::thread::spawn(move || {
                let agent = agent(REQUEST_TIMEOUT);
                for n in (thread_index..jobs).step_by(submitters) {
                    match agent.put(&url).send_json(shape.body(n)) {
                        Ok(_) => {
                            progress.submitted.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => {
                            progress.failed.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut first) = progress.first_error.lock() {
                                first.get_or_insert_with(|| error.to_string());
                            }
                        }
                    }
                }
                progress.threads_done.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect()
}

/// Counts the nodes among `node_ids` that `GET /v1/nodes` reports as down.
pub(super) fn count_down_nodes(http_base: &str, node_ids: &[String]) -> anyhow::Result<u64> {
    let wanted: std::collections::HashSet<&str> = node_ids.iter().map(String::as_str).collect();
    let nodes: Value = agent(REQUEST_TIMEOUT)
        .get(&format!("{http_base}/v1/nodes"))
        .call()
        .map_err(|error| anyhow::anyhow!("GET /v1/nodes: {error}"))?
        .into_json()?;
    let list = nodes
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("GET /v1/nodes: not a list"))?;
    let down = list
        .iter()
        .filter(|node| node["ID"].as_str().is_some_and(|id| wanted.contains(id)))
        .filter(|node| node["Status"].as_str() == Some("down"))
        .count();
    Ok(down as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_body_carries_shape() {
        let shape = JobShape {
            id_prefix: "lg-1".into(),
            datacenter: "dc9".into(),
            count: 12,
            cpu_mhz: 50,
            memory_mb: 32,
        };
        let body = shape.body(3);
        assert_eq!(body["Job"]["ID"], "lg-1-3");
        assert_eq!(body["Job"]["Datacenters"][0], "dc9");
        assert_eq!(body["Job"]["TaskGroups"][0]["Count"], 12);
        assert_eq!(
            body["Job"]["TaskGroups"][0]["Tasks"][0]["Resources"]["CPU"],
            50
        );
        assert_eq!(
            body["Job"]["TaskGroups"][0]["Tasks"][0]["Resources"]["MemoryMB"],
            32
        );
    }
}
