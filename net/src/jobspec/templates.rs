//! Periodic and parameterized jobs: the `Periodic` and `ParameterizedJob` blocks in and out
//! of Nomad's API JSON with Nomad's validation, and the child job a dispatch request creates.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use sched::structs::{Job, JobStatus, JobType, ParameterizedConfig, PeriodicConfig};
use serde_json::{json, Map, Value};

use super::convert::{field, Reader};
use super::{FieldError, JobspecError};

/// Payload requirements a parameterized job may state.
pub const PAYLOAD_MODES: [&str; 3] = ["optional", "required", "forbidden"];
/// The largest dispatch payload Nomad accepts, in bytes (`DispatchPayloadSizeLimit`).
pub const DISPATCH_PAYLOAD_BYTES_MAX: usize = 16 * 1024;
/// What separates a dispatched child's ID from its parent's (Nomad's `DispatchLaunchSuffix`).
pub const DISPATCH_LAUNCH_SUFFIX: &str = "/dispatch-";

fn allows_templates(job_type: JobType) -> bool {
    matches!(job_type, JobType::Batch | JobType::SysBatch)
}

impl Reader {
    /// Reads and validates `Job.Periodic`. Like Nomad, a disabled block is not validated.
    pub(super) fn periodic(
        &mut self,
        j: &Map<String, Value>,
        path: &str,
        job_type: JobType,
    ) -> Option<PeriodicConfig> {
        let p = self.object(j, "Periodic", path)?;
        let path = format!("{path}.Periodic");
        let enabled = match field(p, "Enabled") {
            None => true,
            Some(_) => self.boolean(p, "Enabled", &path),
        };
        let mut spec_type = self.string(p, "SpecType", &path);
        if spec_type.is_empty() {
            spec_type = "cron".into();
        }
        let spec = self.string(p, "Spec", &path);
        let mut crons = self.strings(p, "Specs", &path);
        if crons.is_empty() && !spec.is_empty() {
            crons.push(spec);
        }
        let mut time_zone = self.string(p, "TimeZone", &path);
        if time_zone.is_empty() {
            time_zone = "UTC".into();
        }
        let config = PeriodicConfig {
            enabled,
            spec_type,
            crons,
            prohibit_overlap: self.boolean(p, "ProhibitOverlap", &path),
            time_zone,
        };
        if config.enabled {
            self.validate_periodic(&config, &path, job_type);
        }
        Some(config)
    }

    fn validate_periodic(&mut self, config: &PeriodicConfig, path: &str, job_type: JobType) {
        if !allows_templates(job_type) {
            self.error(
                path,
                "Periodic can only be used with \"batch\" or \"sysbatch\" scheduler",
            );
        }
        if config.spec_type != "cron" {
            self.error(
                &format!("{path}.SpecType"),
                format!("Unknown periodic specification type {:?}", config.spec_type),
            );
        }
        if config.crons.is_empty() {
            self.error(&format!("{path}.Spec"), "Must specify a spec");
        }
        for (i, cron) in config.crons.iter().enumerate() {
            if let Err(e) = engine::server::periodic::parse_cron(cron) {
                self.error(
                    &format!("{path}.Specs[{i}]"),
                    format!("Invalid cron spec {cron:?}: {e}"),
                );
            }
        }
        if let Err(e) = engine::server::periodic::parse_time_zone(&config.time_zone) {
            self.error(
                &format!("{path}.TimeZone"),
                format!("Invalid time zone {:?}: {e}", config.time_zone),
            );
        }
    }

    /// Reads and validates `Job.ParameterizedJob`.
    pub(super) fn parameterized(
        &mut self,
        j: &Map<String, Value>,
        path: &str,
        job_type: JobType,
    ) -> Option<ParameterizedConfig> {
        let p = self.object(j, "ParameterizedJob", path)?;
        let path = format!("{path}.ParameterizedJob");
        let mut payload = self.string(p, "Payload", &path);
        if payload.is_empty() {
            payload = "optional".into();
        }
        let config = ParameterizedConfig {
            payload,
            meta_required: self.strings(p, "MetaRequired", &path),
            meta_optional: self.strings(p, "MetaOptional", &path),
        };
        if !allows_templates(job_type) {
            self.error(
                &path,
                "Parameterized job can only be used with \"batch\" or \"sysbatch\" scheduler",
            );
        }
        if !PAYLOAD_MODES.contains(&config.payload.as_str()) {
            self.error(
                &format!("{path}.Payload"),
                format!(
                    "Unknown payload requirement: {:?} (must be one of optional, required, forbidden)",
                    config.payload
                ),
            );
        }
        let required: BTreeSet<&String> = config.meta_required.iter().collect();
        let both: Vec<&str> = config
            .meta_optional
            .iter()
            .filter(|k| required.contains(k))
            .map(String::as_str)
            .collect();
        if !both.is_empty() {
            self.error(
                &format!("{path}.MetaOptional"),
                format!(
                    "Required and optional meta keys should be disjoint. Following keys exist in both: {both:?}"
                ),
            );
        }
        Some(config)
    }

    /// Reads `Job.Payload`: base64 text, as Go encodes a byte slice.
    pub(super) fn payload(&mut self, j: &Map<String, Value>, path: &str) -> Vec<u8> {
        let text = self.string(j, "Payload", path);
        match decode_payload(&text) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.error(&format!("{path}.Payload"), e);
                Vec::new()
            }
        }
    }
}

/// Decodes a base64 payload; empty text is an empty payload.
pub fn decode_payload(text: &str) -> Result<Vec<u8>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("payload is not valid base64: {e}"))
}

