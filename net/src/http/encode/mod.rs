//! JSON encoders: internal types to Nomad's server output form, one file per object kind.
//!
//! Field names and shapes follow Nomad's Go structs. Nomad's `Allocation` and `Evaluation`
//! leave out every zero-valued field (a struct-level omitempty in its codec); `omit_empty`
//! reproduces that. Timestamps use `time_value` (RFC 3339 with nanoseconds, `null` when zero).

mod agent;
mod alloc;
mod alloc_metric;
mod eval;
mod job_stub;
mod job_summary;
mod node;
mod plan;

pub use agent::{agent_member, raft_server};
pub use alloc::{alloc_list_stub, allocated_resources, allocation};
pub use alloc_metric::alloc_metric;
pub use eval::evaluation;
pub use job_stub::job_list_stub_typed;
pub use job_summary::job_summary;
pub use node::{node, node_list_stub};
pub use plan::plan_response;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Renders Unix nanoseconds as Go's RFC3339Nano text, or `null` for the zero time.
pub fn time_value(unix_ns: i64) -> Value {
    if unix_ns == 0 {
        return Value::Null;
    }
    Value::String(rfc3339_nano(unix_ns))
}

/// Formats Unix nanoseconds as `2006-01-02T15:04:05.999999999Z` (trailing zeros trimmed).
pub fn rfc3339_nano(unix_ns: i64) -> String {
    let secs = unix_ns.div_euclid(1_000_000_000);
    let nanos = unix_ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let day_secs = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut text = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        day_secs / 3600,
        (day_secs / 60) % 60,
        day_secs % 60
    );
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('Z');
    text
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's days-to-civil algorithm, eras of 400 years.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Drops every top-level field whose value is zero or empty, like Nomad's omitempty structs.
pub fn omit_empty(mut value: Value) -> Value {
    if let Some(map) = value.as_object_mut() {
        map.retain(|_, v| !is_empty_value(v));
    }
    value
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Renders a string map; Go encodes a nil map as `null`, which is how drover stores "none".
pub(crate) fn string_map(map: &BTreeMap<String, String>) -> Value {
    if map.is_empty() {
        return Value::Null;
    }
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// Renders a map of numbers, `null` when empty.
pub(crate) fn number_map<T: Into<Value> + Copy>(map: &BTreeMap<String, T>) -> Value {
    number_pairs(map.iter())
}

/// Renders `(name, number)` pairs as a JSON object, or null when there are none.
pub(crate) fn number_pairs<'a, T: Into<Value> + Copy + 'a>(
    pairs: impl IntoIterator<Item = (&'a String, &'a T)>,
) -> Value {
    let map: Map<_, _> = pairs
        .into_iter()
        .map(|(k, v)| (k.clone(), (*v).into()))
        .collect();
    if map.is_empty() {
        Value::Null
    } else {
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_like_go() {
        assert_eq!(time_value(0), Value::Null);
        assert_eq!(rfc3339_nano(1_000_000_000), "1970-01-01T00:00:01Z");
        assert_eq!(
            rfc3339_nano(1_700_000_000_123_000_000),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            rfc3339_nano(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
    }

    #[test]
    fn omit_empty_drops_zero_values_only_at_top_level() {
        let v = serde_json::json!({"A": "", "B": 0, "C": false, "D": null, "E": [], "F": {},
            "G": "x", "H": {"I": 0}});
        assert_eq!(omit_empty(v), serde_json::json!({"G": "x", "H": {"I": 0}}));
    }
}
