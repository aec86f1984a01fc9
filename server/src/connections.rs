//! Accepting connections, with limits on what each may cost, and a graceful shutdown.
//! `axum::serve` offers neither a header read timeout nor a header size limit, so Baton drives
//! hyper itself (as axum's `serve-with-hyper` example does). One address (an IPv6 /64) may hold
//! `max_connections_per_address` of the `max_connections` (trusted proxies speak for many and are
//! exempt), and a response the client stops reading is abandoned after `response_write_timeout`.

use crate::settings::HttpLimits;
use app::auth::network::{network, TrustedProxies};
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::Service;

/// Serves `app` until `shutdown` resolves; then stops accepting, lets every request in flight
/// finish (up to `shutdown_timeout`) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    proxies: TrustedProxies,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = PerAddress::default();
    tokio::pin!(shutdown);
    loop {
        // At the cap, new connections wait in the kernel's backlog instead of costing memory here.
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before accept: wait a moment.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match per_address.admit(peer.ip(), &proxies, limits.max_connections_per_address) {
            Admission::Counted(slot) => Some(slot),
            Admission::Exempt => None,
            Admission::Refused => {
                // Closed at once: the client learns, and the global permit is free again.
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().call(req)
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_header_size(limits.max_header_bytes)
            .serve_connection(TokioIo::new(WriteDeadline::new(stream, limits.response_write_timeout)), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Errors here are clients going away or timing out: nothing to answer, nothing to log loudly.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended");
            }
            drop((permit, slot));
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_timeout) => {
            tracing::warn!("shutdown: requests still running after {:?}; stopping anyway", limits.shutdown_timeout);
        }
    }
    Ok(())
}

/// Open connections per network.
#[derive(Default, Clone)]
struct PerAddress(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One connection's place in [`PerAddress`], given back when dropped.
struct Slot {
    counts: PerAddress,
    network: IpAddr,
}

enum Admission {
    Counted(Slot),
    /// A trusted proxy: it speaks for many clients.
    Exempt,
    /// The network already holds its share.
    Refused,
}

impl PerAddress {
    /// Whether a connection from `ip` may be served, given `cap` per network.
    fn admit(&self, ip: IpAddr, proxies: &TrustedProxies, cap: usize) -> Admission {
        if proxies.contains(ip) {
            return Admission::Exempt;
        }
        let network = network(Some(ip), 64);
        let mut counts = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = counts.entry(network).or_insert(0);
        if *count >= cap {
            return Admission::Refused;
        }
        *count += 1;
        Admission::Counted(Slot { counts: self.clone(), network })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = counts.get_mut(&self.network) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.network);
            }
        }
    }
}

/// A connection whose writes must make progress: when the client stops reading for `timeout`,
/// the write fails and hyper closes the connection (a slow reader cannot hold it forever).
struct WriteDeadline<IO> {
    io: IO,
    timeout: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<IO> WriteDeadline<IO> {
    fn new(io: IO, timeout: Duration) -> Self {
        Self { io, timeout, stalled: None }
    }

    /// Called when a write could not proceed: arms the deadline, or fails once it has passed.
    fn check_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let timeout = self.timeout;
        let sleep = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading the response"))
    }

    fn progress<T>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match result {
            Poll::Pending => self.check_stall(cx).map(Err),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for WriteDeadline<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write(cx, buf);
        self.progress(cx, result)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.progress(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.io).poll_flush(cx);
        self.progress(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
