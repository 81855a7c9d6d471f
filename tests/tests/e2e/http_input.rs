//! Bad HTTP input, against one node run inside the test process (no coalition needed): every
//! malformed body, wrong token, out-of-range amount and oversize body gets a JSON error with its
//! status and code, and changes nothing; a retried receipt gets the lot it already has.

use anyhow::{ensure, Context, Result};
use coalition_client::auth::member_read_header;
use coalition_client::types::{IssueRequest, LogHeadInfo};
use coalition_client::{Client, NodeConfig};
use coalition_core::clock::Clock as _;
use coalition_core::clock::ManualClock;
use coalition_core::crypto::Keypair;
use coalition_core::genesis::Genesis;
use coalition_core::read_auth::{ReadTarget, READ_WINDOW_SECS};
use coalition_core::record::{MemberId, PartnerId, Timestamp};
use coalition_node::config::Config;
use coalition_tests::{heads_key, raw_http, raw_http_with_head};

/// The token the in-process node gives its auditor.
const AUDITOR_TOKEN: &str = "in-process-auditor-token";

/// One partner's node run inside the test process, on the real store, writer, network and HTTP
/// stack, with a [`ManualClock`]: for checks that need a node but no coalition (HTTP input
/// handling), without starting processes. A coalition of one partner, so its own vote is a quorum.
struct InProcessNode {
    /// The node's data directory and anchor file (removed on drop).
    _dir: tempfile::TempDir,
    /// `127.0.0.1:port` of its API.
    api: String,
    /// Its API token.
    token: String,
    /// Its clock: moves only when a test moves it.
    clock: ManualClock,
    runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl InProcessNode {
    /// Starts the node at time `1_800_000_010`, ten seconds into an hour-long epoch 0.
    fn start() -> Result<InProcessNode> {
        InProcessNode::start_in(tempfile::tempdir()?, None)
    }

    /// [`InProcessNode::start`] in `dir`, serving TLS with the certificate and key files `tls`.
    fn start_in(
        dir: tempfile::TempDir,
        tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    ) -> Result<InProcessNode> {
        const T0: Timestamp = 1_800_000_000;
        let (tls_cert, tls_key) = tls.unzip();
        let (genesis, keys) = coalition_core::test_util::test_genesis(1);
        let genesis = Genesis {
            genesis_time: T0,
            epoch_secs: 3600,
            ..genesis
        };
        let keypair = std::sync::Arc::new(keys.into_iter().next().context("one partner key")?);
        let me = PartnerId(keypair.public());
        let token = "in-process-test-token".to_string();
        let file = NodeConfig {
            genesis: dir.path().join("genesis.json"),
            key_file: dir.path().join("partner.key"),
            data_dir: dir.path().join("db"),
            p2p_listen: "/ip4/127.0.0.1/tcp/0".into(),
            peers: Vec::new(),
            api_listen: "127.0.0.1:0".into(),
            api_token: token.clone(),
            auditor_tokens: vec![AUDITOR_TOKEN.into()],
            tls_cert,
            tls_key,
            anchor_file: None,
            anti_entropy_secs: 2,
            vote_timeout_ms: 5_000,
        };
        let config = Config {
            anchor_file: dir.path().join("anchors.txt"),
            api_listen: "127.0.0.1:0".parse()?,
            genesis: std::sync::Arc::new(genesis),
            keypair,
            me,
            file,
        };
        let clock = ManualClock::at(T0 + 10);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let shared: coalition_core::clock::SharedClock = std::sync::Arc::new(clock.clone());
        let (listener, running) = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let running = coalition_node::service::start(&config, shared).await?;
            anyhow::Ok((listener, running))
        })?;
        let api = listener.local_addr()?.to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = runtime.spawn(running.serve(listener, async {
            let _ = stopped.await;
        }));
        Ok(InProcessNode {
            _dir: dir,
            api,
            token,
            clock,
            runtime,
            stop: Some(stop),
            served: Some(served),
        })
    }

    /// A client of its API, with its token.
    fn client(&self) -> Client {
        Client::new(&format!("http://{}", self.api), Some(self.token.clone()))
    }
}

impl Drop for InProcessNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            // A clean shutdown closes the store before the directory is removed.
            let _ = self.runtime.block_on(served);
        }
    }
}

