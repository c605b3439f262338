//! `drover system gc`: asks the servers to garbage-collect dead jobs, evaluations and nodes.

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::ApiArgs;

/// `drover system ...`
#[derive(Args, Debug)]
pub struct SystemCommand {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub sub: SystemSub,
}

/// System subcommands.
#[derive(Subcommand, Debug)]
pub enum SystemSub {
    /// Runs the garbage collector now.
    Gc,
}

/// Runs a `system` subcommand and returns the exit code.
pub fn run(cmd: SystemCommand) -> Result<i32> {
    let client = cmd.api.client();
    match cmd.sub {
        SystemSub::Gc => {
            client
                .put("/v1/system/gc", &[], &Value::Null)
                .map_err(|e| anyhow!("Error running system garbage-collection: {e}"))?;
            Ok(0)
        }
    }
}
