//! Starts and stops real `drover` processes on 127.0.0.1 with temporary data dirs.
//!
//! Every process a test starts is killed when its `Agent` is dropped, also when the test fails.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Returns the path of a binary built from this workspace (`drover`, `drover-loadgen`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/cluster-<hash> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`cargo build --bins`)",
        path.display()
    );
    path
}

/// Returns a port that was free a moment ago for both TCP and UDP (serf ports are UDP), and
/// that this test process never handed out before: tests run in parallel, and two of them
/// could otherwise be given the same port before either binds it.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// GETs a URL and decodes JSON; non-2xx is an error with the status and body.
pub fn get_json(url: &str) -> Result<Value, String> {
    match ureq::get(url).timeout(Duration::from_secs(10)).call() {
        Ok(resp) => resp.into_json::<Value>().map_err(|e| e.to_string()),
        Err(ureq::Error::Status(code, resp)) => Err(format!(
            "{code}: {}",
            resp.into_string().unwrap_or_default()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes `config` to `<dir>/agent.hcl` and returns `drover agent <mode> -config <that>` with
/// its output appended to `<dir>/agent.log`; the caller adds flags and spawns it.
pub fn drover_agent(dir: &Path, config: &str, mode: &str) -> Command {
    let path = dir.join("agent.hcl");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(config.as_bytes())
        .unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("agent.log"))
        .unwrap();
    let mut command = Command::new(bin("drover"));
    command
        .arg("agent")
        .arg(mode)
        .arg("-config")
        .arg(path)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log));
    command
}

/// A running agent.
pub struct Agent {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub http: u16,
    pub rpc: u16,
    pub extra_hcl: String,
    pub args: Vec<String>,
}

impl Agent {
    /// Starts a dev agent with `dev_nodes` simulated nodes and `extra_hcl` appended to its
    /// config file (e.g. a `server {}` block).
    pub fn start(dev_nodes: usize, extra_hcl: &str) -> Agent {
        Agent::start_with(dev_nodes, extra_hcl, &[])
    }

    /// Like `start`, with extra command-line flags.
    pub fn start_with(dev_nodes: usize, extra_hcl: &str, args: &[&str]) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let mut agent = Agent {
            child: None,
            dir,
            http: free_port(),
            rpc: free_port(),
            extra_hcl: extra_hcl.to_string(),
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        agent.args.push("-dev-nodes".into());
        agent.args.push(dev_nodes.to_string());
        agent.spawn();
        agent.wait_ready();
        if dev_nodes > 0 {
            // Nodes register once the server leads; tests count on all of them.
            agent.wait_for("dev nodes to register", Duration::from_secs(30), |a| {
                let nodes = a.get("/v1/nodes").ok()?;
                let ready = nodes
                    .as_array()?
                    .iter()
                    .filter(|n| n["Status"] == "ready")
                    .count();
                (ready >= dev_nodes).then_some(())
            });
        }
        agent
    }

    /// (Re)starts the process on the same data dir and ports.
    pub fn spawn(&mut self) {
        let config = format!(
            "name = \"test\"\ndata_dir = \"{}\"\nports {{\n  http = {}\n  rpc = {}\n  serf = {}\n}}\n{}\n",
            self.dir.path().join("data").display(),
            self.http,
            self.rpc,
            free_port(),
            self.extra_hcl
        );
        let mut command = drover_agent(self.dir.path(), &config, "-dev");
        command.args(&self.args).arg("-shards").arg("2");
        self.child = Some(command.spawn().expect("starting drover"));
    }

    /// Waits until the agent answers and has a leader.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("drover exited early ({status}):\n{}", self.log());
                }
            }
            if let Ok(leader) = self.get("/v1/status/leader") {
                if leader.as_str().is_some_and(|s| !s.is_empty()) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("drover did not become ready:\n{}", self.log());
    }

    /// Returns the agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// Kills the process with SIGKILL and waits for it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.http, path)
    }

    /// GETs a path and decodes JSON; non-2xx is an error with the status and body.
    pub fn get(&self, path: &str) -> Result<Value, String> {
        get_json(&self.url(path))
    }

    /// Sends a body with `method` and returns (status, body text).
    pub fn send(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let req = ureq::request(method, &self.url(path)).timeout(Duration::from_secs(10));
        match req.send_string(body) {
            Ok(resp) => (resp.status(), resp.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(code, resp)) => (code, resp.into_string().unwrap_or_default()),
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    /// Registers a job given as HCL through the parse endpoint, returning the register reply.
    pub fn run_hcl(&self, hcl: &str) -> Value {
        let body = serde_json::json!({ "JobHCL": hcl, "Canonicalize": true }).to_string();
        let (code, job) = self.send("POST", "/v1/jobs/parse", &body);
        assert_eq!(code, 200, "parse failed: {job}");
        let job: Value = serde_json::from_str(&job).unwrap();
        let (code, reply) = self.send(
            "PUT",
            "/v1/jobs",
            &serde_json::json!({ "Job": job }).to_string(),
        );
        assert_eq!(code, 200, "register failed: {reply}");
        serde_json::from_str(&reply).unwrap()
    }

    /// Polls `f` until it returns `Some` or `timeout` passes.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&Agent) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}\n--- agent log ---\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Returns the allocations of a job.
    pub fn job_allocs(&self, job: &str) -> Vec<Value> {
        self.get(&format!("/v1/job/{job}/allocations"))
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Counts allocations with the given client status and desired status "run".
pub fn count_running(allocs: &[Value]) -> usize {
    allocs
        .iter()
        .filter(|a| a["ClientStatus"] == "running" && a["DesiredStatus"] == "run")
        .count()
}

/// A small service job with `count` allocations of `cpu` MHz and `memory` MB.
pub fn service_job(name: &str, count: u32, cpu: u32, memory: u32) -> String {
    format!(
        r#"job "{name}" {{
  datacenters = ["dc1"]
  type = "service"
  group "g" {{
    count = {count}
    task "t" {{
      driver = "raw_exec"
      config {{
        command = "/bin/sleep"
        args = ["3600"]
      }}
      resources {{
        cpu = {cpu}
        memory = {memory}
      }}
    }}
  }}
}}
"#
    )
}
