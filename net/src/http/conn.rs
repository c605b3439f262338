//! One HTTP/1.1 connection: hyper over a glommio `TcpStream`, with our own timeouts.
//!
//! hyper's own timeouts need a `hyper::rt::Timer`, whose sleeps must be `Send`; glommio's timers
//! are not. So the connection future is raced against a watchdog that reads activity
//! timestamps the I/O adapter keeps, and dropping the connection future closes the socket.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;

/// Activity of one connection, shared by the I/O adapter, the request handlers and the watchdog.
#[derive(Debug)]
pub(crate) struct ConnActivity {
    /// Last time any byte was read.
    last_read: Cell<Instant>,
    /// When the first byte of a request not yet handed to a handler arrived.
    request_started: Cell<Option<Instant>>,
    /// Requests currently inside a handler (0 or 1 for HTTP/1.1 without pipelining).
    handlers_active: Cell<u32>,
}

impl ConnActivity {
    pub(crate) fn new() -> Rc<ConnActivity> {
        Rc::new(ConnActivity {
            last_read: Cell::new(Instant::now()),
            request_started: Cell::new(None),
            handlers_active: Cell::new(0),
        })
    }

    fn on_read(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let now = Instant::now();
        self.last_read.set(now);
        if self.handlers_active.get() == 0 && self.request_started.get().is_none() {
            self.request_started.set(Some(now));
        }
    }

    /// Marks that a request's head was parsed and a handler runs; returns a guard that marks
    /// the handler's end when dropped (also when the connection is torn down mid-request).
    pub(crate) fn handler_started(self: &Rc<Self>) -> HandlerGuard {
        self.request_started.set(None);
        self.handlers_active.set(self.handlers_active.get() + 1);
        HandlerGuard {
            activity: self.clone(),
        }
    }

    /// Returns why the connection should be closed now, if it should.
    pub(crate) fn expired(
        &self,
        now: Instant,
        request_timeout: Duration,
        idle_timeout: Duration,
        stopping: bool,
    ) -> Option<&'static str> {
        if self.handlers_active.get() > 0 {
            // A handler may legitimately wait (blocking queries); it bounds itself.
            return None;
        }
        match self.request_started.get() {
            Some(started) if now.duration_since(started) > request_timeout => {
                Some("request not received in time")
            }
            Some(_) => None,
            None if stopping => Some("server stopping"),
            None if now.duration_since(self.last_read.get()) > idle_timeout => {
                Some("idle connection")
            }
            None => None,
        }
    }
}

/// Ends a handler's span in `ConnActivity` when dropped.
pub(crate) struct HandlerGuard {
    activity: Rc<ConnActivity>,
}

impl Drop for HandlerGuard {
    fn drop(&mut self) {
        let active = self.activity.handlers_active.get();
        assert!(active > 0, "handler guard dropped with no active handler");
        self.activity.handlers_active.set(active - 1);
        self.activity.last_read.set(Instant::now());
    }
}

/// Adapts a glommio stream to hyper's I/O traits and records read activity.
pub(crate) struct HyperIo {
    stream: TcpStream,
    activity: Rc<ConnActivity>,
}

impl HyperIo {
    pub(crate) fn new(stream: TcpStream, activity: Rc<ConnActivity>) -> HyperIo {
        HyperIo { stream, activity }
    }
}

/// Largest single read; hyper asks for its buffer's spare capacity, which can be large.
const READ_CHUNK_MAX: usize = 16 * 1024;

impl hyper::rt::Read for HyperIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        // Read into an initialised scratch buffer and copy: avoids unsafe handling of hyper's
        // uninitialised cursor for the price of one memcpy per read.
        let mut scratch = [0u8; READ_CHUNK_MAX];
        let want = buf.remaining().min(READ_CHUNK_MAX);
        match Pin::new(&mut this.stream).poll_read(cx, &mut scratch[..want]) {
            Poll::Ready(Ok(n)) => {
                this.activity.on_read(n);
                buf.put_slice(&scratch[..n]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl hyper::rt::Write for HyperIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_close(cx)
    }
}