/// Renders the `Periodic` block: `Spec` holds the expression when there is one, and `Specs`
/// always holds the full list.
pub(super) fn periodic_json(p: Option<&PeriodicConfig>) -> Value {
    let Some(p) = p else {
        return Value::Null;
    };
    let spec = if p.crons.len() == 1 {
        p.crons[0].clone()
    } else {
        String::new()
    };
    json!({
        "Enabled": p.enabled,
        "Spec": spec,
        "Specs": p.crons,
        "SpecType": p.spec_type,
        "ProhibitOverlap": p.prohibit_overlap,
        "TimeZone": p.time_zone,
    })
}

/// Renders the `ParameterizedJob` block.
pub(super) fn parameterized_json(p: Option<&ParameterizedConfig>) -> Value {
    let Some(p) = p else {
        return Value::Null;
    };
    let list = |v: &Vec<String>| {
        if v.is_empty() {
            Value::Null
        } else {
            json!(v)
        }
    };
    json!({
        "Payload": p.payload,
        "MetaRequired": list(&p.meta_required),
        "MetaOptional": list(&p.meta_optional),
    })
}

/// Renders a payload as base64, or null when empty.
pub(super) fn payload_json(payload: &[u8]) -> Value {
    if payload.is_empty() {
        Value::Null
    } else {
        Value::String(base64::engine::general_purpose::STANDARD.encode(payload))
    }
}

/// A dispatch request (`POST /v1/job/:id/dispatch`), decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DispatchRequest {
    pub payload: Vec<u8>,
    pub meta: BTreeMap<String, String>,
    pub idempotency_token: String,
}

fn dispatch_error(path: &str, message: String) -> JobspecError {
    JobspecError {
        errors: vec![FieldError {
            path: path.to_string(),
            line: None,
            message,
        }],
    }
}

/// Checks a dispatch request against its parameterized job and returns the child job:
/// `<parent>/dispatch-<unix seconds>-<suffix>`, dispatched, with the request's meta merged
/// over the parent's and the payload stored. `suffix` is 8 random hex digits.
pub fn dispatch_child(
    parent: &Job,
    req: &DispatchRequest,
    now_unix_ns: i64,
    suffix: &str,
) -> Result<Job, JobspecError> {
    let Some(config) = parent.parameterized.as_ref().filter(|_| !parent.dispatched) else {
        return Err(dispatch_error(
            "JobID",
            format!("Specified job {:?} is not a parameterized job", parent.id),
        ));
    };
    if parent.stop {
        return Err(dispatch_error(
            "JobID",
            format!("Specified job {:?} is stopped", parent.id),
        ));
    }
    if req.payload.len() > DISPATCH_PAYLOAD_BYTES_MAX {
        return Err(dispatch_error(
            "Payload",
            format!(
                "Payload exceeds maximum size; {} > {DISPATCH_PAYLOAD_BYTES_MAX}",
                req.payload.len()
            ),
        ));
    }
    match config.payload.as_str() {
        "forbidden" if !req.payload.is_empty() => {
            return Err(dispatch_error(
                "Payload",
                "Payload is not allowed by the parameterized job".into(),
            ))
        }
        "required" if req.payload.is_empty() => {
            return Err(dispatch_error(
                "Payload",
                "Payload is not provided but required by parameterized job".into(),
            ))
        }
        _ => {}
    }
    let unpermitted: Vec<&str> = req
        .meta
        .keys()
        .filter(|k| !config.meta_required.contains(k) && !config.meta_optional.contains(k))
        .map(String::as_str)
        .collect();
    if !unpermitted.is_empty() {
        return Err(dispatch_error(
            "Meta",
            format!("Dispatch request included unpermitted metadata keys: {unpermitted:?}"),
        ));
    }
    let missing: Vec<&str> = config
        .meta_required
        .iter()
        .filter(|k| !req.meta.contains_key(*k))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(dispatch_error(
            "Meta",
            format!("Dispatch did not provide required meta keys: {missing:?}"),
        ));
    }
    let id = format!(
        "{}{DISPATCH_LAUNCH_SUFFIX}{}-{suffix}",
        parent.id,
        now_unix_ns.div_euclid(1_000_000_000)
    );
    let mut child = parent.clone();
    child.name = id.clone();
    child.id = id;
    child.parent_id = parent.id.clone();
    child.dispatched = true;
    child.payload = req.payload.clone();
    child.meta.extend(req.meta.clone());
    child.status = JobStatus::Pending;
    child.status_description = String::new();
    child.stable = false;
    child.version = 0;
    child.submit_time_ns = 0;
    child.create_index = 0;
    child.modify_index = 0;
    child.job_modify_index = 0;
    if !req.idempotency_token.is_empty() {
        let mut extra: Map<String, Value> =
            serde_json::from_str(&child.extra_json).unwrap_or_default();
        extra.insert(
            "DispatchIdempotencyToken".into(),
            Value::String(req.idempotency_token.clone()),
        );
        child.extra_json = Value::Object(extra).to_string();
    }
    Ok(child)
}

/// Returns the child of `parent` dispatched earlier with `token` and not yet dead, if any
/// (Nomad answers a repeated dispatch with that child instead of a new one).
pub fn dispatched_with_token<'a>(
    jobs: impl IntoIterator<Item = &'a Job>,
    parent: &Job,
    token: &str,
) -> Option<&'a Job> {
    if token.is_empty() {
        return None;
    }
    jobs.into_iter().find(|j| {
        j.parent_id == parent.id
            && j.namespace == parent.namespace
            && j.dispatched
            && j.status != JobStatus::Dead
            && serde_json::from_str::<Map<String, Value>>(&j.extra_json)
                .ok()
                .and_then(|m| m.get("DispatchIdempotencyToken").cloned())
                == Some(Value::String(token.to_string()))
    })
}
