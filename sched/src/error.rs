//! The one error type of the `sched` crate.

use thiserror::Error;

/// Why a scheduler run could not produce a plan. Capacity shortfalls are not errors: they end
/// up in `SchedOutcome::failed_tg_allocs` and a blocked evaluation.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SchedError {
    /// A constraint, affinity or spread of the job cannot be interpreted.
    #[error("job {job_id}: invalid {field} {value:?}: {reason}")]
    InvalidConstraint {
        job_id: String,
        field: String,
        value: String,
        reason: String,
    },
    /// The evaluation names a job whose type differs from the evaluation's type.
    #[error(
        "evaluation {eval_id}: job type {job_type} does not match evaluation type {eval_type}"
    )]
    JobTypeMismatch {
        eval_id: String,
        job_type: &'static str,
        eval_type: &'static str,
    },
}
