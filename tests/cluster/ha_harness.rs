//! Multi-server clusters of real `drover` processes on 127.0.0.1: each server has its own
//! temporary data dir and fixed ports, so it can be killed and restarted in place.

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{drover_agent, free_port};

/// An HTTP answer: status, headers (lower-case names) and body.
pub type FullResponse = (u16, Vec<(String, String)>, String);

/// One server process of a test cluster.
pub struct Server {
    pub name: String,
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub http: u16,
    pub rpc: u16,
    pub serf: u16,
    /// HCL appended to the generated config.
    pub hcl: String,
    pub args: Vec<String>,
}

impl Server {
    /// Prepares (does not start) a server named `name`.
    pub fn new(name: &str) -> Server {
        Server {
            name: name.to_string(),
            child: None,
            dir: tempfile::tempdir().unwrap(),
            http: free_port(),
            rpc: free_port(),
            serf: free_port(),
            hcl: String::new(),
            args: Vec::new(),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn raft_dir(&self) -> PathBuf {
        self.data_dir().join("server").join("raft")
    }

    pub fn rpc_addr(&self) -> String {
        format!("127.0.0.1:{}", self.rpc)
    }

    pub fn serf_addr(&self) -> String {
        format!("127.0.0.1:{}", self.serf)
    }

    /// (Re)starts the process on the same data dir and ports.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let config = format!(
            "name = \"{}\"\nbind_addr = \"127.0.0.1\"\ndata_dir = \"{}\"\nports {{\n  http = {}\n  rpc = {}\n  serf = {}\n}}\n{}\n",
            self.name,
            self.data_dir().display(),
            self.http,
            self.rpc,
            self.serf,
            self.hcl
        );
        let mut command = drover_agent(self.dir.path(), &config, "-server");
        command
            .arg("-shards")
            .arg("1")
            .args(&self.args)
            .env("DROVER_FAULTS_FILE", self.faults_file());
        self.child = Some(command.spawn().expect("starting drover"));
    }

    fn faults_file(&self) -> PathBuf {
        self.dir.path().join("faults")
    }

    /// Makes this server's calls to the servers at `rpc_addrs` fail (see `net::peer::faults`).
    pub fn block(&self, rpc_addrs: &[String]) {
        std::fs::write(self.faults_file(), rpc_addrs.join("\n")).unwrap();
    }

    /// Lifts every injected fault.
    pub fn heal(&self) {
        std::fs::write(self.faults_file(), "").unwrap();
    }

    /// Kills the process with SIGKILL and waits for it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a signal to the process (SIGSTOP, SIGCONT, SIGINT, ...).
    pub fn signal(&self, signal: i32) {
        if let Some(child) = self.child.as_ref() {
            // SAFETY: kill(2) with a pid we own.
            unsafe {
                libc::kill(child.id() as i32, signal);
            }
        }
    }

