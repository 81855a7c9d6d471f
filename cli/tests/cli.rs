//! The `coalition` binary as a user runs it, without a node: files written by `network init`, the
//! wallet commands, exit codes and error lines. Commands that need running nodes are tested end to end
//! in the workspace's `tests/` crate.
//!
//! Each test works in its own temporary directory. Every command runs with a clean environment for
//! the variables the CLI reads, so a developer's COALITION_* settings cannot change the outcome.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use std::net::TcpListener;
use std::path::Path;
use tempfile::TempDir;

const PASS: &str = "correct horse battery staple";

/// `coalition` with no COALITION_* variables inherited.
fn coalition() -> Command {
    let mut cmd = Command::cargo_bin("coalition").expect("the coalition binary is built");
    for v in [
        "COALITION_NODE",
        "COALITION_TOKEN",
        "COALITION_WALLET_PASSPHRASE",
    ] {
        cmd.env_remove(v);
    }
    cmd
}

/// `coalition` with the wallet passphrase in the environment.
fn with_pass(pass: &str) -> Command {
    let mut cmd = coalition();
    cmd.env("COALITION_WALLET_PASSPHRASE", pass);
    cmd
}

fn json_stdout(out: &std::process::Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{text}"))
}

/// A loopback port with nothing listening on it.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = l.local_addr().expect("local addr").port();
    drop(l);
    port
}

/// Asserts one line on stderr containing `needle`, and returns it.
fn one_line_error(out: &std::process::Output, needle: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "stderr is not one line:\n{err}"
    );
    assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    assert!(
        err.starts_with("coalition: "),
        "stderr does not start with the program name:\n{err}"
    );
    err
}

fn new_wallet(dir: &TempDir, name: &str) -> (std::path::PathBuf, String) {
    let path = dir.path().join(name);
    let out = with_pass(PASS)
        .args(["member", "new", "--wallet"])
        .arg(&path)
        .assert()
        .success();
    let id = String::from_utf8_lossy(&out.get_output().stdout)
        .trim()
        .to_string();
    (path, id)
}

// ---------------------------------------------------------------------------------------------------
// network init

#[test]
fn network_init_writes_genesis_configs_and_keys() {
    let dir = TempDir::new().expect("temp dir");
    let out = coalition()
        .args([
            "network",
            "init",
            "--partners",
            "4",
            "--base-port",
            "7300",
            "--epoch-secs",
            "30",
            "--dir",
        ])
        .arg(dir.path())
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    for name in [
        "Café Lumière",
        "Bookshop Folio",
        "Cinema Aurora",
        "Fuel Station Nord",
        "http://127.0.0.1:7307",
    ] {
        assert!(stdout.contains(name), "output lacks {name}:\n{stdout}");
    }

    let genesis: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("genesis.json")).expect("genesis.json"),
    )
    .expect("genesis.json is JSON");
    let partners = genesis["partners"].as_array().expect("partners");
    assert_eq!(partners.len(), 4);
    assert_eq!(genesis["epoch_secs"], 30);
    let t = genesis["genesis_time"].as_u64().expect("genesis_time");
    assert_eq!(t % 30, 0, "genesis time is rounded down to the epoch");
    assert_eq!(genesis["fee_bps"], 0);
    assert_eq!(genesis["max_clock_skew_secs"], 300);
    assert_eq!(genesis["point_value"]["minor_units"], 1);

    for i in 0..4u16 {
        let pdir = dir.path().join(format!("partner-{i}"));
        let toml_text = std::fs::read_to_string(pdir.join("node.toml")).expect("node.toml");
        let cfg: toml::Value = toml::from_str(&toml_text).expect("node.toml is TOML");
        assert_eq!(
            cfg["p2p_listen"].as_str(),
            Some(format!("/ip4/127.0.0.1/tcp/{}", 7300 + 2 * i).as_str())
        );
        assert_eq!(
            cfg["api_listen"].as_str(),
            Some(format!("127.0.0.1:{}", 7301 + 2 * i).as_str())
        );
        let peers: Vec<&str> = cfg["peers"]
            .as_array()
            .expect("peers")
            .iter()
            .filter_map(|p| p.as_str())
            .collect();
        assert_eq!(peers.len(), 3);
        assert!(
            !peers.contains(&format!("/ip4/127.0.0.1/tcp/{}", 7300 + 2 * i).as_str()),
            "a node peers with itself"
        );
        let token = cfg["api_token"].as_str().expect("api_token");
        assert_eq!(token.len(), 64);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
        for key in ["genesis", "key_file", "data_dir"] {
            let p = cfg[key].as_str().expect("path");
            assert!(Path::new(p).is_absolute(), "{key} = {p} is not absolute");
        }
        assert!(cfg["data_dir"]
            .as_str()
            .is_some_and(|d| d.ends_with(&format!("partner-{i}/data"))));

        let key: Value =
            serde_json::from_slice(&std::fs::read(pdir.join("partner.key")).expect("partner.key"))
                .expect("partner.key is JSON");
        assert_eq!(key["public"], partners[usize::from(i)]["id"]);
        assert_eq!(key["name"], partners[usize::from(i)]["name"]);
        assert_eq!(key["secret"].as_str().map(str::len), Some(64));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in ["partner.key", "node.toml"] {
                let mode = std::fs::metadata(pdir.join(f))
                    .expect("metadata")
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{f} is readable by others");
            }
        }
    }
}

