//! `ClientConn`: one client-protocol connection to a server, shared by many callers.
//!
//! Calls are multiplexed by sequence number: each call parks a oneshot in `pending`, one
//! reader task routes responses to them, and one writer task batches outgoing frames. When the
//! connection fails every waiting call gets `Closed`, and the next call reconnects.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use engine::client_proto::{
    ClientEnvelope, ClientRequest, ClientResponse, CLIENT_PROTOCOL_BYTE, CLIENT_PROTOCOL_VERSION,
};
use futures::channel::{mpsc, oneshot};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::sync::Semaphore;

use crate::rpc::{write_envelopes, FrameDecoder, RpcError, StopSignal};

/// How long a call waits for its response (a blocking `GetAllocs` adds its own wait).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening the TCP connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Calls waiting for a response on one connection; beyond it `call` fails with `Overloaded`
/// instead of queueing without bound.
pub const CALLS_PENDING_MAX: usize = 64 * 1024;
const READ_CHUNK_BYTES: usize = 64 * 1024;

type Pending = Rc<RefCell<HashMap<u64, oneshot::Sender<ClientResponse>>>>;

/// A shared handle to one multiplexed connection; clones share it.
#[derive(Clone)]
pub struct ClientConn {
    inner: Rc<ConnInner>,
}

struct ConnInner {
    addr: SocketAddr,
    peer: String,
    live: RefCell<Option<Live>>,
    /// Serialises connection attempts so that concurrent callers do not each open a socket.
    connecting: Semaphore,
    next_seq: Cell<u64>,
    next_generation: Cell<u64>,
    /// Server region learnt from `Hello`.
    region: RefCell<String>,
}

/// One open socket and the state tied to it.
#[derive(Clone)]
struct Live {
    generation: u64,
    outgoing: mpsc::UnboundedSender<ClientEnvelope>,
    pending: Pending,
    closed: StopSignal,
}

impl ClientConn {
    /// Returns a handle that connects to `addr` on first use.
    pub fn new(addr: SocketAddr) -> ClientConn {
        ClientConn {
            inner: Rc::new(ConnInner {
                addr,
                peer: addr.to_string(),
                live: RefCell::new(None),
                connecting: Semaphore::new(1),
                next_seq: Cell::new(1),
                next_generation: Cell::new(1),
                region: RefCell::new(String::new()),
            }),
        }
    }

    /// Connects now (selector byte and `Hello`), so that an unreachable server shows early.
    pub async fn connect(addr: SocketAddr) -> Result<ClientConn, RpcError> {
        let conn = ClientConn::new(addr);
        conn.live().await?;
        Ok(conn)
    }

    /// Returns the server address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Returns the region the server announced in `Hello` (empty before the first connect).
    pub fn region(&self) -> String {
        self.inner.region.borrow().clone()
    }

    /// Reports whether a socket is open right now.
    pub fn is_connected(&self) -> bool {
        self.inner.live.borrow().is_some()
    }

    /// Sends one request and waits for its response, reconnecting first if needed.
    ///
    /// An `Error` response from the server is returned as `Ok`: it is an answer, not a
    /// transport failure.
    pub async fn call(&self, request: ClientRequest) -> Result<ClientResponse, RpcError> {
        let timeout = match &request {
            ClientRequest::GetAllocs { max_wait_ms, .. } => {
                CALL_TIMEOUT + Duration::from_millis(*max_wait_ms)
            }
            _ => CALL_TIMEOUT,
        };
        self.call_with_timeout(request, timeout).await
    }

    /// Like `call`, with an explicit response timeout.
    pub async fn call_with_timeout(
        &self,
        request: ClientRequest,
        timeout: Duration,
    ) -> Result<ClientResponse, RpcError> {
        let live = self.live().await?;
        self.call_on(&live, request, timeout).await
    }

    /// Closes the socket; waiting calls fail with `Closed` and the next call reconnects.
    pub fn close(&self) {
        let generation = self
            .inner
            .live
            .borrow()
            .as_ref()
            .map(|live| live.generation);
        if let Some(generation) = generation {
            self.mark_down(generation);
        }
    }

    async fn call_on(
        &self,
        live: &Live,
        body: ClientRequest,
        timeout: Duration,
    ) -> Result<ClientResponse, RpcError> {
        if live.pending.borrow().len() >= CALLS_PENDING_MAX {
            return Err(RpcError::Overloaded {
                limit: CALLS_PENDING_MAX,
            });
        }
        let seq = self.inner.next_seq.get();
        self.inner.next_seq.set(seq + 1);
        let (reply, answer) = oneshot::channel();
        live.pending.borrow_mut().insert(seq, reply);
        if live
            .outgoing
            .unbounded_send(ClientEnvelope::Request { seq, body })
            .is_err()
        {
            live.pending.borrow_mut().remove(&seq);
            self.mark_down(live.generation);
            return Err(RpcError::Closed {
                peer: self.inner.peer.clone(),
            });
        }
        let outcome = futures_lite::future::or(async { Some(answer.await) }, async {
            glommio::timer::sleep(timeout).await;
            None
        })
        .await;
        match outcome {
            Some(Ok(response)) => Ok(response),
            Some(Err(_canceled)) => Err(RpcError::Closed {
                peer: self.inner.peer.clone(),
            }),
            None => {
                live.pending.borrow_mut().remove(&seq);
                Err(RpcError::Timeout {
                    peer: self.inner.peer.clone(),
                    after_ms: timeout.as_millis() as u64,
                })
            }
        }
    }

