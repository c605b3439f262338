//! `drover-loadgen`: simulated fleet and job submitters against a running drover server.

use std::process::ExitCode;

use clap::Parser;
use tools::loadgen::{nomad_style_args, run, LoadgenArgs};

#[global_allocator]
static GLOBAL: tools::allocator::Mimalloc = tools::allocator::Mimalloc;

fn main() -> ExitCode {
    tools::allocator::tune();
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DROVER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    let args = match LoadgenArgs::try_parse_from(nomad_style_args(std::env::args())) {
        Ok(args) => args,
        Err(error) => error.exit(),
    };
    match run(args) {
        Ok(report) => {
            println!("{}", report.json);
            if report.completed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Err(error) => {
            eprintln!("drover-loadgen: {error:#}");
            ExitCode::FAILURE
        }
    }
}
