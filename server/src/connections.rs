//! Accepting connections, with limits on what each may cost, and a graceful shutdown.
//! `axum::serve` offers neither a header read timeout nor a header size limit, so Baton drives
//! hyper itself (as axum's `serve-with-hyper` example does). One address (an IPv6 /64, and 4× as
//! many per /56, 16× per /48, as the rate limits count) may hold `max_connections_per_address` of
//! the `max_connections` (trusted proxies speak for many and are exempt); a connection past that is
//! answered 503 with `Retry-After` and closed, as nginx's `limit_conn` does, so the people behind
//! one address see "busy, try again" instead of a network failure. A response the client stops
//! reading is abandoned after `response_write_timeout`.

use crate::settings::HttpLimits;
use app::auth::limits::network::{network, TrustedProxies};
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
    // Refused connections being answered: a small budget of their own (each holds a socket for
    // up to two seconds); past it they are simply closed, as before.
    let refusing = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
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
                // The global permit is free again at once; the answer has a budget of its own.
                drop(permit);
                if let Ok(refusal) = refusing.clone().try_acquire_owned() {
                    tokio::spawn(async move {
                        refuse(stream).await;
                        drop(refusal);
                    });
                }
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

/// What a connection over its network's share gets: a 503 that says when to come back, then the
/// end of the connection. The request's head is read first (an HTTP client takes an answer that
/// comes before its request for a broken connection), and whatever else it sends is read and
/// dropped after (closing with unread data would reset the connection, and the client could lose
/// the answer): two seconds at most in all, 64 KiB at most read.
async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const BODY: &str = r#"{"error":"server_busy","message":"Too many connections from your network. Try again in 1 second.","retryAfter":1}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         cache-control: no-store\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        // Up to the blank line that ends the head; each read scans only what it added (and the
        // three bytes before), however the client slices it.
        let mut seen = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await?;
            let from = seen.len().saturating_sub(3);
            seen.extend_from_slice(&chunk[..n]);
            if n == 0 || seen.len() >= 16 * 1024 || seen[from..].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut drained = seen.len();
        while drained < 64 * 1024 {
            match stream.read(&mut chunk).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<_, io::Error>(())
    })
    .await;
}

/// Connections past their network's share being answered 503 at once.
const REFUSALS_AT_ONCE: usize = 256;

/// Open connections per network.
#[derive(Default, Clone)]
struct PerAddress(Arc<Mutex<HashMap<(IpAddr, u8), usize>>>);

/// One connection's place in [`PerAddress`] (in each network it counts in), given back when dropped.
struct Slot {
    counts: PerAddress,
    networks: Vec<(IpAddr, u8)>,
}

enum Admission {
    Counted(Slot),
    /// A trusted proxy: it speaks for many clients.
    Exempt,
    /// The network already holds its share.
    Refused,
}

impl PerAddress {
    /// Whether a connection from `ip` may be served, given `cap` per address (IPv6: per /64,
    /// 4× per /56, 16× per /48, as the rate limits count: a host with a routed /48 has 65,536
    /// /64s but only one /48).
    fn admit(&self, ip: IpAddr, proxies: &TrustedProxies, cap: usize) -> Admission {
        if proxies.contains(ip) {
            return Admission::Exempt;
        }
        let shares: &[(u8, usize)] = match ip.to_canonical() {
            IpAddr::V6(_) => &[(64, 1), (56, 4), (48, 16)],
            IpAddr::V4(_) => &[(32, 1)],
        };
        let networks: Vec<((IpAddr, u8), usize)> = shares
            .iter()
            .map(|&(prefix, times)| ((network(Some(ip), prefix), prefix), cap.saturating_mul(times)))
            .collect();
        let mut counts = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if networks.iter().any(|(net, cap)| counts.get(net).is_some_and(|count| count >= cap)) {
            return Admission::Refused;
        }
        for (net, _) in &networks {
            *counts.entry(*net).or_insert(0) += 1;
        }
        Admission::Counted(Slot { counts: self.clone(), networks: networks.into_iter().map(|(net, _)| net).collect() })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for net in &self.networks {
            if let Some(count) = counts.get_mut(net) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(net);
                }
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
            ready @ Poll::Ready(_) => {
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

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of `addresses` get a connection, each keeping it, with `cap` per address.
    fn admitted(addresses: impl Iterator<Item = String>, cap: usize) -> (usize, Vec<Slot>) {
        let per_address = PerAddress::default();
        let mut held = Vec::new();
        for address in addresses {
            if let Admission::Counted(slot) =
                per_address.admit(address.parse().unwrap(), &TrustedProxies::default(), cap)
            {
                held.push(slot);
            }
        }
        (held.len(), held)
    }

    #[test]
    fn an_ipv6_site_counts_by_its_64_56_and_48() {
        // One /64: the cap.
        assert_eq!(admitted((0..100).map(|i| format!("2001:db8:1:1::{i:x}")), 4).0, 4);
        // A /60 spread over its 16 /64s: the /56's 4× stops it, not 16 × the cap.
        assert_eq!(admitted((0..100).map(|i| format!("2001:db8:1:{:x}::1", i % 16)), 4).0, 16);
        // A /48 over 256 /56s: 16×.
        assert_eq!(admitted((0..1000).map(|i| format!("2001:db8:1:{:x}::1", (i % 256) << 8)), 4).0, 64);
        // IPv4: per address.
        assert_eq!(admitted((0..100).map(|i| format!("10.0.{}.1", i % 50)), 4).0, 100);
    }

    #[test]
    fn places_are_given_back_in_every_network() {
        let per_address = PerAddress::default();
        let ip: IpAddr = "2001:db8:1:1::1".parse().unwrap();
        let slot = match per_address.admit(ip, &TrustedProxies::default(), 1) {
            Admission::Counted(slot) => slot,
            _ => panic!("the first is admitted"),
        };
        assert!(matches!(per_address.admit(ip, &TrustedProxies::default(), 1), Admission::Refused));
        drop(slot);
        assert!(per_address.0.lock().unwrap().is_empty(), "every count was given back");
        assert!(matches!(per_address.admit(ip, &TrustedProxies::default(), 1), Admission::Counted(_)));
    }
}