    /// Returns the open connection, opening one if there is none.
    async fn live(&self) -> Result<Live, RpcError> {
        if let Some(live) = self.inner.live.borrow().as_ref() {
            return Ok(live.clone());
        }
        let _turn =
            self.inner
                .connecting
                .acquire_permit(1)
                .await
                .map_err(|_| RpcError::Closed {
                    peer: self.inner.peer.clone(),
                })?;
        // Another caller may have connected while this one waited for its turn.
        if let Some(live) = self.inner.live.borrow().as_ref() {
            return Ok(live.clone());
        }
        let live = self.open().await?;
        let hello = ClientRequest::Hello {
            version: CLIENT_PROTOCOL_VERSION,
        };
        match self.call_on(&live, hello, CALL_TIMEOUT).await {
            Ok(ClientResponse::Hello { version, region }) => {
                if version != CLIENT_PROTOCOL_VERSION {
                    self.mark_down(live.generation);
                    return Err(RpcError::VersionMismatch {
                        server: version,
                        local: CLIENT_PROTOCOL_VERSION,
                    });
                }
                *self.inner.region.borrow_mut() = region;
                Ok(live)
            }
            Ok(_) => {
                self.mark_down(live.generation);
                Err(RpcError::Protocol {
                    what: "answer to Hello",
                })
            }
            Err(error) => {
                self.mark_down(live.generation);
                Err(error)
            }
        }
    }

    /// Opens the socket, sends the selector byte and starts the reader and writer tasks.
    async fn open(&self) -> Result<Live, RpcError> {
        let peer = self.inner.peer.clone();
        let io_error = |source| RpcError::Io {
            peer: peer.clone(),
            source,
        };
        let mut stream = TcpStream::connect_timeout(self.inner.addr, CONNECT_TIMEOUT)
            .await
            .map_err(|error| io_error(std::io::Error::from(error)))?;
        let _ = stream.set_nodelay(true);
        stream
            .write_all(&[CLIENT_PROTOCOL_BYTE])
            .await
            .map_err(io_error)?;
        let (reader, writer) = futures_lite::io::split(stream);
        let generation = self.inner.next_generation.get();
        self.inner.next_generation.set(generation + 1);
        let (outgoing, queue) = mpsc::unbounded();
        let live = Live {
            generation,
            outgoing,
            pending: Pending::default(),
            closed: StopSignal::new(),
        };
        *self.inner.live.borrow_mut() = Some(live.clone());

        let conn = self.clone();
        glommio::spawn_local(async move {
            if let Err(error) = write_envelopes(writer, queue, conn.inner.peer.clone()).await {
                tracing::debug!(%error, "rpc client writer ended");
            }
            conn.mark_down(generation);
        })
        .detach();

        let conn = self.clone();
        let pending = live.pending.clone();
        let closed = live.closed.clone();
        glommio::spawn_local(async move {
            let read = futures_lite::future::or(read_responses(reader, pending, &conn), async {
                closed.wait().await;
                Ok(())
            })
            .await;
            if let Err(error) = read {
                tracing::debug!(%error, "rpc client reader ended");
            }
            conn.mark_down(generation);
        })
        .detach();
        Ok(live)
    }

    /// Forgets connection `generation` if it is still the current one: pending calls fail and
    /// the writer ends once the last sender is gone.
    fn mark_down(&self, generation: u64) {
        let mut slot = self.inner.live.borrow_mut();
        let current = slot
            .as_ref()
            .is_some_and(|live| live.generation == generation);
        if !current {
            return;
        }
        if let Some(live) = slot.take() {
            drop(slot);
            live.closed.stop();
            live.outgoing.close_channel();
            // Dropping the reply senders wakes every waiting call with `Closed`.
            let waiting: Vec<_> = live.pending.borrow_mut().drain().collect();
            drop(waiting);
        }
    }
}

/// Reads response frames and completes the matching calls until the socket ends.
async fn read_responses<R: futures_lite::AsyncRead + Unpin>(
    mut reader: R,
    pending: Pending,
    conn: &ClientConn,
) -> Result<(), RpcError> {
    let mut decoder = FrameDecoder::new();
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    loop {
        let read = reader
            .read(&mut chunk)
            .await
            .map_err(|source| RpcError::Io {
                peer: conn.inner.peer.clone(),
                source,
            })?;
        if read == 0 {
            return Err(RpcError::Closed {
                peer: conn.inner.peer.clone(),
            });
        }
        decoder.push(&chunk[..read]);
        while let Some(envelope) = decoder.next_frame()? {
            match envelope {
                ClientEnvelope::Response { seq, body } => {
                    // A missing entry is a call that timed out; its late answer is dropped.
                    if let Some(reply) = pending.borrow_mut().remove(&seq) {
                        let _ = reply.send(body);
                    }
                }
                ClientEnvelope::Request { .. } => {
                    return Err(RpcError::Protocol {
                        what: "request envelope from a server",
                    })
                }
            }
        }
    }
}
