//! Job specifications: Nomad HCL2 job files, Nomad's API JSON job form and the internal `Job`.
//!
//! `parse_hcl` turns a job file into the API JSON job (what `/v1/jobs/parse` returns),
//! `canonicalize` fills Nomad's defaults, `job_from_api` validates and converts to the internal
//! `Job`, and `job_to_api` / `job_list_stub` produce the server output forms.

mod canonical;
mod convert;
mod hcl;
mod templates;

use std::fmt;

use sched::structs::Job;

/// One problem in a job specification, located by line (syntax) or by path
/// (`job.group[web].task[api].resources.cpu`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.path.is_empty()) {
            (Some(line), true) => write!(f, "line {line}: {}", self.message),
            (Some(line), false) => write!(f, "line {line}: {}: {}", self.path, self.message),
            (None, true) => write!(f, "{}", self.message),
            (None, false) => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Every problem found in one job specification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct JobspecError {
    pub errors: Vec<FieldError>,
}

impl fmt::Display for JobspecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Parses a Nomad HCL2 job file into Nomad's API JSON job form (not wrapped in `{"Job":..}`),
/// as `/v1/jobs/parse` with `Canonicalize: false` returns it: unset fields are null,
/// durations are nanoseconds and `${...}` interpolations are left for the client.
pub fn parse_hcl(src: &str) -> Result<serde_json::Value, JobspecError> {
    hcl::parse(src, "")
}

/// Like `parse_hcl`, with a variables file (`name = value` lines, the `Variables` field of
/// `/v1/jobs/parse`) overriding the defaults of the job's `variable` blocks.
pub fn parse_hcl_with_variables(
    src: &str,
    variables: &str,
) -> Result<serde_json::Value, JobspecError> {
    hcl::parse(src, variables)
}

/// Fills Nomad's canonical defaults into an API JSON job in place; unset priorities become
/// `job_default_priority`.
pub fn canonicalize(job: &mut serde_json::Value, job_default_priority: u16) {
    canonical::canonicalize(job, job_default_priority)
}

/// Validates a canonicalised API JSON job and converts it to the internal `Job`, reporting
/// every problem at once with its path (`Job.TaskGroups[web].Tasks[api].Driver`).
/// `priority_bounds` is `(default, max)` of the server's job priority settings.
pub fn job_from_api(
    job: &serde_json::Value,
    priority_bounds: (u16, u16),
) -> Result<Job, JobspecError> {
    convert::job_from_api(job, priority_bounds)
}

/// Renders a `Job` in the server output form (`GET /v1/job/:id`): every field present,
/// `Update` never null, unmodelled fields merged back from `extra_json`.
pub fn job_to_api(job: &Job) -> serde_json::Value {
    convert::job_to_api(job)
}

/// Renders a job list stub (`GET /v1/jobs`) with the given job summary JSON.
pub fn job_list_stub(job: &Job, summary_json: serde_json::Value) -> serde_json::Value {
    convert::job_list_stub(job, summary_json)
}

/// The list stub's fields that are not plain job fields: `Multiregion`, and whether
/// `Periodic` and `ParameterizedJob` are set.
pub fn list_stub_extras(job: &Job) -> (serde_json::Value, bool, bool) {
    convert::list_stub_extras(job)
}

#[cfg(test)]
mod jobspec_test;

pub use templates::{
    decode_payload, dispatch_child, dispatched_with_token, DispatchRequest,
    DISPATCH_PAYLOAD_BYTES_MAX,
};
