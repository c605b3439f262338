//! Server-to-server traffic on the RPC port: a per-executor pool of connections to peers
//! (Raft messages, requests forwarded to the leader) and the serving side of that protocol.
//!
//! A connection carries one request at a time and goes back to the pool when answered, so a
//! blocking query forwarded to the leader holds its own connection and Raft heartbeats never
//! queue behind it. Frames are `engine::server_proto` frames.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use engine::client_proto::{ClientRequest, ClientResponse, SERVER_PROTOCOL_BYTE};
use engine::raft::network::{PeerTransport, RaftRpc, RaftRpcReply};
use engine::server_proto::{
    decode_body, encode_frame, frame_len, ServerRequest, ServerResponse, SERVER_FRAME_HEADER_BYTES,
    SERVER_PROTOCOL_VERSION,
};
use engine::Cluster;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::rpc::RpcError;

pub mod faults;

/// How long connecting to a peer may take.
pub const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle connections kept per peer.
const IDLE_PER_PEER_MAX: usize = 64;

thread_local! {
    static LOCAL_POOL: Rc<PeerPool> = Rc::new(PeerPool::default());
}

/// Returns this executor's connection pool.
pub fn local_pool() -> Rc<PeerPool> {
    LOCAL_POOL.with(Rc::clone)
}

/// Connections to other servers, owned by one executor.
#[derive(Default)]
pub struct PeerPool {
    idle: RefCell<HashMap<String, Vec<TcpStream>>>,
}

impl PeerPool {
    /// Sends `request` to the server at `addr` and waits up to `timeout` for its answer.
    pub async fn call(
        &self,
        addr: &str,
        request: &ServerRequest,
        timeout: Duration,
    ) -> Result<ServerResponse, String> {
        if faults::blocked(addr) {
            return Err(format!("{addr}: unreachable (fault injection)"));
        }
        let mut frame = Vec::new();
        encode_frame(request, &mut frame).map_err(|e| e.to_string())?;
        let pooled = self.idle.borrow_mut().get_mut(addr).and_then(Vec::pop);
        // A pooled connection may have been closed by the peer meanwhile: one retry on a fresh
        // connection is safe because the request was never read there.
        if let Some(stream) = pooled {
            if let Ok((stream, response)) = exchange(stream, &frame, timeout).await {
                self.give_back(addr, stream);
                return Ok(response);
            }
        }
        let stream = connect(addr).await?;
        let (stream, response) = exchange(stream, &frame, timeout)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        self.give_back(addr, stream);
        Ok(response)
    }

    fn give_back(&self, addr: &str, stream: TcpStream) {
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(addr.to_string()).or_default();
        if list.len() < IDLE_PER_PEER_MAX {
            list.push(stream);
        }
    }
}

async fn connect(addr: &str) -> Result<TcpStream, String> {
    let sock: SocketAddr = addr
        .parse()
        .map_err(|_| format!("peer address {addr:?} is not ip:port"))?;
    let mut stream = TcpStream::connect_timeout(sock, PEER_CONNECT_TIMEOUT)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    stream
        .write_all(&[SERVER_PROTOCOL_BYTE])
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut hello = Vec::new();
    encode_frame(
        &ServerRequest::Hello {
            version: SERVER_PROTOCOL_VERSION,
            region: String::new(),
        },
        &mut hello,
    )
    .map_err(|e| e.to_string())?;
    let (stream, answer) = exchange(stream, &hello, PEER_CONNECT_TIMEOUT)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    match answer {
        ServerResponse::Hello { version, .. } if version == SERVER_PROTOCOL_VERSION => Ok(stream),
        ServerResponse::Hello { version, .. } => Err(format!(
            "{addr} speaks server protocol {version}, this server {SERVER_PROTOCOL_VERSION}"
        )),
        other => Err(format!("{addr} answered hello with {other:?}")),
    }
}

/// Writes one frame and reads one answer, within `timeout`.
async fn exchange(
    mut stream: TcpStream,
    frame: &[u8],
    timeout: Duration,
) -> Result<(TcpStream, ServerResponse), String> {
    let work = async {
        stream.write_all(frame).await.map_err(|e| e.to_string())?;
        stream.flush().await.map_err(|e| e.to_string())?;
        let body = read_frame(&mut stream).await.map_err(|e| e.to_string())?;
        decode_body::<ServerResponse>(&body).map_err(|e| e.to_string())
    };
    let answer = futures_lite::future::or(async { Some(work.await) }, async {
        glommio::timer::sleep(timeout).await;
        None
    })
    .await;
    match answer {
        Some(Ok(response)) => Ok((stream, response)),
        Some(Err(e)) => Err(e),
        None => Err(format!("no answer within {timeout:?}")),
    }
}

async fn read_frame(stream: &mut TcpStream) -> Result<Vec<u8>, RpcError> {
    let mut header = [0u8; SERVER_FRAME_HEADER_BYTES];
    stream
        .read_exact(&mut header)
        .await
        .map_err(|source| RpcError::Io {
            peer: String::new(),
            source,
        })?;
    let len = frame_len(header).map_err(|e| RpcError::BadFrame {
        reason: e.to_string(),
    })?;
    let mut body = vec![0u8; len];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|source| RpcError::Io {
            peer: String::new(),
            source,
        })?;
    Ok(body)
}

/// openraft's transport: Raft messages through this executor's pool.
#[derive(Clone, Default)]
pub struct RaftPeers;