#[test]
fn network_init_refuses_to_overwrite() {
    let dir = TempDir::new().expect("temp dir");
    let init = |extra: &[&str]| {
        let mut c = coalition();
        c.args(["network", "init", "--partners", "2", "--dir"])
            .arg(dir.path())
            .args(extra);
        c
    };
    init(&[]).assert().success();
    let before = std::fs::read(dir.path().join("genesis.json")).expect("genesis");
    let out = init(&[]).assert().code(1);
    one_line_error(out.get_output(), "genesis.json already exists");
    assert_eq!(
        std::fs::read(dir.path().join("genesis.json")).expect("genesis"),
        before
    );
}

#[test]
fn network_init_json_and_names() {
    let dir = TempDir::new().expect("temp dir");
    let out = coalition()
        .args([
            "--json",
            "network",
            "init",
            "--partners",
            "5",
            "--names",
            "A,B,C,D,E",
            "--dir",
        ])
        .arg(dir.path())
        .assert()
        .success();
    let v = json_stdout(out.get_output());
    let partners = v["partners"].as_array().expect("partners");
    assert_eq!(partners.len(), 5);
    assert_eq!(partners[4]["name"], "E");
    assert_eq!(partners[0]["api_url"], "http://127.0.0.1:7101");
    assert_eq!(partners[4]["api_url"], "http://127.0.0.1:7109");
    assert_eq!(partners[2]["api_token"].as_str().map(str::len), Some(64));
    assert_eq!(v["quorum"], 4, "n=5, f=1: quorum is ceil((n+f+1)/2)");

    let dir = TempDir::new().expect("temp dir");
    let out = coalition()
        .args(["network", "init", "--partners", "5", "--dir"])
        .arg(dir.path())
        .arg("--json")
        .assert()
        .success();
    assert_eq!(
        json_stdout(out.get_output())["partners"][4]["name"],
        "Partner 5"
    );
}

#[test]
fn network_init_usage_errors_exit_2() {
    let dir = TempDir::new().expect("temp dir");
    let out = coalition()
        .args([
            "network",
            "init",
            "--partners",
            "3",
            "--names",
            "A,B",
            "--dir",
        ])
        .arg(dir.path())
        .assert()
        .code(2);
    one_line_error(out.get_output(), "--names lists 2 names for 3 partners");
    coalition()
        .args(["network", "init", "--partners", "0", "--dir"])
        .arg(dir.path())
        .assert()
        .code(2);
    coalition()
        .args([
            "network",
            "init",
            "--partners",
            "3",
            "--base-port",
            "65533",
            "--dir",
        ])
        .arg(dir.path())
        .assert()
        .code(2);
    assert!(
        !dir.path().join("genesis.json").exists(),
        "a refused init wrote files"
    );
}

// ---------------------------------------------------------------------------------------------------
// member wallet

