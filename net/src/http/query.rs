//! Query string parsing: Nomad's common parameters and Go's duration and boolean syntax.

use std::time::Duration;

use super::reply::HttpError;

/// The parameters every read endpoint understands (Nomad's `QueryOptions`).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Query {
    /// Raw decoded pairs, in order, for endpoint-specific parameters.
    pub pairs: Vec<(String, String)>,
    /// Blocking-query minimum index; 0 answers at once.
    pub index: u64,
    /// Requested blocking time, before clamping.
    pub wait: Option<Duration>,
    pub prefix: String,
    /// `None` means all namespaces (`namespace=*`).
    pub namespace: Option<String>,
    pub region: String,
    pub pretty: bool,
    pub filter: String,
    pub per_page: usize,
    pub next_token: String,
    pub reverse: bool,
    /// `stale`: any server may answer from its own state.
    pub stale: bool,
}

impl Query {
    /// Parses a raw query string (without the `?`).
    pub(crate) fn parse(raw: &str) -> Result<Query, HttpError> {
        let mut q = Query {
            namespace: Some(sched::structs::DEFAULT_NAMESPACE.to_string()),
            ..Query::default()
        };
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            q.pairs.push((
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            ));
        }
        if let Some(v) = q.get("index") {
            q.index = v
                .parse()
                .map_err(|_| HttpError::bad_request("Invalid index"))?;
        }
        if let Some(v) = q.get("wait") {
            q.wait = Some(
                parse_go_duration(v).map_err(|_| HttpError::bad_request("Invalid wait time"))?,
            );
        }
        if let Some(v) = q.get("stale") {
            // A bare `?stale` means true, as in Nomad.
            q.stale = if v.is_empty() {
                true
            } else {
                parse_go_bool(v).ok_or_else(|| {
                    HttpError::bad_request(
                        "Expect `true` or `false` for `stale` query string parameter",
                    )
                })?
            };
        }
        q.prefix = q.get("prefix").unwrap_or("").to_string();
        match q.get("namespace") {
            Some("*") => q.namespace = None,
            Some(ns) if !ns.is_empty() => q.namespace = Some(ns.to_string()),
            _ => {}
        }
        q.region = q.get("region").unwrap_or("").to_string();
        q.pretty = q.get("pretty").is_some_and(|v| v != "0");
        q.filter = q.get("filter").unwrap_or("").to_string();
        if let Some(v) = q.get("per_page") {
            q.per_page = v.parse().map_err(|_| {
                HttpError::bad_request("Expect a number for `per_page` query string parameter")
            })?;
        }
        q.next_token = q.get("next_token").unwrap_or("").to_string();
        q.reverse = q.get("reverse") == Some("true");
        Ok(q)
    }

    /// Returns the first value of a parameter.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Parses an optional boolean parameter with Go's `ParseBool` (an empty value is true).
    pub(crate) fn bool_param(&self, key: &str) -> Result<bool, HttpError> {
        match self.get(key) {
            None => Ok(false),
            Some("") => Ok(true),
            Some(v) => parse_go_bool(v).ok_or_else(|| {
                HttpError::bad_request(format!(
                    "Failed to parse value of {key:?} ({v:?}) as a boolean"
                ))
            }),
        }
    }

    /// Reports whether an object in `namespace` is visible to this query.
    pub(crate) fn namespace_matches(&self, namespace: &str) -> bool {
        match self.namespace.as_deref() {
            None => true,
            Some(ns) => ns == namespace,
        }
    }

    /// Returns the namespace single-object routes use (`*` falls back to the default).
    pub(crate) fn namespace_or_default(&self) -> &str {
        self.namespace
            .as_deref()
            .unwrap_or(sched::structs::DEFAULT_NAMESPACE)
    }
}

/// Parses Go's `strconv.ParseBool` spellings.
pub(crate) fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Parses a Go duration (`"300ms"`, `"1.5h"`, `"2h45m"`); a bare `"0"` is zero.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let s = text.strip_prefix('+').unwrap_or(text);
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return Err(format!("invalid duration {text:?}"));
    }
    let mut rest = s;
    let mut total_ns: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(format!("invalid duration {text:?}"));
        }
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}"))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ns = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("missing unit in duration {text:?}")),
            unit => return Err(format!("unknown unit {unit:?} in duration {text:?}")),
        };
        rest = &rest[unit_len..];
        total_ns += number * unit_ns;
    }
    if !total_ns.is_finite() || total_ns > u64::MAX as f64 {
        return Err(format!("duration {text:?} out of range"));
    }
    Ok(Duration::from_nanos(total_ns as u64))
}

/// Decodes `%XX` escapes; malformed escapes are kept literally, as Go's lenient paths do.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(
            parse_go_duration("1h30m").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_go_duration("250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            parse_go_duration("1.5s").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_go_duration("10").is_err());
        assert!(parse_go_duration("abc").is_err());
        assert!(parse_go_duration("5x").is_err());
        assert!(parse_go_duration("").is_err());
    }

    #[test]
    fn query_defaults_and_errors() {
        let q = Query::parse("").unwrap();
        assert_eq!(q.namespace.as_deref(), Some("default"));
        assert_eq!(q.index, 0);
        let q = Query::parse("namespace=*&index=7&wait=5s&prefix=ab&pretty").unwrap();
        assert_eq!(q.namespace, None);
        assert_eq!(q.index, 7);
        assert_eq!(q.wait, Some(Duration::from_secs(5)));
        assert_eq!(q.prefix, "ab");
        assert!(q.pretty);
        assert_eq!(
            Query::parse("index=x").unwrap_err().message,
            "Invalid index"
        );
        assert_eq!(
            Query::parse("wait=3").unwrap_err().message,
            "Invalid wait time"
        );
        assert!(Query::parse("stale=maybe").is_err());
        assert!(Query::parse("stale=True").is_ok());
        assert!(Query::parse("stale").is_ok());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