impl PeerTransport for RaftPeers {
    async fn call(
        &self,
        addr: &str,
        rpc: RaftRpc,
        timeout: Duration,
    ) -> Result<RaftRpcReply, String> {
        match local_pool()
            .call(addr, &ServerRequest::Raft(rpc), timeout)
            .await?
        {
            ServerResponse::Raft(reply) => Ok(reply),
            ServerResponse::Error(e) => Err(format!("{addr}: {e}")),
            other => Err(format!("{addr} answered a raft message with {other:?}")),
        }
    }

    async fn is_initialized(&self, addr: &str) -> Result<bool, String> {
        match local_pool()
            .call(addr, &ServerRequest::Status, PEER_CONNECT_TIMEOUT)
            .await?
        {
            ServerResponse::Status { initialized } => Ok(initialized),
            other => Err(format!("{addr} answered a status request with {other:?}")),
        }
    }
}

/// Forwards a client-protocol request to the leader and returns its answer.
pub async fn forward_client<C: Cluster>(
    cluster: &C,
    request: &ClientRequest,
    timeout: Duration,
) -> ClientResponse {
    let status = cluster.status();
    if !status.known_leader || status.leader_rpc_addr.is_empty() {
        return no_leader_response();
    }
    let bytes = match rkyv::to_bytes::<rkyv::rancor::Error>(request) {
        Ok(b) => b.into_vec(),
        Err(e) => return error_response("encode", e.to_string()),
    };
    let answer = local_pool()
        .call(
            &status.leader_rpc_addr,
            &ServerRequest::Client(bytes),
            timeout,
        )
        .await;
    match answer {
        Ok(ServerResponse::Client(bytes)) => decode_client_response(&bytes),
        Ok(ServerResponse::Error(e)) => error_response("forward", e),
        Ok(other) => error_response("forward", format!("unexpected answer {other:?}")),
        Err(e) => error_response("forward", e),
    }
}

fn no_leader_response() -> ClientResponse {
    error_response("no_leader", "No cluster leader".to_string())
}

fn error_response(code: &str, message: String) -> ClientResponse {
    ClientResponse::Error {
        code: code.to_string(),
        message,
    }
}

fn decode_client_response(bytes: &[u8]) -> ClientResponse {
    let mut aligned: rkyv::util::AlignedVec<16> =
        rkyv::util::AlignedVec::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    match rkyv::from_bytes::<ClientResponse, rkyv::rancor::Error>(&aligned) {
        Ok(r) => r,
        Err(e) => error_response("decode", e.to_string()),
    }
}

fn decode_client_request(bytes: &[u8]) -> Result<ClientRequest, String> {
    let mut aligned: rkyv::util::AlignedVec<16> =
        rkyv::util::AlignedVec::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    rkyv::from_bytes::<ClientRequest, rkyv::rancor::Error>(&aligned).map_err(|e| e.to_string())
}

/// Serves one server-protocol connection (after its selector byte) until the peer closes it
/// or sends something undecodable. Requests are answered in order, one at a time.
pub async fn serve_server_protocol<C: Cluster>(
    mut stream: TcpStream,
    cluster: C,
    peer: &str,
) -> Result<(), RpcError> {
    let limits = crate::http::HttpLimits {
        body_bytes_max: crate::http::HttpLimits::default()
            .body_bytes_max
            .max(cluster.job_max_source_size() * 2),
        ..crate::http::HttpLimits::default()
    };
    loop {
        let body = match read_frame(&mut stream).await {
            Ok(body) => body,
            // A peer closing between requests is the normal end.
            Err(RpcError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        let request = decode_body::<ServerRequest>(&body).map_err(|e| RpcError::BadFrame {
            reason: e.to_string(),
        })?;
        let response = match request {
            ServerRequest::Hello { version, .. } => {
                if version != SERVER_PROTOCOL_VERSION {
                    tracing::warn!(%peer, version, "peer speaks another server protocol version");
                }
                ServerResponse::Hello {
                    version: SERVER_PROTOCOL_VERSION,
                    region: cluster.status().region,
                }
            }
            ServerRequest::Status => ServerResponse::Status {
                initialized: !cluster.status().raft_servers.is_empty(),
            },
            ServerRequest::Raft(rpc) => match cluster.raft_rpc(rpc).await {
                Ok(reply) => ServerResponse::Raft(reply),
                Err(e) => ServerResponse::Error(e.to_string()),
            },
            ServerRequest::Http(req) => {
                ServerResponse::Http(crate::http::serve_forwarded(&cluster, &limits, req).await)
            }
            ServerRequest::Client(bytes) => match decode_client_request(&bytes) {
                Ok(req) => {
                    let answer = cluster.client_request(req).await;
                    match rkyv::to_bytes::<rkyv::rancor::Error>(&answer) {
                        Ok(b) => ServerResponse::Client(b.into_vec()),
                        Err(e) => ServerResponse::Error(e.to_string()),
                    }
                }
                Err(e) => ServerResponse::Error(format!("undecodable client request: {e}")),
            },
        };
        let mut out = Vec::new();
        if let Err(e) = encode_frame(&response, &mut out) {
            out.clear();
            encode_frame(&ServerResponse::Error(e.to_string()), &mut out).map_err(|e| {
                RpcError::Encode {
                    reason: e.to_string(),
                }
            })?;
        }
        stream
            .write_all(&out)
            .await
            .map_err(|source| RpcError::Io {
                peer: peer.to_string(),
                source,
            })?;
    }
}
