//! The Nomad-compatible HTTP API: listener, connections, routing, handlers and JSON encoders.
//!
//! `serve_http` runs one accept loop on the calling glommio executor; the agent starts one per
//! shard core, each on its own listener bound to the same address. glommio's
//! `TcpListener::bind` already sets `SO_REUSEPORT` (not `SO_REUSEADDR`), so the kernel spreads
//! connections over the shards and no extra socket setup is needed; `bind` here only documents
//! that and keeps the agent from depending on glommio's choice silently.
//! Handlers run on the shard that accepted the connection and call the engine through
//! `engine::Cluster`. Start at `router.rs`.

mod body;
mod conn;
pub mod encode;
mod filter;
mod forward;
mod handlers;
mod paginate;
mod query;
mod reply;
mod router;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use engine::Cluster;
use glommio::net::{TcpListener, TcpStream};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use tracing::{debug, warn};

use crate::error::NetError;
use conn::{ConnActivity, HyperIo};

pub use forward::serve_forwarded;
pub use query::parse_go_duration;

/// Bounds on what one request may cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest accepted request body; larger bodies get 413 `Request body too large`.
    pub body_bytes_max: usize,
    /// Time a client has to send a whole request (head and body) once it started one.
    pub request_timeout: Duration,
    /// Time an idle keep-alive connection stays open.
    pub idle_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            body_bytes_max: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
        }
    }
}

/// How often each connection's watchdog checks its timeouts.
const WATCHDOG_TICK_MAX: Duration = Duration::from_millis(500);

/// Binds an HTTP listener on the calling executor.
///
/// glommio's `TcpListener::bind` sets `SO_REUSEPORT`, so every shard may bind the same address
/// and the kernel balances accepted connections between them.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).map_err(std::io::Error::from)
}

/// Serves the HTTP API on `listener` until `stop` resolves.
///
/// Each connection runs as a detached task on this executor. After `stop`, no new connections
/// are accepted; open connections finish their in-flight request and close when idle.
pub async fn serve_http<C: Cluster>(
    listener: TcpListener,
    cluster: C,
    limits: HttpLimits,
    stop: impl Future<Output = ()>,
) -> Result<(), NetError> {
    let limits = Rc::new(limits);
    let stopping = Rc::new(Cell::new(false));
    let accept_loop = async {
        loop {
            match listener.accept().await {
                Ok(stream) => {
                    let task =
                        serve_connection(stream, cluster.clone(), limits.clone(), stopping.clone());
                    glommio::spawn_local(task).detach();
                }
                Err(e) => {
                    // Usually descriptor exhaustion: back off instead of spinning.
                    warn!(error = %e, "http accept failed");
                    glommio::timer::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    };
    futures_lite::future::or(stop, accept_loop).await;
    stopping.set(true);
    Ok(())
}

async fn serve_connection<C: Cluster>(
    stream: TcpStream,
    cluster: C,
    limits: Rc<HttpLimits>,
    stopping: Rc<Cell<bool>>,
) {
    // Small JSON replies: send them at once rather than waiting for Nagle.
    if let Err(e) = stream.set_nodelay(true) {
        debug!(error = %e, "set_nodelay failed");
    }
    let activity = ConnActivity::new();
    let io = HyperIo::new(stream, activity.clone());
    let service_activity = activity.clone();
    let service_limits = limits.clone();
    let service = service_fn(move |req| {
        let guard = service_activity.handler_started();
        let cluster = cluster.clone();
        let limits = service_limits.clone();
        async move {
            let response = router::handle(&cluster, &limits, req).await;
            drop(guard);
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = http1::Builder::new();
    // Without a hyper timer the default header timeout is inert; say so explicitly. The
    // watchdog below enforces it instead.
    builder.header_read_timeout(None).keep_alive(true);
    let connection = builder.serve_connection(io, service);
    let tick = WATCHDOG_TICK_MAX
        .min(limits.request_timeout / 4)
        .max(Duration::from_millis(5));
    let watchdog = async {
        loop {
            glommio::timer::sleep(tick).await;
            let now = Instant::now();
            let expired = activity.expired(
                now,
                limits.request_timeout,
                limits.idle_timeout,
                stopping.get(),
            );
            if let Some(reason) = expired {
                return reason;
            }
        }
    };
    let outcome = futures_lite::future::or(async { Ok(connection.await) }, async {
        Err(watchdog.await)
    })
    .await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => debug!(error = %NetError::from(e), "http connection ended"),
        Err(reason) => debug!(reason, "http connection closed"),
    }
}