    /// Waits for the process to exit by itself and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return status.code();
                }
            } else {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.http, path)
    }

    /// GETs a path and decodes JSON; non-2xx is an error with the status and body.
    pub fn get(&self, path: &str) -> Result<Value, String> {
        crate::harness::get_json(&self.url(path))
    }

    /// GETs a path and returns (status, headers of interest, body).
    pub fn get_full(&self, path: &str) -> Result<FullResponse, String> {
        let resp = match ureq::get(&self.url(path))
            .timeout(Duration::from_secs(10))
            .call()
        {
            Ok(resp) => resp,
            Err(ureq::Error::Status(_, resp)) => resp,
            Err(e) => return Err(e.to_string()),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .filter_map(|n| {
                resp.header(&n)
                    .map(|v| (n.to_ascii_lowercase(), v.to_string()))
            })
            .collect();
        Ok((status, headers, resp.into_string().unwrap_or_default()))
    }

    /// Sends a body with `method`; returns (status, body) or the transport error.
    pub fn send(&self, method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
        let req = ureq::request(method, &self.url(path)).timeout(Duration::from_secs(15));
        match req.send_string(body) {
            Ok(resp) => Ok((resp.status(), resp.into_string().unwrap_or_default())),
            Err(ureq::Error::Status(code, resp)) => {
                Ok((code, resp.into_string().unwrap_or_default()))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// The leader's RPC address as this server reports it ("" when none).
    pub fn leader(&self) -> String {
        self.get("/v1/status/leader")
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A stopped process would keep the test waiting at exit.
        self.signal(libc::SIGCONT);
        self.kill9();
    }
}

/// A cluster of servers that found each other with `retry_join` and `bootstrap_expect`.
pub struct Servers {
    pub servers: Vec<Server>,
}

impl Servers {
    /// Starts `n` servers with `bootstrap_expect = n`, each retry-joining all the others, and
    /// waits for a leader that every server agrees on. `extra` is appended to each `server {}`
    /// block; `top` is appended at the top level of each config.
    pub fn start(n: usize, extra: &str, top: &str) -> Servers {
        let mut cluster = Servers::prepare(n, extra, top);
        cluster.spawn_all();
        cluster.wait_for_leader(Duration::from_secs(60));
        cluster
    }

    /// Like `start`, but only writes the configurations: set `args` (e.g. `-dev-nodes`) on
    /// some servers, then `spawn_all`.
    pub fn prepare(n: usize, extra: &str, top: &str) -> Servers {
        let mut servers: Vec<Server> = (0..n).map(|i| Server::new(&format!("s{i}"))).collect();
        let serfs: Vec<String> = servers
            .iter()
            .map(|s| format!("\"{}\"", s.serf_addr()))
            .collect();
        for s in &mut servers {
            s.hcl = format!(
                "server {{\n  enabled = true\n  bootstrap_expect = {n}\n  server_join {{\n    retry_join = [{}]\n    retry_interval = \"1s\"\n  }}\n{extra}\n}}\n{top}\n",
                serfs.join(", ")
            );
        }
        Servers { servers }
    }

    /// Spawns every server that is not running.
    pub fn spawn_all(&mut self) {
        for s in &mut self.servers {
            if s.child.is_none() {
                s.spawn();
            }
        }
    }

    /// The index of the leader that every server in `among` names (those must be running and
    /// answering; paused or cut-off servers are left out by the caller).
    pub fn leader_among(&self, among: &[usize]) -> Option<usize> {
        let mut seen: Option<String> = None;
        for &i in among {
            let l = self.servers[i].leader();
            if l.is_empty() || seen.as_ref().is_some_and(|prev| *prev != l) {
                return None;
            }
            seen = Some(l);
        }
        let leader = seen?;
        among
            .iter()
            .copied()
            .find(|&i| self.servers[i].rpc_addr() == leader)
    }

    /// Waits until every running server names the same, non-empty leader; returns its index.
    pub fn wait_for_leader(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.agreed_leader() {
                return i;
            }
            if Instant::now() > deadline {
                panic!("no agreed leader\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The index of the leader when every server that answers names it.
    pub fn agreed_leader(&self) -> Option<usize> {
        let mut seen: Option<String> = None;
        for s in &self.servers {
            if s.child.is_none() {
                continue;
            }
            let l = s.leader();
            if l.is_empty() {
                return None;
            }
            match &seen {
                None => seen = Some(l),
                Some(prev) if *prev != l => return None,
                Some(_) => {}
            }
        }
        let leader = seen?;
        self.servers
            .iter()
            .position(|s| s.rpc_addr() == leader && s.child.is_some())
    }

    /// Cuts server `i` off from every other server, in both directions.
    pub fn isolate(&self, i: usize) {
        let others: Vec<String> = (0..self.servers.len())
            .filter(|j| *j != i)
            .map(|j| self.servers[j].rpc_addr())
            .collect();
        self.servers[i].block(&others);
        for j in (0..self.servers.len()).filter(|j| *j != i) {
            self.servers[j].block(&[self.servers[i].rpc_addr()]);
        }
    }

    /// Heals every injected fault.
    pub fn heal_all(&self) {
        for s in &self.servers {
            s.heal();
        }
    }

    /// Every server's log, labelled.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for s in &self.servers {
            let log = s.log();
            let tail: String = log
                .lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            out.push_str(&format!("--- {} ---\n{tail}\n", s.name));
        }
        out
    }

    /// Polls `f` until it returns `Some` or `timeout` passes.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&Servers) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Registers `hcl` through server `s` (parse, then register); returns the HTTP status and body.
pub fn register_hcl(s: &Server, hcl: &str) -> Result<(u16, String), String> {
    let body = serde_json::json!({ "JobHCL": hcl, "Canonicalize": true }).to_string();
    let (code, job) = s.send("POST", "/v1/jobs/parse", &body)?;
    if code != 200 {
        return Ok((code, job));
    }
    let job: Value = serde_json::from_str(&job).map_err(|e| e.to_string())?;
    s.send(
        "PUT",
        "/v1/jobs",
        &serde_json::json!({ "Job": job }).to_string(),
    )
}

/// A batch job small enough that many fit anywhere.
pub fn tiny_job(name: &str, count: u32) -> String {
    format!(
        r#"job "{name}" {{
  datacenters = ["dc1"]
  type = "service"
  group "g" {{
    count = {count}
    task "t" {{
      driver = "raw_exec"
      config {{
        command = "/bin/true"
      }}
      resources {{
        cpu    = 10
        memory = 10
      }}
    }}
  }}
}}"#
    )
}
