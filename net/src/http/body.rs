//! Request bodies: bounded, timed reads and JSON decoding that names the failing position.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use hyper::Request;
use serde::de::DeserializeOwned;

use super::reply::HttpError;

/// Reads a whole request body of at most `max_bytes`, within `timeout`.
pub(crate) async fn read_body(
    req: Request<Incoming>,
    max_bytes: usize,
    timeout: Duration,
) -> Result<Bytes, HttpError> {
    // Refuse early when the client announces an oversized body, before reading any of it.
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_bytes as u64) {
        return Err(HttpError::too_large());
    }
    let collect = async {
        match Limited::new(req.into_body(), max_bytes).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(HttpError::too_large()),
            Err(e) => Err(HttpError::bad_request(format!(
                "Failed to read request body: {e}"
            ))),
        }
    };
    let expire = async {
        glommio::timer::sleep(timeout).await;
        Err(HttpError::new(
            hyper::StatusCode::REQUEST_TIMEOUT,
            "Request body not received in time",
        ))
    };
    futures_lite::future::or(collect, expire).await
}

/// Decodes a JSON body into `T`; errors name the field path and the line and column.
pub(crate) fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, HttpError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(HttpError::bad_request("Request body is empty"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            HttpError::bad_request(format!("Failed to decode request body: {inner}"))
        } else {
            HttpError::bad_request(format!("Failed to decode request body: {path}: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| HttpError::bad_request(format!("Failed to decode request body: {e}")))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Outer {
        #[serde(rename = "Job")]
        job: Inner,
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        #[serde(rename = "Priority")]
        priority: u16,
    }

    #[test]
    fn decode_errors_name_path_and_position() {
        let e = decode_json::<Outer>(b"{\"Job\": {\n\"Priority\": \"high\"}}").unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert!(e.message.contains("Job.Priority"), "{}", e.message);
        assert!(e.message.contains("line 2"), "{}", e.message);
        let e = decode_json::<Outer>(b"{\"Job\": ").unwrap_err();
        assert!(e.message.contains("line 1 column"), "{}", e.message);
        let e = decode_json::<Outer>(b"  ").unwrap_err();
        assert_eq!(e.message, "Request body is empty");
    }
}
