//! Serving the API over HTTP/1.1 with limits an outsider cannot exhaust.
//!
//! `axum::serve` reads headers without a deadline and accepts every connection, so a few thousand
//! clients trickling header lines hold sockets open until the node runs out of file descriptors, and
//! then its storage writes fail. Here:
//! - headers must arrive within [`HEADER_READ_TIMEOUT`], a body within [`BODY_READ_TIMEOUT`]
//!   (`super::router`);
//! - at most [`Limits::max_connections`] connections are open, well below the descriptor limit, so
//!   RocksDB and the network keep [`RESERVED_DESCRIPTORS`];
//! - one client address holds at most [`Limits::max_per_client`] of them, so the POS keeps working
//!   while an outsider tries.
//!
//! A connection over a limit is closed at once, before anything is read. With TLS configured
//! (`super::tls`), every connection is TLS, its handshake bound by the header deadline.

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's body (at most 64 KiB).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Descriptors left for everything but API connections: RocksDB's open files (256), its logs,
/// the p2p connections, the anchor file.
pub const RESERVED_DESCRIPTORS: u64 = 768;
/// The most API connections at once, whatever the descriptor limit.
pub const MAX_CONNECTIONS: usize = 1024;
/// The most API connections from one address at once (at most a quarter of the total).
pub const MAX_PER_CLIENT: usize = 256;
/// How long open connections may finish their requests at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Connection limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections in total.
    pub max_connections: usize,
    /// Open connections from one client address.
    pub max_per_client: usize,
}

impl Limits {
    /// The limits for a process allowed `descriptors` open files: [`MAX_CONNECTIONS`], or fewer
    /// if the descriptors left after [`RESERVED_DESCRIPTORS`] are fewer (at least 16).
    pub fn for_descriptors(descriptors: u64) -> Limits {
        let spare = descriptors.saturating_sub(RESERVED_DESCRIPTORS);
        let max_connections = usize::try_from(spare)
            .unwrap_or(usize::MAX)
            .clamp(16, MAX_CONNECTIONS);
        // One address never holds more than a quarter, so a few outsiders cannot lock the POS out.
        Limits {
            max_connections,
            max_per_client: MAX_PER_CLIENT.min(max_connections / 4),
        }
    }
}

/// Counts open connections, in total and per client address.
struct Admission {
    limits: Limits,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees its place.
struct Ticket {
    admission: Arc<Admission>,
    client: IpAddr,
}

impl Admission {
    /// A place for a connection from `client`, if both limits allow one.
    fn admit(self: &Arc<Self>, client: IpAddr) -> Option<Ticket> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mine = open.per_client.get(&client).copied().unwrap_or(0);
        if open.total >= self.limits.max_connections || mine >= self.limits.max_per_client {
            return None;
        }
        open.total += 1;
        open.per_client.insert(client, mine + 1);
        Some(Ticket {
            admission: self.clone(),
            client,
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = self
            .admission
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_client.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.per_client.remove(&self.client);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting and gives open
/// connections [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let admission = Arc::new(Admission {
        limits,
        open: Mutex::new(Open::default()),
    });
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    let mut refused: u64 = 0;
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors (or a connection reset before accept): wait a moment
                    // instead of spinning; the limits make this rare.
                    tracing::warn!(error = %e, "cannot accept an API connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(ticket) = admission.admit(peer.ip()) else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(client = %peer.ip(), refused, "API connection over the limit closed");
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let (tls, mut builder, watcher) = (tls.clone(), builder.clone(), graceful.watcher());
        connections.spawn(async move {
            // A client that goes away or is too slow ends its connection; nothing to report.
            match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn).await;
                }
                // The handshake in this task, so a slow client holds only its own connection;
                // handshake and headers share the one header deadline.
                Some(acceptor) => {
                    let started = tokio::time::Instant::now();
                    let handshake =
                        tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream));
                    if let Ok(Ok(stream)) = handshake.await {
                        let left = HEADER_READ_TIMEOUT.saturating_sub(started.elapsed());
                        builder.header_read_timeout(left.max(Duration::from_millis(100)));
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        let _ = watcher.watch(conn).await;
                    }
                }
            }
            drop(ticket);
        });
        // Reap finished connections so the set holds only open ones.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("API connections still open after {SHUTDOWN_GRACE:?}; closing them");
    }
    // Each connection holds the node (through the router); a client that never finishes must not
    // keep the store from closing.
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Raises this process's soft limit on open files as far as its hard limit allows (many services
/// start at 1024), and returns the limit in force.
pub fn raise_descriptor_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit; assuming 1024");
            1024
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_leave_descriptors_for_storage() {
        let l = Limits::for_descriptors(1024);
        assert_eq!(l.max_connections, 1024 - RESERVED_DESCRIPTORS as usize);
        assert_eq!(
            Limits::for_descriptors(1 << 20).max_connections,
            MAX_CONNECTIONS
        );
        assert_eq!(Limits::for_descriptors(100).max_connections, 16);
        assert_eq!(Limits::for_descriptors(100).max_per_client, 4);
        assert_eq!(Limits::for_descriptors(1024).max_per_client, 64);
        assert_eq!(
            Limits::for_descriptors(1 << 20).max_per_client,
            MAX_PER_CLIENT
        );
    }

    #[test]
    fn a_client_is_held_to_its_share_and_places_come_back() {
        let admission = Arc::new(Admission {
            limits: Limits {
                max_connections: 3,
                max_per_client: 2,
            },
            open: Mutex::new(Open::default()),
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        let a1 = admission.admit(a).unwrap();
        let _a2 = admission.admit(a).unwrap();
        assert!(admission.admit(a).is_none(), "a third from one client");
        let _b1 = admission.admit(b).unwrap();
        assert!(admission.admit(c).is_none(), "over the total");
        drop(a1);
        assert!(admission.admit(c).is_some(), "a freed place is reused");
    }
}
