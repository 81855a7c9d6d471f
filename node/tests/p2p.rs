//! The networking layer over real libp2p on 127.0.0.1, every node on a port chosen by the OS.
//!
//! Each test plays the node's service itself: it reads the [`NetEvent`] receiver and answers requests.
//! Synchronisation is by polling with a deadline, never by fixed sleeps; the only bounded waits are
//! negative checks ("nothing arrives"), each commented.

use coalition_core::crypto::Keypair;
use coalition_core::genesis::Genesis;
use coalition_core::hash::Hash;
use coalition_core::record::{
    Entry, EpochClose, LotSpend, MemberId, PartnerId, Record, RedeemOrder, SignedEntry, Vote,
};
use coalition_core::refusal::RefusalCode;
use coalition_core::test_util::genesis_for;
use coalition_node::p2p::codec::RPC_PROTOCOL;
use coalition_node::p2p::{
    self, behaviour, topics, Gossip, NetError, NetEvent, NetworkConfig, NetworkHandle, Refusal,
    Request, Response, Topic,
};
use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{gossipsub, identify, noise, request_response, tcp, yamux, Multiaddr, Swarm};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

/// Generous: a loaded CI machine compiles and runs many tests at once.
const DEADLINE: Duration = Duration::from_secs(30);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "coalition_node=info".into()),
        )
        .with_test_writer()
        .try_init();
}

fn genesis_of(keys: &[&Keypair]) -> Arc<Genesis> {
    let keys: Vec<_> = keys.iter().map(|k| k.public()).collect();
    Arc::new(genesis_for(&keys))
}

struct Node {
    name: String,
    id: PartnerId,
    handle: NetworkHandle,
    events: mpsc::Receiver<NetEvent>,
    /// The address it actually listens on.
    addr: Multiaddr,
}

async fn start_config(name: &str, config: NetworkConfig) -> Node {
    let (handle, events) = p2p::spawn(config)
        .await
        .unwrap_or_else(|e| panic!("{name}: spawn: {e}"));
    let addrs = handle.listen_addrs().await.expect("listen addrs");
    let addr = addrs
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("{name}: no listen address"));
    Node {
        name: name.into(),
        id: handle.local_partner(),
        handle,
        events,
        addr,
    }
}

async fn start(name: &str, key: &Keypair, genesis: &Arc<Genesis>, peers: &[&Node]) -> Node {
    let peers = peers.iter().map(|n| n.addr.to_string()).collect();
    let config = NetworkConfig::new(
        key.secret_bytes(),
        "/ip4/127.0.0.1/tcp/0",
        peers,
        genesis.clone(),
    );
    start_config(name, config).await
}

