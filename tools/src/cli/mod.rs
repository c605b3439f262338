//! The `drover` command tree: Nomad-shaped subcommands that talk to a server over HTTP.
//!
//! Start at `main()`: it normalises Nomad's single-dash long flags, parses with clap and
//! dispatches to one module per command group. Every command returns its process exit code;
//! errors are printed to stderr as `Error <doing what>: <server message>` and exit 1.

pub mod alloc;
#[cfg(test)]
mod cli_test;
pub mod client;
pub mod deployment;
pub mod eval;
pub mod format;
pub mod job;
pub mod job_template;
pub mod job_version;
pub mod node;
pub mod operator;
pub mod resolve;
pub mod server;
pub mod system;
#[cfg(test)]
mod test_server;

use std::collections::BTreeSet;
use std::ffi::OsString;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::agent::AgentArgs;
use client::{ApiClient, ClientConfig, DEFAULT_ADDRESS};

/// Exit code for a command that failed.
pub const EXIT_ERROR: i32 = 1;

/// The `drover` binary's arguments.
#[derive(Parser, Debug)]
#[command(
    name = "drover",
    version,
    about = "Cluster scheduler server and its command line"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Runs a server agent.
    Agent(AgentArgs),
    /// Submits, inspects and stops jobs.
    Job(job::JobCommand),
    /// Lists and inspects client nodes.
    Node(node::NodeCommand),
    /// Inspects allocations.
    Alloc(alloc::AllocCommand),
    /// Inspects evaluations.
    Eval(eval::EvalCommand),
    /// Inspects the servers of the cluster.
    Server(server::ServerCommand),
    /// Operator tools (Raft peers).
    Operator(operator::OperatorCommand),
    /// Lists jobs, or shows one job's status.
    Status(job::StatusCommand),
    /// Inspects and steers deployments.
    Deployment(deployment::DeploymentCommand),
    /// System maintenance (garbage collection).
    System(system::SystemCommand),
}

/// Connection flags accepted by every command that talks to a server.
#[derive(Args, Debug, Clone, Default)]
pub struct ApiArgs {
    /// Address of the server's HTTP API (also NOMAD_ADDR or DROVER_ADDR).
    #[arg(long, global = true, env = "NOMAD_ADDR", value_name = "ADDR")]
    pub address: Option<String>,
    /// Region to send the request to.
    #[arg(long, global = true, env = "NOMAD_REGION")]
    pub region: Option<String>,
    /// Namespace to act in.
    #[arg(long, global = true, env = "NOMAD_NAMESPACE")]
    pub namespace: Option<String>,
    /// ACL token (sent as X-Nomad-Token).
    #[arg(long, global = true, env = "NOMAD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl ApiArgs {
    /// Returns the client configuration: flag, then NOMAD_ADDR, then DROVER_ADDR, then default.
    pub fn config(&self) -> ClientConfig {
        let address = self
            .address
            .clone()
            .or_else(|| std::env::var("DROVER_ADDR").ok().filter(|a| !a.is_empty()))
            .unwrap_or_else(|| DEFAULT_ADDRESS.to_string());
        ClientConfig {
            address,
            token: self.token.clone(),
            region: self.region.clone(),
            namespace: self.namespace.clone(),
        }
    }

    /// Builds an HTTP client from these flags.
    pub fn client(&self) -> ApiClient {
        ApiClient::new(self.config())
    }
}

/// Runs the CLI with the process arguments and returns the exit code.
pub fn main() -> i32 {
    run(std::env::args_os().collect())
}

/// Parses `argv` (including the program name), runs the command and returns the exit code.
pub fn run(argv: Vec<OsString>) -> i32 {
    let known = long_flag_names(&Cli::command());
    let argv = normalize_args(argv, &known);
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let result = match cli.command {
        Command::Agent(args) => crate::agent::run(args).map(|()| 0),
        Command::Job(cmd) => job::run(cmd),
        Command::Node(cmd) => node::run(cmd),
        Command::Alloc(cmd) => alloc::run(cmd),
        Command::Eval(cmd) => eval::run(cmd),
        Command::Server(cmd) => server::run(cmd),
        Command::Operator(cmd) => operator::run(cmd),
        Command::Status(args) => job::status(&args),
        Command::System(cmd) => system::run(cmd),
        Command::Deployment(cmd) => deployment::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e:#}");
            EXIT_ERROR
        }
    }
}

