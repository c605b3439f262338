//! Output helpers shaped like Nomad's CLI: aligned tables, `key = value` blocks, short ids, times.

use serde_json::Value;

/// Length of the ids printed when `-verbose` is not given.
pub const SHORT_ID_LENGTH: usize = 8;

/// Returns the first eight characters of an id (the whole id when shorter).
pub fn short_id(id: &str) -> &str {
    match id.char_indices().nth(SHORT_ID_LENGTH) {
        Some((end, _)) => &id[..end],
        None => id,
    }
}

/// Returns `id` shortened unless `verbose` asks for the full form.
pub fn maybe_short(id: &str, verbose: bool) -> &str {
    if verbose {
        id
    } else {
        short_id(id)
    }
}

/// Renders rows (the first is the header) as columns separated by two spaces.
///
/// The last column is not padded, so lines carry no trailing blanks.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                let pad = widths[i] - cell.chars().count() + 2;
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Renders `key = value` lines with the `=` signs aligned, like Nomad's detail views.
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        let pad = width - key.chars().count();
        out.push_str(key);
        out.push_str(&" ".repeat(pad));
        out.push_str(" = ");
        out.push_str(value);
        out.push('\n');
    }
    out
}

/// Returns the string at `key`, or "" when absent or not a string.
pub fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Returns the integer at `key`, or 0 when absent.
pub fn int_field(value: &Value, key: &str) -> i64 {
    value
        .get(key)
        .and_then(|v| v.as_i64().or_else(|| v.as_u64().map(|u| u as i64)))
        .unwrap_or(0)
}

/// Returns the boolean at `key`, or false when absent.
pub fn bool_field(value: &Value, key: &str) -> bool {
    value.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Returns a string that is empty as `<none>`, the way Nomad prints unset fields.
pub fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s.to_string()
    }
}

/// Joins a JSON array of strings with `,`.
pub fn join_strings(value: Option<&Value>) -> String {
    match value.and_then(Value::as_array) {
        Some(items) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        None => String::new(),
    }
}

/// Formats nanoseconds since the Unix epoch as RFC 3339 in UTC (`2024-05-01T10:00:00Z`).
pub fn format_unix_nanos(nanos: i64) -> String {
    format_unix_seconds(nanos.div_euclid(1_000_000_000))
}

/// Formats seconds since the Unix epoch as RFC 3339 in UTC.
pub fn format_unix_seconds(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of each 400-year era.
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

/// Formats how long ago `then_nanos` was, relative to `now_nanos`, like Nomad (`1h5m ago`).
///
/// Only the two most significant units are kept; zero or unset times print as `<none>`.
pub fn time_ago(then_nanos: i64, now_nanos: i64) -> String {
    if then_nanos <= 0 {
        return "<none>".to_string();
    }
    let secs = (now_nanos - then_nanos).max(0) / 1_000_000_000;
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let mut parts = Vec::new();
    let mut left = secs;
    for (size, name) in units {
        if left >= size {
            parts.push(format!("{}{name}", left / size));
            left %= size;
        } else if !parts.is_empty() {
            // Stop at the first empty unit after the leading one: "1h0m" reads as "1h".
            break;
        }
        if parts.len() == 2 {
            break;
        }
    }
    if parts.is_empty() {
        return "0s ago".to_string();
    }
    format!("{} ago", parts.concat())
}

/// Returns the current time in nanoseconds since the Unix epoch.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Pretty-prints JSON with two-space indentation, as `-json` output.
pub fn pretty_json(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// Indents every non-empty line of `text` by `spaces`.
pub fn indent(text: &str, spaces: usize) -> String {
    let pad = " ".repeat(spaces);
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if text.ends_with('\n') { "\n" } else { "" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_id_cuts_to_eight() {
        assert_eq!(short_id("0123456789abcdef"), "01234567");
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(maybe_short("0123456789", true), "0123456789");
    }

    #[test]
    fn table_aligns_columns_without_trailing_blanks() {
        let rows = vec![
            vec!["ID".to_string(), "Type".to_string(), "Status".to_string()],
            vec![
                "example".to_string(),
                "service".to_string(),
                "running".to_string(),
            ],
            vec!["b".to_string(), "batch".to_string(), "".to_string()],
        ];
        let out = table(&rows);
        assert_eq!(
            out,
            "ID       Type     Status\nexample  service  running\nb        batch\n"
        );
    }

    #[test]
    fn key_values_align_equals() {
        let out = key_values(&[("ID", "a".into()), ("Submit Date", "b".into())]);
        assert_eq!(out, "ID          = a\nSubmit Date = b\n");
    }

    #[test]
    fn unix_times_format_as_utc() {
        assert_eq!(format_unix_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_unix_seconds(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(
            format_unix_nanos(1_700_000_000_123_000_000),
            "2023-11-14T22:13:20Z"
        );
    }

    #[test]
    fn time_ago_keeps_two_units() {
        let s = 1_000_000_000i64;
        let now = 10_000_000 * s;
        assert_eq!(time_ago(now - 5 * s, now), "5s ago");
        assert_eq!(time_ago(now - 3_725 * s, now), "1h2m ago");
        assert_eq!(time_ago(now - 3_600 * s, now), "1h ago");
        assert_eq!(time_ago(now - 90_061 * s, now), "1d1h ago");
        assert_eq!(time_ago(0, now), "<none>");
        assert_eq!(time_ago(now, now), "0s ago");
    }
}