/// One request and what it must be answered.
struct Case {
    path: String,
    headers: Vec<(&'static str, String)>,
    body: String,
    status: u16,
    code: &'static str,
    needle: &'static str,
}

fn expect_error(node: &InProcessNode, method: &str, case: &Case) -> Result<()> {
    let headers: Vec<(&str, &str)> = case.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (got, text) = raw_http(
        &node.api,
        method,
        &case.path,
        &headers,
        case.body.as_bytes(),
    )?;
    let what = format!(
        "{method} {} with a {}-byte body",
        case.path,
        case.body.len()
    );
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{what}: answer is not JSON: {text:?}"))?;
    ensure!(
        got == case.status,
        "{what}: HTTP {got}, expected {}: {text}",
        case.status
    );
    let (gc, gm) = (
        v["error"]["code"].as_str().unwrap_or_default(),
        v["error"]["message"].as_str().unwrap_or_default(),
    );
    ensure!(
        gc == case.code,
        "{what}: code {gc:?}, expected {:?}: {text}",
        case.code
    );
    ensure!(
        gm.to_lowercase().contains(&case.needle.to_lowercase()),
        "{what}: message {gm:?} does not mention {:?}",
        case.needle
    );
    Ok(())
}

fn heads(node: &InProcessNode) -> Result<Vec<LogHeadInfo>> {
    Ok(node.client().status()?.logs)
}

fn assert_unchanged(node: &InProcessNode, before: &[LogHeadInfo], after: &str) -> Result<()> {
    ensure!(
        heads_key(&heads(node)?) == heads_key(before),
        "the log changed after {after}"
    );
    Ok(())
}

/// A good issue does move the log: the "unchanged" checks above it can fail.
fn expect_good_issue(node: &InProcessNode, body: &str, before: &[LogHeadInfo]) -> Result<()> {
    let bearer = format!("Bearer {}", node.token);
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", bearer.as_str()),
    ];
    let (status, text) = raw_http(&node.api, "POST", "/v1/issue", &headers, body.as_bytes())?;
    ensure!(status == 200, "a good issue: HTTP {status}: {text}");
    ensure!(
        heads_key(&heads(node)?) != heads_key(before),
        "a good issue changed the log"
    );
    Ok(())
}

fn member() -> MemberId {
    MemberId(Keypair::generate().public())
}