/// Collects every long flag name defined anywhere in the command tree.
pub fn long_flag_names(cmd: &clap::Command) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    collect_long_flags(cmd, &mut names);
    names.insert("help".to_string());
    names.insert("version".to_string());
    names
}

fn collect_long_flags(cmd: &clap::Command, names: &mut BTreeSet<String>) {
    for arg in cmd.get_arguments() {
        if let Some(long) = arg.get_long() {
            names.insert(long.to_string());
        }
        for alias in arg.get_all_aliases().unwrap_or_default() {
            names.insert(alias.to_string());
        }
    }
    for sub in cmd.get_subcommands() {
        collect_long_flags(sub, names);
    }
}

/// Rewrites Nomad's single-dash long flags (`-json`, `-address=x`) to clap's `--` form.
///
/// An argument is rewritten only when it starts with exactly one dash, its name (the part
/// before any `=`) has at least two characters, and that name is a known long flag. Real short
/// flags (`-h`), negative numbers and values that merely start with a dash are left alone, and
/// nothing after a bare `--` is touched.
pub fn normalize_args(argv: Vec<OsString>, known: &BTreeSet<String>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(argv.len());
    let mut passthrough = false;
    for (i, arg) in argv.into_iter().enumerate() {
        if i == 0 || passthrough {
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        match text.strip_prefix('-') {
            Some(body) if !body.starts_with('-') => {
                let name = body.split('=').next().unwrap_or("");
                if name.chars().count() >= 2 && known.contains(name) {
                    out.push(OsString::from(format!("-{text}")));
                } else {
                    out.push(arg);
                }
            }
            _ => out.push(arg),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalize(args: &[&str]) -> Vec<String> {
        let known = long_flag_names(&Cli::command());
        let argv = std::iter::once("drover")
            .chain(args.iter().copied())
            .map(OsString::from);
        normalize_args(argv.collect(), &known)
            .into_iter()
            .skip(1)
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        assert_eq!(
            normalize(&["job", "status", "-json", "-address=http://x:1", "web"]),
            ["job", "status", "--json", "--address=http://x:1", "web"]
        );
        assert_eq!(
            normalize(&["agent", "-dev", "-config", "a.hcl"]),
            ["agent", "--dev", "--config", "a.hcl"]
        );
    }

    #[test]
    fn short_flags_values_and_passthrough_are_kept() {
        assert_eq!(normalize(&["job", "status", "-h"]), ["job", "status", "-h"]);
        assert_eq!(
            normalize(&["job", "run", "--json", "f"]),
            ["job", "run", "--json", "f"]
        );
        assert_eq!(
            normalize(&["job", "run", "-check-index", "-1"]),
            ["job", "run", "--check-index", "-1"]
        );
        assert_eq!(
            normalize(&["job", "status", "-nosuchflag"]),
            ["job", "status", "-nosuchflag"]
        );
        assert_eq!(
            normalize(&["job", "run", "--", "-json"]),
            ["job", "run", "--", "-json"]
        );
    }

    #[test]
    fn normalized_argv_parses_with_global_flags_after_subcommand() {
        let known = long_flag_names(&Cli::command());
        let argv = [
            "drover",
            "job",
            "status",
            "-address=http://h:9",
            "-json",
            "web",
        ];
        let argv = normalize_args(argv.iter().map(OsString::from).collect(), &known);
        let cli = Cli::try_parse_from(argv).expect("parses");
        let Command::Job(cmd) = cli.command else {
            panic!("expected job command")
        };
        assert_eq!(cmd.api.address.as_deref(), Some("http://h:9"));
    }

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }
}
