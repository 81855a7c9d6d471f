//! Slow clients cannot exhaust a node: connections that trickle their headers are closed after the
//! header deadline, one client address holds at most its share of connections, and the POS keeps
//! working while an outsider tries.

use anyhow::{ensure, Context, Result};
use coalition_client::types::IssueRequest;
use coalition_core::crypto::Keypair;
use coalition_core::record::MemberId;
use coalition_node::api::{raise_descriptor_limit, Limits, HEADER_READ_TIMEOUT};
use coalition_tests::Cluster;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::LONG_EPOCH_SECS;

/// Opens a connection from `from` to `to`, sends the start of a request whose headers never end,
/// and returns how long after connecting the node closed it (`None`: still open after `wait`).
async fn trickle(from: SocketAddr, to: SocketAddr, wait: Duration) -> Result<Option<Duration>> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(from)?;
    let mut stream = socket.connect(to).await?;
    let start = Instant::now();
    // A refused connection may be closed before this is written.
    let _ = stream
        .write_all(b"GET /v1/status HTTP/1.1\r\nHost: node\r\nX-Slow: 1\r\n")
        .await;
    let mut buf = [0u8; 512];
    let closed = tokio::time::timeout(wait, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                // An error answer (408) before the close.
                Ok(_) => {}
            }
        }
    })
    .await;
    Ok(closed.ok().map(|()| start.elapsed()))
}

#[test]
fn slow_clients_are_cut_off_and_the_pos_keeps_working() -> Result<()> {
    // The node's limits follow from the open-file limit this process and the node share.
    let per_client = Limits::for_descriptors(raise_descriptor_limit()).max_per_client;
    // Connections the outsider opens: more than its share.
    let outsiders = per_client + 44;
    let c = Cluster::start(1, LONG_EPOCH_SECS)?;
    let api: SocketAddr = c.nodes[0].settings.api_listen.parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // The outsider is another loopback address, so the POS (127.0.0.1) is another client.
    let outsider: SocketAddr = "127.0.0.2:0".parse()?;
    let wait = HEADER_READ_TIMEOUT + Duration::from_secs(15);
    let opened = Instant::now();
    let attempts: Vec<_> = (0..outsiders)
        .map(|_| runtime.spawn(trickle(outsider, api, wait)))
        .collect();

    // While the outsider holds its connections, the POS issues and reads as usual.
    let member = MemberId(Keypair::generate().public());
    for i in 0..5 {
        let started = Instant::now();
        c.client(0).issue(&IssueRequest {
            member,
            points: 10,
            reference: Some(format!("till receipt {i}")),
            expires_in_secs: None,
        })?;
        ensure!(
            started.elapsed() < Duration::from_secs(5),
            "an issue took {:?} while an outsider held connections",
            started.elapsed()
        );
    }
    ensure!(
        c.client(0).balance(&member)?.available == 50,
        "the POS's issues are not all there"
    );

    let mut at_once = 0;
    let mut at_deadline = 0;
    for attempt in attempts {
        let closed = runtime
            .block_on(attempt)
            .context("a connection task failed")??;
        match closed {
            None => anyhow::bail!(
                "a connection trickling its headers was still open after {wait:?} (opened {:?} ago)",
                opened.elapsed()
            ),
            Some(after) if after < HEADER_READ_TIMEOUT / 2 => at_once += 1,
            Some(_) => at_deadline += 1,
        }
    }
    ensure!(
        at_once == outsiders - per_client && at_deadline == per_client,
        "of {outsiders} connections from one address, {at_once} were closed at once and \
         {at_deadline} at the header deadline; expected {} and {per_client}",
        outsiders - per_client
    );
    // And the node still answers once they are gone.
    c.client(0).status()?;
    Ok(())
}