#[test]
fn member_new_id_show_with_env_passphrase() {
    let dir = TempDir::new().expect("temp dir");
    let (wallet, id) = new_wallet(&dir, "alice.wallet");
    assert_eq!(id.len(), 64, "member new prints the hex id: {id:?}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&wallet)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(&wallet).expect("wallet");
    assert!(
        text.contains(&id),
        "the member id is in clear in the wallet"
    );
    assert!(text.contains("argon2id") && text.contains("xchacha20poly1305"));

    // `id` and `show` need no passphrase.
    coalition()
        .args(["member", "id", "--wallet"])
        .arg(&wallet)
        .assert()
        .success()
        .stdout(format!("{id}\n"));
    coalition()
        .args(["member", "show", "--wallet"])
        .arg(&wallet)
        .assert()
        .success()
        .stdout(predicate::str::contains(id.as_str()).and(predicate::str::contains("█")));

    for sub in ["id", "show"] {
        let out = coalition()
            .args(["--json", "member", sub, "--wallet"])
            .arg(&wallet)
            .assert()
            .success();
        assert_eq!(json_stdout(out.get_output())["member"], id.as_str());
    }
    let out = with_pass(PASS)
        .args(["member", "new", "--json", "--wallet"])
        .arg(dir.path().join("bob.wallet"))
        .assert()
        .success();
    assert_eq!(
        json_stdout(out.get_output())["member"]
            .as_str()
            .map(str::len),
        Some(64)
    );
}

#[test]
fn member_new_refuses_to_overwrite() {
    let dir = TempDir::new().expect("temp dir");
    let (wallet, _) = new_wallet(&dir, "w");
    let before = std::fs::read(&wallet).expect("wallet");
    let out = with_pass(PASS)
        .args(["member", "new", "--wallet"])
        .arg(&wallet)
        .assert()
        .code(1);
    one_line_error(out.get_output(), "already exists");
    assert_eq!(std::fs::read(&wallet).expect("wallet"), before);
}

#[test]
fn no_passphrase_and_no_terminal_is_a_clear_error() {
    let dir = TempDir::new().expect("temp dir");
    let path = dir.path().join("w");
    // assert_cmd gives the child no terminal on stdin.
    let out = coalition()
        .args(["member", "new", "--wallet"])
        .arg(&path)
        .assert()
        .code(1);
    one_line_error(out.get_output(), "COALITION_WALLET_PASSPHRASE");
    assert!(!path.exists());
    let out = with_pass("")
        .args(["member", "new", "--wallet"])
        .arg(&path)
        .assert()
        .code(1);
    one_line_error(out.get_output(), "passphrase is empty");
}

/// Signing needs the key, and the key needs the passphrase: the node is asked first, so this test
/// serves the balance from a tiny fake node on loopback.
#[test]
fn wrong_passphrase_exit_code_and_message() {
    let dir = TempDir::new().expect("temp dir");
    let (wallet, id) = new_wallet(&dir, "w");
    let node = FakeNode::balance(&id, 100);
    let out = with_pass("not the passphrase")
        .args([
            "--node",
            &node.url,
            "member",
            "sign-redeem",
            "--points",
            "10",
            "--at",
            &"22".repeat(32),
            "--wallet",
        ])
        .arg(&wallet)
        .assert()
        .code(1);
    let err = one_line_error(out.get_output(), "wrong passphrase for wallet");
    assert!(
        err.contains(&wallet.display().to_string()),
        "the message names the file: {err}"
    );
}

#[test]
fn sign_redeem_with_the_right_passphrase_prints_a_token() {
    let dir = TempDir::new().expect("temp dir");
    let (wallet, id) = new_wallet(&dir, "w");
    let node = FakeNode::balance(&id, 100);
    // The fake node's genesis is `test_genesis(1)`: its one partner redeems.
    let redeemer = coalition_core::test_util::partner_key(0).public().to_hex();
    let out = with_pass(PASS)
        .args([
            "--json",
            "--node",
            &node.url,
            "member",
            "sign-redeem",
            "--points",
            "30",
            "--at",
            &redeemer,
            "--wallet",
        ])
        .arg(&wallet)
        .assert()
        .success();
    let v = json_stdout(out.get_output());
    assert_eq!(v["points"], 30);
    assert_eq!(v["member_seq"], 7);
    assert_eq!(v["lots"].as_array().map(Vec::len), Some(1));
    let token = v["token"].as_str().expect("token");
    let bytes = hex::decode(token).expect("hex token");
    let order: coalition_core::record::SignedOrder =
        coalition_core::encoding::decode(&bytes).expect("decodes");
    assert!(order.verify_signature().is_ok());
    assert_eq!(order.order.member.to_hex(), id);

    // Insufficient points fail before anything is signed.
    let node = FakeNode::balance(&id, 100);
    let out = with_pass(PASS)
        .args([
            "--node",
            &node.url,
            "member",
            "sign-redeem",
            "--points",
            "101",
            "--at",
            &redeemer,
            "--wallet",
        ])
        .arg(&wallet)
        .assert()
        .code(1);
    one_line_error(out.get_output(), "only 100 are available");
}

#[test]
fn corrupt_wallet_is_named() {
    let dir = TempDir::new().expect("temp dir");
    let (wallet, _) = new_wallet(&dir, "w");
    let text = std::fs::read_to_string(&wallet).expect("wallet");

    // Truncated.
    std::fs::write(&wallet, &text[..text.len() / 2]).expect("truncate");
    let out = coalition()
        .args(["member", "id", "--wallet"])
        .arg(&wallet)
        .assert()
        .code(1);
    let err = one_line_error(out.get_output(), "is damaged");
    assert!(err.contains(&wallet.display().to_string()));

    // One hex digit of the ciphertext changed.
    let v: Value = serde_json::from_str(&text).expect("json");
    let ct = v["ciphertext"].as_str().expect("ciphertext");
    let rest = ct.get(1..).expect("ciphertext is not empty");
    let flipped = if ct.starts_with('0') {
        format!("1{rest}")
    } else {
        format!("0{rest}")
    };
    std::fs::write(&wallet, text.replace(ct, &flipped)).expect("edit");
    let out = coalition()
        .args(["member", "id", "--wallet"])
        .arg(&wallet)
        .assert()
        .code(1);
    one_line_error(out.get_output(), "checksum mismatch");

    // Not a wallet at all; missing file.
    std::fs::write(&wallet, "hello").expect("write");
    let out = coalition()
        .args(["member", "show", "--wallet"])
        .arg(&wallet)
        .assert()
        .code(1);
    one_line_error(out.get_output(), "not valid JSON");
    let out = coalition()
        .args(["member", "id", "--wallet"])
        .arg(dir.path().join("missing"))
        .assert()
        .code(1);
    one_line_error(out.get_output(), "cannot read wallet");
}

// ---------------------------------------------------------------------------------------------------
// usage errors, unreachable node, completions

#[test]
fn usage_errors_exit_2() {
    let cases: &[&[&str]] = &[
        &[],
        &["frobnicate"],
        &["member", "balance"],
        &["member", "balance", "--member", "abc"],
        &["member", "balance", "--wallet", "w", "--member", "abc"],
        &["member", "redeem", "--wallet", "w", "--points", "0"],
        &["member", "redeem", "--wallet", "w", "--points", "-5"],
        &["partner", "issue", "--member", "zz", "--points", "1"],
        &["partner", "issue", "--points", "1"],
        &["partner", "submit-redeem", "--order", "not-hex"],
        &["--node", "localhost:7101", "status"],
        &["completions", "tcsh"],
    ];
    for args in cases {
        coalition().args(*args).assert().code(2);
    }
    let member = coalition_core::crypto::Keypair::generate()
        .public()
        .to_hex();
    coalition()
        .args([
            "partner",
            "issue",
            "--member",
            &member,
            "--points",
            "1",
            "--expires-in",
            "soon",
        ])
        .assert()
        .code(2);
    // Missing token: refused before any network call.
    let out = coalition()
        .args([
            "--node",
            "http://127.0.0.1:9",
            "partner",
            "issue",
            "--member",
            &member,
            "--points",
            "5",
        ])
        .assert()
        .code(2);
    one_line_error(out.get_output(), "--token");
}

#[test]
fn help_and_version_exit_0() {
    coalition()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes"));
    coalition().arg("--version").assert().success();
    for sub in [
        &["network", "init"][..],
        &["member", "sign-redeem"],
        &["partner", "issue"],
        &["status"],
    ] {
        coalition()
            .args(sub)
            .arg("--help")
            .assert()
            .success()
            .stdout(predicate::str::contains("Example"));
    }
}

#[test]
fn unreachable_node_is_exit_1_with_one_line() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let member = coalition_core::crypto::Keypair::generate()
        .public()
        .to_hex();
    let out = coalition()
        .args(["--node", &url, "member", "balance", "--member", &member])
        .assert()
        .code(1);
    one_line_error(out.get_output(), "cannot reach node");
    let out = coalition()
        .env("COALITION_NODE", &url)
        .args(["status", "--json"])
        .assert()
        .code(1);
    one_line_error(out.get_output(), "cannot reach node");
    assert!(out.get_output().stdout.is_empty());
    let out = coalition()
        .args([
            "--node", &url, "--token", "t", "partner", "issue", "--member", &member, "--points",
            "5",
        ])
        .assert()
        .code(1);
    one_line_error(out.get_output(), "cannot reach node");
}

