//! The server side of the RPC port: accept loop, protocol selection, client-protocol
//! connections (the server protocol is served by `crate::peer`).
//!
//! One accept loop runs per shard executor; the agent binds one listener per shard and the kernel
//! spreads connections over them (glommio's `TcpListener::bind` sets `SO_REUSEPORT`).

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use engine::client_proto::{
    ClientEnvelope, ClientRequest, ClientResponse, CLIENT_PROTOCOL_BYTE, SERVER_PROTOCOL_BYTE,
};
use engine::Cluster;
use futures::channel::mpsc;
use futures::StreamExt;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::{Latency, Shares, TaskQueueHandle};

use super::frame::{encode_frame, FrameDecoder};
use super::{RpcError, StopSignal};

/// Requests one connection may have in flight; beyond it the server answers `overloaded`.
/// Sized for one connection carrying a blocking `GetAllocs` per simulated node of a large
/// fleet plus their heartbeats.
pub const CONNECTION_REQUESTS_IN_FLIGHT_MAX: usize = 16 * 1024;
/// Bytes asked of the socket per read.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Bytes of responses coalesced into one write before flushing.
pub const WRITE_BATCH_BYTES_MAX: usize = 1024 * 1024;
/// How long a new connection may take to send its selector byte.
pub const SELECTOR_TIMEOUT: Duration = Duration::from_secs(10);
/// Latency the heartbeat task queue asks of the executor. Heartbeats are tiny and a late one
/// can get a node marked down, so they preempt bulk work such as large `GetAllocs` answers.
pub const HEARTBEAT_QUEUE_LATENCY: Duration = Duration::from_millis(1);
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// Serves the RPC port on the current executor until `stop` resolves.
///
/// Each accepted connection is a detached local task; when `stop` resolves the accept loop
/// returns and open connections are closed.
pub async fn serve_rpc<C: Cluster>(
    listener: TcpListener,
    cluster: C,
    stop: impl Future<Output = ()> + 'static,
) {
    let stopping = StopSignal::new();
    stopping.fire_on(stop);
    let heartbeat_queue = glommio::executor().create_task_queue(
        Shares::default(),
        Latency::Matters(HEARTBEAT_QUEUE_LATENCY),
        "rpc-heartbeat",
    );
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::debug!(addr = %local, "rpc listener serving");
    loop {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            stopping.wait().await;
            None
        })
        .await;
        let stream = match accepted {
            None => break,
            Some(Ok(stream)) => stream,
            Some(Err(error)) => {
                tracing::warn!(%error, "rpc accept failed");
                glommio::timer::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };
        let cluster = cluster.clone();
        let conn_stop = stopping.clone();
        glommio::spawn_local(async move {
            let peer = stream
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            let serving = serve_connection(stream, cluster, heartbeat_queue, &peer);
            let served = futures_lite::future::or(serving, async {
                conn_stop.wait().await;
                Ok(())
            })
            .await;
            if let Err(error) = served {
                tracing::info!(%peer, %error, "rpc connection dropped");
            }
        })
        .detach();
    }
    tracing::debug!(addr = %local, "rpc listener stopped");
}

/// Reads the selector byte and hands the connection to the matching protocol.
async fn serve_connection<C: Cluster>(
    mut stream: TcpStream,
    cluster: C,
    heartbeat_queue: TaskQueueHandle,
    peer: &str,
) -> Result<(), RpcError> {
    let _ = stream.set_nodelay(true);
    let mut selector = [0u8; 1];
    let read = glommio::timer::timeout(SELECTOR_TIMEOUT, async {
        stream
            .read_exact(&mut selector)
            .await
            .map_err(glommio::GlommioError::from)
    })
    .await;
    if read.is_err() {
        return Err(RpcError::Protocol {
            what: "missing selector byte",
        });
    }
    match selector[0] {
        CLIENT_PROTOCOL_BYTE => serve_client_protocol(stream, cluster, heartbeat_queue, peer).await,
        SERVER_PROTOCOL_BYTE => crate::peer::serve_server_protocol(stream, cluster, peer).await,
        other => {
            tracing::warn!(%peer, selector = other, "rpc connection with unknown selector byte");
            Err(RpcError::Protocol {
                what: "selector byte",
            })
        }
    }
}

/// Runs one client-protocol connection until the peer closes it or sends a bad frame.
///
/// Requests are handled concurrently, one local task each, so that a blocking `GetAllocs`
/// does not hold up a heartbeat behind it. All responses go through one writer task, which
/// coalesces whatever is ready into one write; writing from each request task instead would
/// interleave partial frames on the socket.
async fn serve_client_protocol<C: Cluster>(
    stream: TcpStream,
    cluster: C,
    heartbeat_queue: TaskQueueHandle,
    peer: &str,
) -> Result<(), RpcError> {
    let (mut reader, writer) = futures_lite::io::split(stream);
    let (responses, queue) = mpsc::unbounded::<ClientEnvelope>();
    // Request tasks race against this, so that they end with the connection.
    let closed = StopSignal::new();
    let writer_task = glommio::spawn_local(write_envelopes(writer, queue, peer.to_string()));
    let dispatcher = Dispatcher {
        cluster,
        heartbeat_queue,
        responses: responses.clone(),
        in_flight: Rc::new(Cell::new(0)),
        closed: closed.clone(),
    };
    let mut decoder = FrameDecoder::new();
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    let result = loop {
        let read = match reader.read(&mut chunk).await {
            Ok(0) => break Ok(()),
            Ok(read) => read,
            Err(source) => {
                break Err(RpcError::Io {
                    peer: peer.to_string(),
                    source,
                })
            }
        };
        decoder.push(&chunk[..read]);
        if let Err(error) = dispatcher.dispatch_frames(&mut decoder) {
            break Err(error);
        }
    };
    closed.stop();
    drop(responses);
    drop(dispatcher);
    // Lets the writer flush what is queued; it ends when every sender is gone.
    let _ = futures_lite::future::or(async { writer_task.await.is_ok() }, async {
        glommio::timer::sleep(Duration::from_secs(1)).await;
        false
    })
    .await;
    result
}

