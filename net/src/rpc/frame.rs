//! Client protocol framing: `u32` little-endian length, then rkyv bytes of a `ClientEnvelope`.
//!
//! Both sides use this codec. Bytes come from the network, so decoding always goes through
//! rkyv's checked path; a frame longer than `FRAME_BYTES_MAX` is refused before it is buffered.

use engine::client_proto::{ClientEnvelope, FRAME_BYTES_MAX};
use rkyv::util::AlignedVec;

use super::RpcError;

/// Bytes of the length prefix in front of every frame.
pub const FRAME_HEADER_BYTES: usize = 4;

/// Appends one framed envelope to `out`.
pub fn encode_frame(envelope: &ClientEnvelope, out: &mut Vec<u8>) -> Result<(), RpcError> {
    let bytes =
        rkyv::to_bytes::<rkyv::rancor::Error>(envelope).map_err(|error| RpcError::Encode {
            reason: error.to_string(),
        })?;
    // The peer refuses frames past the maximum; failing here names the cause on this side.
    if bytes.len() > FRAME_BYTES_MAX {
        return Err(RpcError::FrameTooLong {
            len: bytes.len(),
            max: FRAME_BYTES_MAX,
        });
    }
    let len = u32::try_from(bytes.len()).map_err(|_| RpcError::FrameTooLong {
        len: bytes.len(),
        max: FRAME_BYTES_MAX,
    })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&bytes);
    Ok(())
}

/// Returns one framed envelope as a fresh buffer.
pub fn frame_bytes(envelope: &ClientEnvelope) -> Result<Vec<u8>, RpcError> {
    let mut out = Vec::new();
    encode_frame(envelope, &mut out)?;
    Ok(out)
}

/// Decodes the rkyv bytes of one frame body (without its length prefix).
pub fn decode_body(body: &[u8]) -> Result<ClientEnvelope, RpcError> {
    // rkyv needs the root aligned; network buffers give no such promise, so copy once.
    let mut aligned: AlignedVec<16> = AlignedVec::with_capacity(body.len());
    aligned.extend_from_slice(body);
    rkyv::from_bytes::<ClientEnvelope, rkyv::rancor::Error>(&aligned).map_err(|error| {
        RpcError::BadFrame {
            reason: error.to_string(),
        }
    })
}

/// Splits a byte stream into envelopes. Feed it what the socket returns, then drain
/// `next_frame` until it yields `None`.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already consumed by returned frames.
    start: usize,
}

impl FrameDecoder {
    /// Returns an empty decoder.
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Appends bytes read from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        // Compact before growing so a long-lived connection does not keep consumed bytes.
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Returns the next complete envelope, `None` when more bytes are needed, or an error
    /// when the stream is malformed (the connection must then be dropped).
    pub fn next_frame(&mut self) -> Result<Option<ClientEnvelope>, RpcError> {
        let pending = &self.buf[self.start..];
        if pending.len() < FRAME_HEADER_BYTES {
            return Ok(None);
        }
        let mut header = [0u8; FRAME_HEADER_BYTES];
        header.copy_from_slice(&pending[..FRAME_HEADER_BYTES]);
        let len = u32::from_le_bytes(header) as usize;
        if len > FRAME_BYTES_MAX {
            return Err(RpcError::FrameTooLong {
                len,
                max: FRAME_BYTES_MAX,
            });
        }
        if pending.len() < FRAME_HEADER_BYTES + len {
            return Ok(None);
        }
        let body = &pending[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len];
        let envelope = decode_body(body)?;
        self.start += FRAME_HEADER_BYTES + len;
        Ok(Some(envelope))
    }

    /// Returns the number of buffered bytes not yet returned as frames.
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use engine::client_proto::{ClientRequest, ClientResponse};

    use super::*;

    fn heartbeat(seq: u64) -> ClientEnvelope {
        ClientEnvelope::Request {
            seq,
            body: ClientRequest::Heartbeat {
                node_id: format!("node-{seq}"),
                secret_id: "s".into(),
            },
        }
    }

    #[test]
    fn round_trip_survives_byte_by_byte_delivery() {
        let sent = vec![
            heartbeat(1),
            ClientEnvelope::Response {
                seq: 2,
                body: ClientResponse::Error {
                    code: "overloaded".into(),
                    message: "m".into(),
                },
            },
            heartbeat(3),
        ];
        let mut wire = Vec::new();
        for envelope in &sent {
            encode_frame(envelope, &mut wire).expect("encode");
        }
        let mut decoder = FrameDecoder::new();
        let mut received = Vec::new();
        for byte in &wire {
            decoder.push(std::slice::from_ref(byte));
            while let Some(envelope) = decoder.next_frame().expect("decode") {
                received.push(envelope);
            }
        }
        assert_eq!(received, sent);
        assert_eq!(decoder.buffered_bytes(), 0);
    }

    #[test]
    fn over_long_length_is_refused_before_buffering() {
        let mut decoder = FrameDecoder::new();
        let len = (FRAME_BYTES_MAX as u32) + 1;
        decoder.push(&len.to_le_bytes());
        match decoder.next_frame() {
            Err(RpcError::FrameTooLong { len: got, max }) => {
                assert_eq!(got, FRAME_BYTES_MAX + 1);
                assert_eq!(max, FRAME_BYTES_MAX);
            }
            other => panic!("expected FrameTooLong, got {other:?}"),
        }
    }

    #[test]
    fn garbage_bytes_are_an_error_not_a_panic() {
        let mut decoder = FrameDecoder::new();
        let garbage: Vec<u8> = (0..64u8)
            .map(|b| b.wrapping_mul(37).wrapping_add(11))
            .collect();
        decoder.push(&(garbage.len() as u32).to_le_bytes());
        decoder.push(&garbage);
        assert!(matches!(
            decoder.next_frame(),
            Err(RpcError::BadFrame { .. })
        ));
    }

    #[test]
    fn truncated_frame_waits_for_more_bytes() {
        let wire = frame_bytes(&heartbeat(7)).expect("encode");
        let mut decoder = FrameDecoder::new();
        decoder.push(&wire[..wire.len() - 1]);
        assert_eq!(decoder.next_frame().expect("partial"), None);
        decoder.push(&wire[wire.len() - 1..]);
        assert_eq!(decoder.next_frame().expect("complete"), Some(heartbeat(7)));
    }
}