#[test]
fn bad_http_input_gets_a_json_error_and_changes_nothing() -> Result<()> {
    let node = InProcessNode::start()?;
    let member = member();
    let seed = node.client().issue(&IssueRequest {
        member,
        points: 42,
        reference: Some("seed".into()),
        expires_in_secs: None,
    })?;
    let before = heads(&node)?;

    let bearer = format!("Bearer {}", node.token);
    let mut wrong = node.token.clone().into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    let wrong = format!("Bearer {}", String::from_utf8(wrong)?);
    let json = ("Content-Type", "application/json".to_string());
    let auth = ("Authorization", bearer);
    let m = member.to_hex();
    let good = format!(r#"{{"member":"{m}","points":5}}"#);
    let case =
        |path: &str, headers: Vec<(&'static str, String)>, body: String, status, code, needle| {
            Case {
                path: path.into(),
                headers,
                body,
                status,
                code,
                needle,
            }
        };
    let issue = |body: String, status, code, needle| {
        case(
            "/v1/issue",
            vec![json.clone(), auth.clone()],
            body,
            status,
            code,
            needle,
        )
    };
    let cases = vec![
        issue(
            format!(r#"{{"member":"{m}","points":5"#),
            400,
            "bad_request",
            "invalid request body",
        ),
        issue(
            "not json at all".into(),
            400,
            "bad_request",
            "invalid request body",
        ),
        issue(String::new(), 400, "bad_request", "invalid request body"),
        case(
            "/v1/issue",
            vec![json.clone()],
            good.clone(),
            401,
            "unauthorized",
            "token",
        ),
        case(
            "/v1/issue",
            vec![json.clone(), ("Authorization", wrong)],
            good.clone(),
            401,
            "unauthorized",
            "token",
        ),
        case(
            "/v1/issue",
            vec![json.clone(), ("Authorization", node.token.clone())],
            good.clone(),
            401,
            "unauthorized",
            "token",
        ),
        issue(
            format!(r#"{{"member":"{m}","points":-5}}"#),
            400,
            "bad_request",
            "points",
        ),
        issue(
            format!(r#"{{"member":"{m}","points":18446744073709551616}}"#),
            400,
            "bad_request",
            "points",
        ),
        issue(
            format!(r#"{{"member":"{m}","points":1e30}}"#),
            400,
            "bad_request",
            "points",
        ),
        issue(
            format!(r#"{{"member":"{m}","points":"5"}}"#),
            400,
            "bad_request",
            "points",
        ),
        issue(
            format!(r#"{{"member":"{m}","points":0}}"#),
            400,
            "bad_request",
            "at least 1",
        ),
        issue(
            format!(r#"{{"member":"{m}","points":1000000000001}}"#),
            400,
            "bad_request",
            "at most",
        ),
        issue(
            format!(r#"{{"member":"{m}","points":5,"expires_in_secs":18446744073709551615}}"#),
            400,
            "bad_request",
            "expires_in_secs",
        ),
        issue(
            format!(r#"{{"member":"{m}","points":5,"bonus":1}}"#),
            400,
            "bad_request",
            "bonus",
        ),
        issue(
            format!(r#"{{"member":"{m}","points":5,"reference":""}}"#),
            400,
            "bad_request",
            "reference must not be empty",
        ),
        issue(
            format!(r#"{{"member":"{m}","points":5,"reference":"  "}}"#),
            400,
            "bad_request",
            "reference must not be empty",
        ),
        issue(
            r#"{"member":"zz","points":5}"#.into(),
            400,
            "bad_request",
            "member",
        ),
        case(
            "/v1/redeem",
            vec![json.clone()],
            r#"{"order":"00ff"}"#.into(),
            400,
            "bad_request",
            "order token",
        ),
        case(
            "/v1/redeem",
            vec![json.clone()],
            r#"{"order":"not hex"}"#.into(),
            400,
            "bad_request",
            "hex",
        ),
        case(
            "/v1/redeem",
            vec![json.clone()],
            r#"{"order":5}"#.into(),
            400,
            "bad_request",
            "invalid request body",
        ),
        case(
            "/v1/members/ab/balance",
            vec![],
            String::new(),
            400,
            "bad_request",
            "member",
        ),
    ];
    for c in &cases {
        let method = if c.path.ends_with("/balance") {
            "GET"
        } else {
            "POST"
        };
        expect_error(&node, method, c)?;
        assert_unchanged(
            &node,
            &before,
            &format!("{method} {} {:.80}", c.path, c.body),
        )?;
    }

    // A POS retrying a receipt in a later second (so the retry is a different record) gets the lot
    // already issued; reusing the reference for a different purchase is refused. Neither moves
    // the log.
    node.clock.advance(1);
    let again = node.client().issue(&IssueRequest {
        member,
        points: 42,
        reference: Some("seed".into()),
        expires_in_secs: None,
    })?;
    ensure!(
        again.lot == seed.lot,
        "a retried issue got lot {}, not {}",
        again.lot,
        seed.lot
    );
    assert_unchanged(&node, &before, "a retried issue")?;
    let other = format!(r#"{{"member":"{m}","points":43,"reference":"seed"}}"#);
    expect_error(
        &node,
        "POST",
        &case(
            "/v1/issue",
            vec![json.clone(), auth.clone()],
            other,
            409,
            "reference_reused",
            "already used",
        ),
    )?;
    assert_unchanged(&node, &before, "a reused reference")?;
    ensure!(
        node.client().balance(&member)?.available == 42,
        "the member's balance moved"
    );
    expect_good_issue(&node, &good, &before)
}

/// Members' data, logs and proofs are not public: a member's balance and history need the
/// partner's or an auditor's token or the member's own signature on the request, and logs and
/// proofs a token. An auditor's token reads but cannot issue.
#[test]
fn members_data_logs_and_proofs_need_a_reader() -> Result<()> {
    let node = InProcessNode::start()?;
    let key = Keypair::generate();
    let member = MemberId(key.public());
    let issued = node.client().issue(&IssueRequest {
        member,
        points: 42,
        reference: Some("privacy".into()),
        expires_in_secs: None,
    })?;
    let genesis = node.client().genesis()?;
    let balance = format!("/v1/members/{}/balance", member.to_hex());
    let history = format!("/v1/members/{}/history", member.to_hex());
    let me = node.client().status()?.partner.partner;
    let logs = format!("/v1/logs/{}", me.to_hex());
    let proof = format!("/v1/proofs/{}", issued.lot);
    let now = node.clock.now();
    let genesis_hash = genesis.hash();
    let signed_for = |by: &Keypair, node: &PartnerId, path: &str, time| {
        let target = ReadTarget {
            genesis: &genesis_hash,
            node,
            path,
        };
        member_read_header(by, target, time)
    };
    let signed = |by: &Keypair, path: &str, time| signed_for(by, &me, path, time);
    let bearer = |t: &str| format!("Bearer {t}");
    let get = |path: &str, auth: Option<String>| -> Result<(u16, String)> {
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        raw_http(&node.api, "GET", path, &headers, b"")
    };
    let refused = |path: &str, auth: Option<String>, needle: &str| -> Result<()> {
        let (status, text) = get(path, auth)?;
        ensure!(
            status == 401 && text.contains("\"unauthorized\"") && text.contains(needle),
            "GET {path}: expected 401 unauthorized mentioning {needle:?}, got {status}: {text}"
        );
        Ok(())
    };
    let allowed = |path: &str, auth: Option<String>| -> Result<()> {
        let (status, text) = get(path, auth)?;
        ensure!(status == 200, "GET {path}: HTTP {status}: {text}");
        Ok(())
    };

    // Nobody in particular reads nothing.
    refused(&balance, None, "member's signature")?;
    refused(&history, None, "member's signature")?;
    refused(&logs, None, "auditors' tokens")?;
    refused(&proof, None, "auditors' tokens")?;
    refused(
        &balance,
        Some(bearer("not-the-token-at-all")),
        "wrong token",
    )?;
    // The partner and its auditor read everything.
    for token in [node.token.as_str(), AUDITOR_TOKEN] {
        for path in [&balance, &history, &logs] {
            allowed(path, Some(bearer(token)))?;
        }
    }
    // The member reads its own balance and history with a fresh signature of that very request.
    allowed(&balance, Some(signed(&key, &balance, now)))?;
    allowed(&history, Some(signed(&key, &history, now)))?;
    // Not another member's signature, not the balance's signature for the history, not a
    // signature from longer ago than the read window, and never logs.
    let other = Keypair::generate();
    refused(
        &balance,
        Some(signed(&other, &balance, now)),
        "not signed by member",
    )?;
    refused(
        &history,
        Some(signed(&key, &balance, now)),
        "not signed by member",
    )?;
    let stale = now - READ_WINDOW_SECS - 1;
    refused(
        &balance,
        Some(signed(&key, &balance, stale)),
        "sign it again",
    )?;
    // A read signed for another partner's node is no good here.
    let elsewhere = PartnerId(Keypair::generate().public());
    refused(
        &balance,
        Some(signed_for(&key, &elsewhere, &balance, now)),
        "not signed by member",
    )?;
    refused(&logs, Some(signed(&key, &logs, now)), "auditors' tokens")?;
    // An auditor's token is not a partner's: it cannot issue.
    let issue = Client::new(&format!("http://{}", node.api), Some(AUDITOR_TOKEN.into())).issue(
        &IssueRequest {
            member,
            points: 1,
            reference: None,
            expires_in_secs: None,
        },
    );
    match issue {
        Err(e) => ensure!(e.code() == Some("unauthorized"), "an auditor's issue: {e}"),
        Ok(r) => anyhow::bail!("an auditor's token issued {} points", r.points),
    }
    Ok(())
}

/// With `tls_cert` and `tls_key` the API speaks only TLS: a client that trusts the certificate
/// (`--ca`) reaches it, plain HTTP and a client trusting only the public web's roots do not.
#[test]
fn the_api_serves_tls_when_configured() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse()?));
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let (cert_path, key_path) = (dir.path().join("api.crt"), dir.path().join("api.key"));
    std::fs::write(&cert_path, cert.pem())?;
    std::fs::write(&key_path, key.serialize_pem())?;
    let node = InProcessNode::start_in(dir, Some((cert_path.clone(), key_path)))?;
    let https = format!("https://{}", node.api);

    let roots = coalition_client::TlsRoots::from_pem_file(&cert_path)?;
    let trusted = Client::new(&https, Some(node.token.clone())).with_roots(&roots);
    ensure!(
        trusted.status().is_ok(),
        "a client trusting the certificate is refused"
    );
    ensure!(
        trusted.balance(&member()).is_ok(),
        "the token does not read over TLS"
    );
    match Client::new(&https, None).status() {
        Err(coalition_client::ClientError::Transport { reason, .. }) => ensure!(
            reason.to_lowercase().contains("certificate")
                || reason.to_lowercase().contains("issuer"),
            "an untrusted certificate is refused for another reason: {reason}"
        ),
        other => anyhow::bail!("a client trusting only public roots: {other:?}"),
    }
    let plain = Client::new(&format!("http://{}", node.api), None).status();
    ensure!(plain.is_err(), "plain HTTP is answered on the TLS port");

    // The CLI: `--ca` reaches it, nothing else does.
    let ca = cert_path.to_string_lossy().to_string();
    let ok = coalition_tests::run_cli(&["--node", &https, "--ca", &ca, "--json", "status"])?;
    coalition_tests::check_output("status over TLS with --ca", &ok)?;
    let refused = coalition_tests::run_cli(&["--node", &https, "status"])?;
    ensure!(
        refused.status.code() == Some(1),
        "status over TLS without --ca: {:?}",
        refused.status
    );
    let missing =
        coalition_tests::run_cli(&["--node", &https, "--ca", "/nonexistent.pem", "status"])?;
    let stderr = String::from_utf8_lossy(&missing.stderr);
    ensure!(
        missing.status.code() == Some(1) && stderr.contains("cannot use the certificate authority"),
        "a missing --ca file: {stderr}"
    );
    Ok(())
}

/// `/metrics` says what it is: OpenMetrics text, which scrapers parse differently from Prometheus
/// 0.0.4 text.
#[test]
fn metrics_are_served_as_openmetrics() -> Result<()> {
    let node = InProcessNode::start()?;
    let (status, head, body) = raw_http_with_head(&node.api, "GET", "/metrics", &[], b"")?;
    ensure!(status == 200, "/metrics: HTTP {status}");
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .context("/metrics sent no Content-Type")?;
    ensure!(
        content_type == "application/openmetrics-text; version=1.0.0; charset=utf-8",
        "/metrics Content-Type is {content_type:?}"
    );
    ensure!(
        body.trim_end().ends_with("# EOF"),
        "/metrics body is not OpenMetrics text: {body:.200}"
    );
    // Labelled counters have their series before the first event, so rate() and alerts work
    // from the first scrape.
    for series in [
        "coalition_votes_refused_total{reason=\"conflict\"} 0",
        "coalition_redemptions_failed_total{reason=\"no_quorum\"} 0",
        "coalition_entries_rejected_total{reason=\"invalid\"} 0",
        "coalition_points_redeemed_total 0",
    ] {
        ensure!(body.contains(series), "/metrics lacks {series}:\n{body}");
    }
    Ok(())
}

#[test]
fn oversize_bodies_are_refused_with_413_and_change_nothing() -> Result<()> {
    let node = InProcessNode::start()?;
    let member = member();
    let before = heads(&node)?;
    let bearer = format!("Bearer {}", node.token);
    let headers = vec![
        ("Content-Type", "application/json".to_string()),
        ("Authorization", bearer),
    ];
    // Valid JSON, just too big: a 70 KiB receipt reference, and a 100 KiB order token.
    let big_issue = format!(
        r#"{{"member":"{}","points":5,"reference":"{}"}}"#,
        member.to_hex(),
        "r".repeat(70 * 1024)
    );
    let big_redeem = format!(r#"{{"order":"{}"}}"#, "ab".repeat(50 * 1024));
    for (path, body) in [("/v1/issue", big_issue), ("/v1/redeem", big_redeem)] {
        let c = Case {
            path: path.into(),
            headers: headers.clone(),
            body,
            status: 413,
            code: "payload_too_large",
            needle: "",
        };
        expect_error(&node, "POST", &c).with_context(|| {
            format!("{path}: a body over 64 KiB should be refused with HTTP 413")
        })?;
        assert_unchanged(&node, &before, &format!("an oversize POST {path}"))?;
    }
    // Just under the limit is accepted (the limit is the body size, not something smaller).
    let fits = format!(
        r#"{{"member":"{}","points":5,"reference":"{}"}}"#,
        member.to_hex(),
        "r".repeat(60 * 1024)
    );
    expect_good_issue(&node, &fits, &before)
}