/// Starts request tasks for one connection.
struct Dispatcher<C> {
    cluster: C,
    /// Heartbeats run here, ahead of bulk work; everything else runs in the default queue.
    heartbeat_queue: TaskQueueHandle,
    responses: mpsc::UnboundedSender<ClientEnvelope>,
    in_flight: Rc<Cell<usize>>,
    closed: StopSignal,
}

impl<C: Cluster> Dispatcher<C> {
    /// Starts a task for every complete request in `decoder`.
    fn dispatch_frames(&self, decoder: &mut FrameDecoder) -> Result<(), RpcError> {
        while let Some(envelope) = decoder.next_frame()? {
            let (seq, body) = match envelope {
                ClientEnvelope::Request { seq, body } => (seq, body),
                ClientEnvelope::Response { .. } => {
                    return Err(RpcError::Protocol {
                        what: "response envelope from a client",
                    })
                }
            };
            if self.in_flight.get() >= CONNECTION_REQUESTS_IN_FLIGHT_MAX {
                let body = ClientResponse::Error {
                    code: "overloaded".to_string(),
                    message: format!(
                        "too many requests in flight on this connection \
                         ({CONNECTION_REQUESTS_IN_FLIGHT_MAX})"
                    ),
                };
                let _ = self
                    .responses
                    .unbounded_send(ClientEnvelope::Response { seq, body });
                continue;
            }
            self.spawn_request(seq, body);
        }
        Ok(())
    }

    fn spawn_request(&self, seq: u64, body: ClientRequest) {
        self.in_flight.set(self.in_flight.get() + 1);
        let guard = InFlightGuard(self.in_flight.clone());
        let cluster = self.cluster.clone();
        let responses = self.responses.clone();
        let closed = self.closed.clone();
        let urgent = matches!(body, ClientRequest::Heartbeat { .. });
        let work = async move {
            let _guard = guard;
            let answered = futures_lite::future::or(
                async { Some(handle_request(&cluster, body).await) },
                async {
                    closed.wait().await;
                    None
                },
            )
            .await;
            if let Some(body) = answered {
                let _ = responses.unbounded_send(ClientEnvelope::Response { seq, body });
            }
        };
        if !urgent {
            glommio::spawn_local(work).detach();
            return;
        }
        match glommio::spawn_local_into(work, self.heartbeat_queue) {
            Ok(task) => {
                task.detach();
            }
            // The queue belongs to this executor and is never removed, so this means a
            // broken executor; the heartbeat is lost and the client retries it.
            Err(error) => tracing::error!(%error, "cannot start a heartbeat task"),
        }
    }
}

/// Time a forwarded client request may take.
const FORWARD_SLACK: Duration = Duration::from_secs(10);

/// Hands one request to the engine. On a follower, registrations, heartbeats and allocation
/// updates go to the leader, which owns them; `GetAllocs` is answered from this server's own
/// state, as Nomad clients watch their allocations with stale reads, so a fleet connected to a
/// follower does not hold a connection to the leader per node.
async fn handle_request<C: Cluster>(cluster: &C, request: ClientRequest) -> ClientResponse {
    let local = matches!(
        request,
        ClientRequest::Hello { .. } | ClientRequest::GetAllocs { .. }
    );
    if local || cluster.is_leader() {
        return cluster.client_request(request).await;
    }
    crate::peer::forward_client(cluster, &request, FORWARD_SLACK).await
}

/// Decrements the connection's in-flight count when a request task ends or is dropped.
struct InFlightGuard(Rc<Cell<usize>>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let count = self.0.get();
        assert!(count > 0, "in-flight request count underflow");
        self.0.set(count - 1);
    }
}

/// Writes envelopes from `queue` to `writer`, one write and flush per batch of ready envelopes.
///
/// Shared by the server and the client side. Returns when every sender is dropped or the
/// socket fails.
pub(crate) async fn write_envelopes<W: futures_lite::AsyncWrite + Unpin>(
    mut writer: W,
    mut queue: mpsc::UnboundedReceiver<ClientEnvelope>,
    peer: String,
) -> Result<(), RpcError> {
    let mut batch = Vec::with_capacity(64 * 1024);
    while let Some(first) = queue.next().await {
        batch.clear();
        encode_logged(&first, &mut batch);
        while batch.len() < WRITE_BATCH_BYTES_MAX {
            match queue.try_recv() {
                Ok(next) => encode_logged(&next, &mut batch),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        let written = async {
            writer.write_all(&batch).await?;
            writer.flush().await
        }
        .await;
        if let Err(source) = written {
            return Err(RpcError::Io { peer, source });
        }
    }
    let _ = writer.close().await;
    Ok(())
}

/// Encodes one envelope into `batch`; an envelope that cannot be framed is logged and skipped
/// (its caller times out) rather than tearing down every other request on the connection.
fn encode_logged(envelope: &ClientEnvelope, batch: &mut Vec<u8>) {
    let before = batch.len();
    if let Err(error) = encode_frame(envelope, batch) {
        batch.truncate(before);
        tracing::error!(%error, "dropping an envelope that cannot be framed");
    }
}