/// Reads events until `pick` accepts one, skipping (and dropping) the others.
async fn next_matching<T>(
    node: &mut Node,
    what: &str,
    mut pick: impl FnMut(NetEvent) -> Option<T>,
) -> T {
    let name = node.name.clone();
    let found = timeout(DEADLINE, async {
        loop {
            match node.events.recv().await {
                Some(event) => {
                    if let Some(found) = pick(event) {
                        return found;
                    }
                }
                None => panic!("{name}: event channel closed while waiting for {what}"),
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("{name}: no {what} within {DEADLINE:?}"))
}

/// Polls `check` every 50 ms until it holds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < DEADLINE,
            "not true within {DEADLINE:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sorted(mut ids: Vec<PartnerId>) -> Vec<PartnerId> {
    ids.sort();
    ids
}

/// Waits until `node` has exactly `others` up and subscribed to the entries topic.
async fn wait_mesh(node: &Node, others: &[PartnerId]) {
    let want = sorted(others.to_vec());
    eventually(
        &format!("{} connected to {others:?}", node.name),
        || async {
            node.handle
                .connected_peers()
                .await
                .expect("connected peers")
                == want
        },
    )
    .await;
    eventually(
        &format!("{} sees {others:?} on the entries topic", node.name),
        || async {
            node.handle
                .topic_peers(Topic::Entries)
                .await
                .expect("topic peers")
                == want
        },
    )
    .await;
}

fn entry_by(key: &Keypair, seq: u64) -> SignedEntry {
    Entry {
        partner: PartnerId(key.public()),
        seq,
        prev: Hash::ZERO,
        epoch: 0,
        time: 1_700_000_000 + seq,
        record: Record::EpochClose(EpochClose { epoch: seq }),
    }
    .sign(key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_partners_gossip_and_answer_requests() {
    init_tracing();
    let keys: Vec<Keypair> = (0..3).map(|_| Keypair::generate()).collect();
    let genesis = genesis_of(&keys.iter().collect::<Vec<_>>());
    let mut a = start("a", &keys[0], &genesis, &[]).await;
    let mut b = start("b", &keys[1], &genesis, &[&a]).await;
    let mut c = start("c", &keys[2], &genesis, &[&a, &b]).await;
    wait_mesh(&a, &[b.id, c.id]).await;
    wait_mesh(&b, &[a.id, c.id]).await;
    wait_mesh(&c, &[a.id, b.id]).await;

    // Gossip: an entry published by A reaches B and C, attributed to A.
    let entry = entry_by(&keys[0], 0);
    a.handle
        .publish(Gossip::Entry(entry.clone()))
        .await
        .expect("publish");
    for node in [&mut b, &mut c] {
        let a_id = a.id;
        let got = next_matching(node, "A's entry", |e| match e {
            NetEvent::Gossip {
                from,
                msg: Gossip::Entry(got),
                ..
            } if from == a_id => Some(got),
            _ => None,
        })
        .await;
        assert_eq!(got, entry);
    }

    // GetRange: B asks A; the test, as A's service, answers from another task.
    let ask = b.handle.request(
        a.id,
        Request::GetRange {
            partner: a.id,
            from: 0,
            limit: 10,
        },
    );
    let serve = async {
        let (req, reply) = next_matching(&mut a, "B's request", |e| match e {
            NetEvent::Request { from, req, reply } if from == b.id => Some((req, reply)),
            _ => None,
        })
        .await;
        assert_eq!(
            req,
            Request::GetRange {
                partner: a.id,
                from: 0,
                limit: 10
            }
        );
        let entries = vec![entry.clone()];
        tokio::spawn(async move { reply.send(Response::Range { entries }) })
            .await
            .expect("join")
    };
    let (answer, sent) = tokio::join!(ask, serve);
    assert!(sent.is_ok(), "the requester was still waiting");
    assert_eq!(
        answer.expect("range answer"),
        Response::Range {
            entries: vec![entry.clone()]
        }
    );

    // Vote: C asks B for a vote on a member-signed order; B signs it.
    let member = Keypair::generate();
    let order = RedeemOrder {
        member: MemberId(member.public()),
        member_seq: 0,
        redeemer: c.id,
        points: 5,
        lots: vec![LotSpend {
            lot: Hash([1; 32]),
            points: 5,
        }],
        time: 1_700_000_000,
    }
    .sign(&member);
    let ask = c.handle.request(
        b.id,
        Request::Vote {
            order: order.clone(),
        },
    );
    let b_key = &keys[1];
    let serve = async {
        let (req, reply) = next_matching(&mut b, "C's vote request", |e| match e {
            NetEvent::Request { req, reply, .. } => Some((req, reply)),
            _ => None,
        })
        .await;
        let Request::Vote { order } = req else {
            panic!("expected a vote request, got {req:?}")
        };
        let _ = reply.send(Response::Vote(Ok(Vote::sign(order.order.id(), b_key))));
    };
    let (answer, ()) = tokio::join!(ask, serve);
    match answer.expect("vote answer") {
        Response::Vote(Ok(vote)) => {
            assert_eq!(vote.partner, b.id);
            assert_eq!(vote.order_id, order.order.id());
            vote.verify_signature().expect("vote signature");
        }
        other => panic!("expected a vote, got {other:?}"),
    }

    // A refusal round-trips too.
    let ask = c.handle.request(a.id, Request::Vote { order });
    let serve = async {
        let reply = next_matching(&mut a, "C's vote request", |e| match e {
            NetEvent::Request { reply, .. } => Some(reply),
            _ => None,
        })
        .await;
        let refusal = Refusal {
            code: RefusalCode::StaleSeq,
            message: "expected seq 3".into(),
        };
        let _ = reply.send(Response::Vote(Err(refusal)));
    };
    let (answer, ()) = tokio::join!(ask, serve);
    assert!(
        matches!(answer, Ok(Response::Vote(Err(Refusal { ref code, .. }))) if *code == RefusalCode::StaleSeq)
    );

    // A service that drops the request without answering: the requester gets an error response.
    let ask = b.handle.request(c.id, Request::GetHeads);
    let serve = async {
        next_matching(&mut c, "B's heads request", |e| match e {
            NetEvent::Request { reply, .. } => {
                drop(reply);
                Some(())
            }
            _ => None,
        })
        .await
    };
    let (answer, ()) = tokio::join!(ask, serve);
    assert!(
        matches!(answer, Ok(Response::Error { .. })),
        "got {answer:?}"
    );

    // Requests to ourselves or to a stranger fail at once.
    let stranger = PartnerId(Keypair::generate().public());
    assert!(matches!(
        a.handle.request(stranger, Request::GetHeads).await,
        Err(NetError::UnknownPartner { .. })
    ));
    assert!(matches!(
        a.handle.request(a.id, Request::GetHeads).await,
        Err(NetError::UnknownPartner { .. })
    ));

    // A request nobody answers times out with the per-call timeout.
    let err = b
        .handle
        .request_with_timeout(a.id, Request::GetHeads, Duration::from_millis(300))
        .await
        .expect_err("nobody answers");
    assert!(matches!(err, NetError::Timeout { .. }), "got {err}");

    for n in [&a, &b, &c] {
        n.handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_outside_the_genesis_is_refused() {
    init_tracing();
    let keys: Vec<Keypair> = (0..3).map(|_| Keypair::generate()).collect();
    let genesis = genesis_of(&keys.iter().collect::<Vec<_>>());
    let mut a = start("a", &keys[0], &genesis, &[]).await;
    let mut b = start("b", &keys[1], &genesis, &[&a]).await;
    let mut c = start("c", &keys[2], &genesis, &[&a, &b]).await;
    wait_mesh(&a, &[b.id, c.id]).await;
    wait_mesh(&b, &[a.id, c.id]).await;
    wait_mesh(&c, &[a.id, b.id]).await;

    // An outsider runs the real node code with a forged genesis that lists itself and the partners,
    // and dials all three.
    let outsider_key = Keypair::generate();
    let forged = genesis_of(&[&keys[0], &keys[1], &keys[2], &outsider_key]);
    let mut outsider = start("outsider", &outsider_key, &forged, &[&a, &b, &c]).await;

    // Positive check that the refusal happens at the connection: a bare libp2p client with the
    // outsider's key that speaks identify with the partners' exact protocol version (so only the
    // allow list can stop it) is disconnected before identify completes.
    let version = behaviour::protocol_version(&genesis.hash().to_hex());
    let mut probe = bare_swarm(&outsider_key, |key| Probe {
        identify: identify::Behaviour::new(identify::Config::new(version.clone(), key.public())),
    });
    probe.dial(a.addr.clone()).expect("dial");
    let outcome = timeout(DEADLINE, async {
        loop {
            match probe.select_next_some().await {
                SwarmEvent::Behaviour(ProbeEvent::Identify(identify::Event::Received {
                    ..
                })) => {
                    return "identified";
                }
                SwarmEvent::ConnectionClosed { .. } => return "closed",
                SwarmEvent::OutgoingConnectionError { .. } => return "refused",
                _ => {}
            }
        }
    })
    .await
    .expect("the probe's connection neither closed nor identified");
    assert_ne!(
        outcome, "identified",
        "a non-partner key completed identify with a partner"
    );
    drop(probe);

    // The outsider's requests fail: it never has a partner up.
    let err = outsider
        .handle
        .request(a.id, Request::GetHeads)
        .await
        .expect_err("refused");
    assert!(matches!(err, NetError::NotConnected { .. }), "got {err}");
    // Its gossip goes nowhere (publishing with nobody to hear is not an error).
    outsider
        .handle
        .publish(Gossip::Entry(entry_by(&outsider_key, 0)))
        .await
        .expect("publish");

    // Negative check, bounded on purpose: for 3 s (several redial rounds of the outsider) no partner
    // reports the outsider up or any gossip from it, and the outsider sees no partner up.
    let quiet = Duration::from_secs(3);
    let outsider_id = outsider.id;
    tokio::join!(
        expect_nothing_from(&mut a, outsider_id, quiet),
        expect_nothing_from(&mut b, outsider_id, quiet),
        expect_nothing_from(&mut c, outsider_id, quiet),
        expect_no_peer_up(&mut outsider, quiet),
    );
    for n in [&a, &b, &c] {
        assert!(!n
            .handle
            .connected_peers()
            .await
            .expect("peers")
            .contains(&outsider_id));
    }
    assert!(outsider
        .handle
        .connected_peers()
        .await
        .expect("peers")
        .is_empty());

    for n in [&a, &b, &c, &outsider] {
        n.handle.shutdown().await;
    }
}

/// Negative check: for `quiet`, `node` reports nothing about or from `stranger`.
async fn expect_nothing_from(node: &mut Node, stranger: PartnerId, quiet: Duration) {
    let name = node.name.clone();
    let events = &mut node.events;
    let _ = timeout(quiet, async {
        while let Some(event) = events.recv().await {
            match event {
                NetEvent::PeerUp(p) | NetEvent::PeerDown(p) if p == stranger => {
                    panic!("{name}: connection event for the outsider")
                }
                NetEvent::Gossip { from, .. } if from == stranger => {
                    panic!("{name}: gossip from the outsider arrived")
                }
                NetEvent::Request { from, .. } if from == stranger => {
                    panic!("{name}: request from the outsider arrived")
                }
                _ => {}
            }
        }
    })
    .await;
}

/// Negative check: for `quiet`, no partner comes up at `node`.
async fn expect_no_peer_up(node: &mut Node, quiet: Duration) {
    let name = node.name.clone();
    let events = &mut node.events;
    let _ = timeout(quiet, async {
        while let Some(event) = events.recv().await {
            if let NetEvent::PeerUp(p) = event {
                panic!("{name}: partner {p:?} came up");
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_partner_is_reconnected_by_the_others() {
    init_tracing();
    let keys: Vec<Keypair> = (0..3).map(|_| Keypair::generate()).collect();
    let genesis = genesis_of(&keys.iter().collect::<Vec<_>>());
    let mut a = start("a", &keys[0], &genesis, &[]).await;
    let mut b = start("b", &keys[1], &genesis, &[&a]).await;
    // Only C knows the others' addresses; A and B learn C's from identify.
    let c = start("c", &keys[2], &genesis, &[&a, &b]).await;
    wait_mesh(&a, &[b.id, c.id]).await;
    wait_mesh(&b, &[a.id, c.id]).await;

    let (c_id, c_addr) = (c.id, c.addr.clone());
    c.handle.shutdown().await;
    drop(c);
    for node in [&mut a, &mut b] {
        next_matching(node, "C down", |e| {
            matches!(e, NetEvent::PeerDown(p) if p == c_id).then_some(())
        })
        .await;
    }

    // A new C on the same port, with no peers configured: it dials nobody.
    let config = NetworkConfig::new(
        keys[2].secret_bytes(),
        c_addr.to_string(),
        vec![],
        genesis.clone(),
    );
    let mut c = start_config("c-restarted", config).await;
    assert_eq!(c.addr, c_addr);
    for node in [&mut a, &mut b] {
        next_matching(node, "C up again", |e| {
            matches!(e, NetEvent::PeerUp(p) if p == c_id).then_some(())
        })
        .await;
    }
    wait_mesh(&c, &[a.id, b.id]).await;

    // And it is usable: A asks the new C.
    let ask = a.handle.request(c_id, Request::GetHeads);
    let serve = async {
        let reply = next_matching(&mut c, "A's request", |e| match e {
            NetEvent::Request { reply, .. } => Some(reply),
            _ => None,
        })
        .await;
        let _ = reply.send(Response::Heads(vec![]));
    };
    let (answer, ()) = tokio::join!(ask, serve);
    assert_eq!(answer.expect("heads"), Response::Heads(vec![]));

    for n in [&a, &b, &c] {
        n.handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partner_sending_garbage_is_banned_then_forgiven() {
    init_tracing();
    let keys: Vec<Keypair> = (0..2).map(|_| Keypair::generate()).collect();
    let genesis = genesis_of(&keys.iter().collect::<Vec<_>>());
    let mut config = NetworkConfig::new(
        keys[0].secret_bytes(),
        "/ip4/127.0.0.1/tcp/0",
        vec![],
        genesis.clone(),
    );
    config.ban_duration = Duration::from_secs(3);
    let mut a = start_config("a", config).await;

    // A genesis partner's key driven by a bare libp2p client that sends undecodable gossip and frames.
    let version = behaviour::protocol_version(&genesis.hash().to_hex());
    let evil_id = PartnerId(keys[1].public());
    let new_evil = || {
        bare_swarm(&keys[1], |key| {
            let config = gossipsub::ConfigBuilder::default()
                .validation_mode(gossipsub::ValidationMode::Strict)
                .build()
                .expect("gossipsub config");
            let mut gossip = gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Signed(key.clone()),
                config,
            )
            .expect("gossipsub");
            gossip
                .subscribe(&gossipsub::IdentTopic::new(topics::ENTRIES))
                .expect("subscribe");
            Evil {
                identify: identify::Behaviour::new(identify::Config::new(
                    version.clone(),
                    key.public(),
                )),
                gossip,
                rpc: request_response::Behaviour::with_codec(
                    RawCodec,
                    [(RPC_PROTOCOL, request_response::ProtocolSupport::Full)],
                    request_response::Config::default(),
                ),
            }
        })
    };
    let mut evil = new_evil();
    evil.dial(a.addr.clone()).expect("dial");
    let a_peer = p2p::identity::peer_id_of(&a.id).expect("peer id");

    // Wait until A accepted it as a partner and subscribed to the entries topic.
    let mut a_subscribed = false;
    let mut up = false;
    timeout(DEADLINE, async {
        while !(a_subscribed && up) {
            tokio::select! {
                event = evil.select_next_some() => {
                    if let SwarmEvent::Behaviour(EvilEvent::Gossip(gossipsub::Event::Subscribed { peer_id, topic })) = event {
                        a_subscribed |= peer_id == a_peer && topic.as_str() == topics::ENTRIES;
                    }
                }
                event = a.events.recv() => {
                    up |= matches!(event, Some(NetEvent::PeerUp(p)) if p == evil_id);
                }
            }
        }
    })
    .await
    .expect("evil partner up and A subscribed");

    // Two undecodable gossip messages and three undecodable request frames: five strikes.
    for i in 0..2u8 {
        evil.behaviour_mut()
            .gossip
            .publish(
                gossipsub::IdentTopic::new(topics::ENTRIES),
                vec![0xde, 0xad, i],
            )
            .expect("publish garbage");
    }
    for i in 0..3u8 {
        // A correct frame length around a body that is not a canonical request.
        evil.behaviour_mut()
            .rpc
            .send_request(&a_peer, vec![1, 0xff, 0xff, 0xff, 0xff, i]);
    }

    // A disconnects it (PeerDown) and the service never sees the garbage.
    let mut evil_closed = false;
    let mut down = false;
    timeout(DEADLINE, async {
        while !(evil_closed && down) {
            tokio::select! {
                event = evil.select_next_some() => {
                    if let SwarmEvent::ConnectionClosed { num_established: 0, .. } = event {
                        evil_closed = true;
                    }
                }
                event = a.events.recv() => match event {
                    Some(NetEvent::PeerDown(p)) if p == evil_id => down = true,
                    Some(NetEvent::Gossip { from, msg, .. }) => panic!("garbage gossip from {from:?} reached the service: {msg:?}"),
                    Some(NetEvent::Request { req, .. }) => panic!("garbage request reached the service: {req:?}"),
                    _ => {}
                },
            }
        }
    })
    .await
    .expect("A banned the partner sending garbage");

    // While banned, a fresh connection is refused before identify.
    drop(evil);
    let mut evil = new_evil();
    evil.dial(a.addr.clone()).expect("dial");
    let outcome = timeout(DEADLINE, async {
        loop {
            match evil.select_next_some().await {
                SwarmEvent::Behaviour(EvilEvent::Identify(identify::Event::Received {
                    ..
                })) => {
                    return "identified";
                }
                SwarmEvent::ConnectionClosed { .. } => return "closed",
                SwarmEvent::OutgoingConnectionError { .. } => return "refused",
                _ => {}
            }
        }
    })
    .await
    .expect("the banned partner's connection neither closed nor identified");
    assert_ne!(outcome, "identified", "a banned partner completed identify");

    // After the ban it may connect again: redial until A lets it in (the ban lifts on A's clock).
    drop(evil);
    let mut evil = new_evil();
    let a_addr = a.addr.clone();
    let a_events = &mut a.events;
    let mut redial = tokio::time::interval(Duration::from_millis(500));
    timeout(DEADLINE, async {
        loop {
            tokio::select! {
                _ = redial.tick() => {
                    if !evil.is_connected(&a_peer) {
                        let _ = evil.dial(a_addr.clone());
                    }
                }
                _ = evil.select_next_some() => {}
                event = a_events.recv() => {
                    if matches!(event, Some(NetEvent::PeerUp(p)) if p == evil_id) {
                        break;
                    }
                }
            }
        }
    })
    .await
    .expect("the partner is let in again after its ban");
    a.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_isolated_partner_is_cut_off_until_healed() {
    init_tracing();
    let keys: Vec<Keypair> = (0..3).map(|_| Keypair::generate()).collect();
    let genesis = genesis_of(&keys.iter().collect::<Vec<_>>());
    let mut a = start("a", &keys[0], &genesis, &[]).await;
    let mut b = start("b", &keys[1], &genesis, &[&a]).await;
    let c = start("c", &keys[2], &genesis, &[&a, &b]).await;
    wait_mesh(&a, &[b.id, c.id]).await;
    wait_mesh(&b, &[a.id, c.id]).await;
    wait_mesh(&c, &[a.id, b.id]).await;

    // Isolating answers once C's connections are closed.
    assert_eq!(c.handle.set_isolated(true).await.expect("isolate"), 0);
    assert!(c.handle.is_isolated());
    assert!(c.handle.connected_peers().await.expect("peers").is_empty());
    let c_id = c.id;
    for node in [&mut a, &mut b] {
        next_matching(node, "C down", |e| {
            matches!(e, NetEvent::PeerDown(p) if p == c_id).then_some(())
        })
        .await;
    }
    // Isolating again changes nothing.
    assert_eq!(c.handle.set_isolated(true).await.expect("isolate again"), 0);
    assert!(matches!(
        a.handle.request(c_id, Request::GetHeads).await,
        Err(NetError::NotConnected { .. })
    ));
    // Publishing with nobody to send to is not an error.
    c.handle
        .publish(Gossip::Entry(entry_by(&keys[2], 0)))
        .await
        .expect("publish while isolated");

    // Negative check: A and B redial C's learned address after 1 s and then 2 s later; for 3.5 s
    // C must not come up at either of them (and A and B stay connected, so nothing comes up).
    let quiet = Duration::from_millis(3500);
    tokio::join!(
        expect_no_peer_up(&mut a, quiet),
        expect_no_peer_up(&mut b, quiet)
    );
    assert!(c.handle.connected_peers().await.expect("peers").is_empty());

    // Healing: C redials at once and the others let it in.
    c.handle.set_isolated(false).await.expect("heal");
    assert!(!c.handle.is_isolated());
    for node in [&mut a, &mut b] {
        next_matching(node, "C up again", |e| {
            matches!(e, NetEvent::PeerUp(p) if p == c_id).then_some(())
        })
        .await;
    }
    wait_mesh(&c, &[a.id, b.id]).await;
    wait_mesh(&a, &[b.id, c.id]).await;

    // And gossip flows again.
    let entry = entry_by(&keys[2], 1);
    c.handle
        .publish(Gossip::Entry(entry.clone()))
        .await
        .expect("publish");
    let got = next_matching(&mut a, "C's entry", |e| match e {
        NetEvent::Gossip {
            from,
            msg: Gossip::Entry(got),
            ..
        } if from == c_id => Some(got),
        _ => None,
    })
    .await;
    assert_eq!(got, entry);

    for n in [&a, &b, &c] {
        n.handle.shutdown().await;
    }
}

/// Makes `a` ban `b` (A allows one strike): B gossips an entry, A's "service" reports it as invalid.
/// Returns when A reports B down.
async fn ban(a: &mut Node, b: &Node, b_key: &Keypair, seq: u64) {
    wait_mesh(a, &[b.id]).await;
    wait_mesh(b, &[a.id]).await;
    b.handle
        .publish(Gossip::Entry(entry_by(b_key, seq)))
        .await
        .expect("publish");
    let b_id = b.id;
    let id = next_matching(a, "B's entry", |e| match e {
        NetEvent::Gossip { from, id, .. } if from == b_id => Some(id),
        _ => None,
    })
    .await;
    a.handle.report_bad_gossip(id).await.expect("report");
    next_matching(a, "B banned", |e| {
        matches!(e, NetEvent::PeerDown(p) if p == b_id).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn isolation_and_bans_do_not_undo_each_other() {
    init_tracing();
    let keys: Vec<Keypair> = (0..2).map(|_| Keypair::generate()).collect();
    let genesis = genesis_of(&keys.iter().collect::<Vec<_>>());
    let ban_duration = Duration::from_secs(2);
    let mut config = NetworkConfig::new(
        keys[0].secret_bytes(),
        "/ip4/127.0.0.1/tcp/0",
        vec![],
        genesis.clone(),
    );
    config.max_strikes = 1;
    config.ban_duration = ban_duration;
    let mut a = start_config("a", config).await;
    let b = start("b", &keys[1], &genesis, &[&a]).await;
    let b_id = b.id;

    // Healing does not lift a running ban: B comes back only once the ban is over.
    let banned_at = Instant::now();
    ban(&mut a, &b, &keys[1], 0).await;
    assert_eq!(a.handle.set_isolated(true).await.expect("isolate"), 0);
    a.handle.set_isolated(false).await.expect("heal");
    next_matching(&mut a, "B up after its ban", |e| {
        matches!(e, NetEvent::PeerUp(p) if p == b_id).then_some(())
    })
    .await;
    assert!(
        banned_at.elapsed() >= ban_duration,
        "B was let in {:?} after its ban started, before the ban ended",
        banned_at.elapsed()
    );

    // A ban ending during isolation does not reconnect B. Negative check: the ban ends within
    // 2 s; for 2 s more (several ticks and redials) B must not come up.
    ban(&mut a, &b, &keys[1], 1).await;
    a.handle.set_isolated(true).await.expect("isolate");
    expect_no_peer_up(&mut a, ban_duration + Duration::from_secs(2)).await;
    assert!(a.handle.connected_peers().await.expect("peers").is_empty());
    a.handle.set_isolated(false).await.expect("heal");
    next_matching(&mut a, "B up after healing", |e| {
        matches!(e, NetEvent::PeerUp(p) if p == b_id).then_some(())
    })
    .await;

    a.handle.shutdown().await;
    b.handle.shutdown().await;
}

// ----- bare libp2p clients for the negative tests -----

fn bare_swarm<B: NetworkBehaviour>(
    key: &Keypair,
    behaviour: impl FnOnce(&libp2p::identity::Keypair) -> B,
) -> Swarm<B> {
    let keypair = p2p::identity::keypair_from_secret(&key.secret_bytes()).expect("keypair");
    libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(behaviour)
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

#[derive(NetworkBehaviour)]
struct Probe {
    identify: identify::Behaviour,
}

#[derive(NetworkBehaviour)]
struct Evil {
    identify: identify::Behaviour,
    gossip: gossipsub::Behaviour,
    rpc: request_response::Behaviour<RawCodec>,
}

/// Sends arbitrary bytes as one frame and reads whatever comes back.
#[derive(Clone, Default)]
struct RawCodec;

#[async_trait::async_trait]
impl request_response::Codec for RawCodec {
    type Protocol = libp2p::StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &Self::Protocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        read_all(io).await
    }

    async fn read_response<T>(&mut self, _: &Self::Protocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        read_all(io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res).await
    }
}

async fn read_all<T: futures::AsyncRead + Unpin + Send>(io: &mut T) -> std::io::Result<Vec<u8>> {
    use futures::AsyncReadExt;
    let mut out = Vec::new();
    io.take(1 << 16).read_to_end(&mut out).await?;
    Ok(out)
}

async fn write_frame<T: futures::AsyncWrite + Unpin + Send>(
    io: &mut T,
    body: &[u8],
) -> std::io::Result<()> {
    use futures::AsyncWriteExt;
    io.write_all(&(body.len() as u32).to_be_bytes()).await?;
    io.write_all(body).await?;
    io.flush().await
}
