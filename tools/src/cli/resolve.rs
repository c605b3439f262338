//! Resolves the id prefixes users type (`drover alloc status 5f2a`) to full ids.
//!
//! The list endpoints accept `?prefix=`; exactly one match (or an exact match) wins, several
//! matches are an error that lists them, none is an error naming the prefix.

use anyhow::{anyhow, Result};
use serde_json::Value;

use super::client::{ApiClient, ClientError};
use super::format::{short_id, str_field, table};

/// Length of a full UUID; ids this long skip the list lookup.
const FULL_ID_LENGTH: usize = 36;

/// Kinds of objects whose ids can be abbreviated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Job,
    Node,
    Alloc,
    Eval,
    Deployment,
}

impl IdKind {
    /// Returns the list endpoint that supports `?prefix=`.
    pub fn list_path(self) -> &'static str {
        match self {
            IdKind::Job => "/v1/jobs",
            IdKind::Node => "/v1/nodes",
            IdKind::Alloc => "/v1/allocations",
            IdKind::Eval => "/v1/evaluations",
            IdKind::Deployment => "/v1/deployments",
        }
    }

    /// Returns the plural noun used in messages.
    pub fn plural(self) -> &'static str {
        match self {
            IdKind::Job => "jobs",
            IdKind::Node => "nodes",
            IdKind::Alloc => "allocations",
            IdKind::Eval => "evaluations",
            IdKind::Deployment => "deployments",
        }
    }

    fn singular(self) -> &'static str {
        match self {
            IdKind::Job => "job",
            IdKind::Node => "node",
            IdKind::Alloc => "allocation",
            IdKind::Eval => "evaluation",
            IdKind::Deployment => "deployment",
        }
    }
}

/// Picks the single id among `items` (list stubs) that `prefix` names.
///
/// An exact id match wins even when other ids share the prefix (job `web` vs `web-2`).
pub fn pick_match(kind: IdKind, items: &[Value], prefix: &str) -> Result<String> {
    let matching: Vec<&Value> = items
        .iter()
        .filter(|item| str_field(item, "ID").starts_with(prefix))
        .collect();
    if let Some(exact) = matching.iter().find(|item| str_field(item, "ID") == prefix) {
        return Ok(str_field(exact, "ID").to_string());
    }
    match matching.as_slice() {
        [] => Err(anyhow!(
            "No {}(s) with prefix or id \"{prefix}\" found",
            kind.singular()
        )),
        [one] => Ok(str_field(one, "ID").to_string()),
        many => {
            let mut rows = vec![vec!["ID".to_string(), "Name".to_string()]];
            for item in many {
                let id = str_field(item, "ID");
                let shown = if kind == IdKind::Job {
                    id
                } else {
                    short_id(id)
                };
                rows.push(vec![shown.to_string(), str_field(item, "Name").to_string()]);
            }
            Err(anyhow!(
                "Prefix matched multiple {}\n\n{}",
                kind.plural(),
                table(&rows).trim_end()
            ))
        }
    }
}

/// Resolves `prefix` to a full id through the kind's list endpoint.
pub fn resolve_id(client: &ApiClient, kind: IdKind, prefix: &str) -> Result<String> {
    if prefix.is_empty() {
        return Err(anyhow!("Error: an id or prefix is required"));
    }
    if kind != IdKind::Job && prefix.len() == FULL_ID_LENGTH {
        return Ok(prefix.to_string());
    }
    let listed = client
        .get(kind.list_path(), &[("prefix", prefix)])
        .map_err(|e| anyhow!("Error querying {}: {e}", kind.plural()))?;
    let items = listed.as_array().cloned().unwrap_or_default();
    pick_match(kind, &items, prefix)
}

/// Returns true when the server said the object does not exist.
pub fn is_not_found(err: &ClientError) -> bool {
    err.status() == Some(404)
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    use serde_json::json;

    use super::super::client::ClientConfig;
    use super::*;

    #[test]
    fn exact_match_beats_longer_ids() {
        let items = vec![json!({"ID": "web"}), json!({"ID": "web-2"})];
        assert_eq!(pick_match(IdKind::Job, &items, "web").unwrap(), "web");
    }

    #[test]
    fn ambiguous_and_missing_prefixes_are_errors() {
        let items = vec![
            json!({"ID": "5f2a0000-0000-0000-0000-000000000001", "Name": "a"}),
            json!({"ID": "5f2a0000-0000-0000-0000-000000000002", "Name": "b"}),
        ];
        let err = pick_match(IdKind::Alloc, &items, "5f2a")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("Prefix matched multiple allocations"),
            "{err}"
        );
        assert!(err.contains("5f2a0000  a"), "{err}");
        let err = pick_match(IdKind::Alloc, &items, "77")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "No allocation(s) with prefix or id \"77\" found");
        let id = pick_match(IdKind::Alloc, &items[..1], "5f").unwrap();
        assert_eq!(id, "5f2a0000-0000-0000-0000-000000000001");
    }

    /// Serves one canned JSON answer and hands back the request line it received.
    fn serve_once(body: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                line.clear();
            }
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            request_line
        });
        (address, handle)
    }

    #[test]
    fn resolve_id_queries_list_endpoint_with_prefix() {
        let (address, server) =
            serve_once(r#"[{"ID":"8ba85cef-1111-2222-3333-444455556666","Name":"web.web[0]"}]"#);
        let client = ApiClient::new(ClientConfig {
            address,
            ..ClientConfig::default()
        });
        let id = resolve_id(&client, IdKind::Alloc, "8ba8").unwrap();
        assert_eq!(id, "8ba85cef-1111-2222-3333-444455556666");
        let request_line = server.join().unwrap();
        assert!(
            request_line.starts_with("GET /v1/allocations?prefix=8ba8 "),
            "{request_line}"
        );
    }
}