#[test]
fn completions_print() {
    coalition()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("coalition"));
    coalition()
        .args(["completions", "zsh"])
        .assert()
        .success()
        .stdout(predicate::str::contains("#compdef coalition"));
    coalition()
        .args(["completions", "fish"])
        .assert()
        .success()
        .stdout(predicate::str::contains("complete -c coalition"));
    let out = coalition()
        .args(["--json", "completions", "bash"])
        .assert()
        .success();
    assert_eq!(json_stdout(out.get_output())["shell"], "bash");
}

// ---------------------------------------------------------------------------------------------------
// A fake node: answers GET /v1/members/{id}/balance with one lot, and 404 to anything else. Enough
// to drive the commands that read a balance before asking for the passphrase.

struct FakeNode {
    url: String,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeNode {
    fn balance(member: &str, points: u64) -> FakeNode {
        use std::io::{BufRead, BufReader, Write};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let far = 4_000_000_000u64;
        let body = serde_json::json!({
            "member": member,
            "available": points,
            "lots": [{
                "lot": "ab".repeat(32),
                "issuer": "cd".repeat(32),
                "points": points,
                "remaining": points,
                "expires_at": far,
                "expired": false
            }],
            "next_seq": 7,
            "as_of": 1_700_000_000u64
        })
        .to_string();
        let balance_path = format!("/v1/members/{member}/balance");
        // The fake node is partner 0 of `test_genesis(1)`. A member signs its balance read for
        // the coalition and the node asked, which it learns from the status.
        let (genesis, keys) = coalition_core::test_util::test_genesis(1);
        let me = coalition_core::record::PartnerId(keys[0].public());
        let status = serde_json::json!({
            "partner": { "partner": me, "name": "p0", "connected": true },
            "coalition": genesis.coalition,
            "genesis_hash": genesis.hash(),
            "peers": [], "logs": [], "current_epoch": 0, "last_sealed_epoch": null,
            "awaiting": [], "pending_entries": 0, "equivocations": []
        })
        .to_string();
        let genesis = serde_json::to_string(&genesis).expect("genesis JSON");
        listener.set_nonblocking(false).expect("blocking");
        let thread = std::thread::spawn(move || {
            // Serve a bounded number of requests, then stop by itself.
            for stream in listener.incoming().take(8) {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request_line.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = if path == balance_path {
                    ("200 OK", body.clone())
                } else if path == "/v1/genesis" {
                    ("200 OK", genesis.clone())
                } else if path == "/v1/status" {
                    ("200 OK", status.clone())
                } else {
                    (
                        "404 Not Found",
                        r#"{"error":{"code":"not_found","message":"no such route"}}"#.to_string(),
                    )
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        FakeNode {
            url,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        // Wake the accept loop with connections until it has served its quota, then join it.
        if let Some(t) = self.thread.take() {
            let addr = self.url.trim_start_matches("http://").to_string();
            for _ in 0..8 {
                if t.is_finished() {
                    break;
                }
                let _ = std::net::TcpStream::connect(&addr);
            }
            let _ = t.join();
        }
    }
}
