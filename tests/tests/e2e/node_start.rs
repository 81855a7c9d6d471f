//! What a node refuses to start with: settings out of range, a genesis it does not fully
//! understand, a p2p port another instance holds, a damaged write-ahead log or table file. Each would otherwise
//! start a node that misbehaves later (overflowing timers, a second history of one partner, a
//! partner signing over positions it already used).

use anyhow::{bail, ensure, Context, Result};
use coalition_client::types::IssueRequest;
use coalition_core::crypto::Keypair;
use coalition_core::record::MemberId;
use coalition_tests::{bin, disk, edit_config, free_port_range, wait_for, Cluster};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::LONG_EPOCH_SECS;

/// `coalition-node --config FILE --dump-config`.
fn dump_config(config: &Path) -> Result<Output> {
    Command::new(bin("coalition-node"))
        .arg("--config")
        .arg(config)
        .arg("--dump-config")
        .stdin(Stdio::null())
        .output()
        .context("running coalition-node --dump-config")
}

/// Requires `out` to be a failure whose stderr mentions every one of `needles`.
fn fails_with(what: &str, out: &Output, needles: &[&str]) -> Result<()> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success(),
        "{what}: accepted (exit {}); stdout: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    for needle in needles {
        ensure!(
            stderr.contains(needle),
            "{what}: the error does not mention {needle:?}: {stderr}"
        );
    }
    Ok(())
}

/// `node.toml` of `path` with `key` set to `value`, written next to it as `name`.
fn edited_config(path: &Path, name: &str, key: &str, value: toml::Value) -> Result<PathBuf> {
    let out = path.with_file_name(name);
    edit_config(path, &out, key, value)?;
    Ok(out)
}

#[test]
fn settings_out_of_range_are_refused_before_starting() -> Result<()> {
    let c = Cluster::init(1, LONG_EPOCH_SECS)?;
    let config = &c.nodes[0].config;
    let ok = dump_config(config)?;
    ensure!(
        ok.status.success(),
        "the config network init wrote is refused: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // A dump is pasted into tickets: it must not carry the token that issues points.
    let dumped = String::from_utf8_lossy(&ok.stdout);
    let token = &c.nodes[0].settings.api_token;
    ensure!(
        !dumped.contains(token.as_str()) && dumped.contains("hidden"),
        "--dump-config shows the API token: {dumped}"
    );
    let max = toml::Value::Integer(i64::MAX);
    let cases = [
        ("anti_entropy_secs", max.clone(), "between 1 and 3600"),
        ("vote_timeout_ms", max, "between 1 and 600000"),
        ("vote_timeout_ms", toml::Value::Integer(0), "between 1 and"),
        (
            "api_token",
            toml::Value::String(" ".repeat(24)),
            "visible ASCII",
        ),
        (
            "p2p_listen",
            toml::Value::String("nowhere".into()),
            "invalid address",
        ),
        (
            "peers",
            toml::Value::Array(vec![toml::Value::String("127.0.0.1".into())]),
            "invalid address",
        ),
        (
            "auditor_tokens",
            toml::Value::Array(vec![toml::Value::String("short".into())]),
            "visible ASCII",
        ),
        (
            "tls_cert",
            toml::Value::String("api.crt".into()),
            "go together",
        ),
    ];
    for (i, (key, value, needle)) in cases.into_iter().enumerate() {
        let shown = value.to_string();
        let edited = edited_config(config, &format!("case-{i}.toml"), key, value)?;
        fails_with(
            &format!("{key} = {shown}"),
            &dump_config(&edited)?,
            &[key, needle],
        )?;
    }

    // A genesis with a field this build does not know: a parameter it would silently ignore.
    let mut genesis: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&c.genesis_path)?)?;
    genesis["max_refund_days"] = serde_json::json!(30);
    let odd = c.dir.path().join("genesis-unknown-field.json");
    std::fs::write(&odd, serde_json::to_string_pretty(&genesis)?)?;
    let edited = edited_config(
        config,
        "odd-genesis.toml",
        "genesis",
        toml::Value::String(odd.to_string_lossy().into()),
    )?;
    fails_with(
        "a genesis with an unknown field",
        &dump_config(&edited)?,
        &["unknown field `max_refund_days`"],
    )
}

/// Waits for a process started with piped stderr to exit, and returns its stderr.
fn exits_within(mut child: std::process::Child, what: &str) -> Result<(bool, String)> {
    let status = wait_for(what, Duration::from_secs(30), || Ok(child.try_wait()?));
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr)?;
    }
    Ok((status.success(), stderr))
}

/// Runs a second node with partner 0's config and key, its own data directory and the settings in
/// `edits`, until it exits by itself: whether it exited 0, and its stderr.
fn run_twin(c: &Cluster, edits: &[(&str, String)], what: &str) -> Result<(bool, String)> {
    let twin_dir = c.dir.path().join("twin-data");
    let mut twin = edited_config(
        &c.nodes[0].config,
        "twin-0.toml",
        "data_dir",
        toml::Value::String(twin_dir.to_string_lossy().into()),
    )?;
    for (k, (key, value)) in edits.iter().enumerate() {
        let name = format!("twin-{}.toml", k + 1);
        twin = edited_config(&twin, &name, key, toml::Value::String(value.clone()))?;
    }
    let child = Command::new(bin("coalition-node"))
        .arg("--config")
        .arg(&twin)
        .env("RUST_LOG", "warn,libp2p=off")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    exits_within(child, what)
}

#[test]
fn a_second_instance_on_the_same_p2p_port_is_refused() -> Result<()> {
    let mut c = Cluster::init(2, LONG_EPOCH_SECS)?;
    c.start_all()?;
    // The same key and p2p port, its own data directory and API port: a copy of partner 0
    // started by mistake.
    let api = format!("127.0.0.1:{}", free_port_range(1));
    let (clean, stderr) = run_twin(&c, &[("api_listen", api)], "the second instance to exit")?;
    ensure!(!clean, "the second instance exited 0: {stderr}");
    ensure!(
        stderr.contains("address is in use") && stderr.contains("another coalition-node"),
        "the second instance did not say its p2p port is taken: {stderr}"
    );
    // The first instance is untouched.
    c.client(0).status()?;
    Ok(())
}

#[test]
fn a_second_node_with_the_same_key_stops_and_the_first_runs_on() -> Result<()> {
    let mut c = Cluster::init(3, LONG_EPOCH_SECS)?;
    c.start_all()?;
    // Partner 0's key with its own data directory, API and p2p ports: a second machine set up
    // with the same key file, say.
    let ports = free_port_range(2);
    let (clean, stderr) = run_twin(
        &c,
        &[
            ("api_listen", format!("127.0.0.1:{ports}")),
            ("p2p_listen", format!("127.0.0.1:{}", ports + 1)),
        ],
        "the second node to exit",
    )?;
    ensure!(!clean, "the second node exited 0: {stderr}");
    ensure!(
        stderr.contains("another node with this partner's key is running"),
        "the second node did not say why it stopped: {stderr}"
    );
    // The first one is still ready and signs; nobody holds two histories of partner 0.
    c.wait_ready(0)?;
    issue_some(&c, 1)?;
    for i in 0..3 {
        let status = c.status(i)?;
        ensure!(
            status.equivocations.is_empty(),
            "node {i} records equivocations: {:?}",
            status.equivocations
        );
    }
    Ok(())
}

/// Issues `n` lots to one member at node 0, each with its own receipt.
fn issue_some(c: &Cluster, n: u64) -> Result<()> {
    let member = MemberId(Keypair::generate().public());
    for i in 0..n {
        c.client(0).issue(&IssueRequest {
            member,
            points: 10 + i,
            reference: Some(format!("receipt {i}")),
            expires_in_secs: None,
        })?;
    }
    Ok(())
}

/// Flips 8 bytes a third of the way into `file`.
fn damage(file: &Path, len: u64) -> Result<()> {
    disk::flip(file, (len / 3) as usize)
}

/// Starts node 0 and requires it to stop by itself, saying its database is damaged (`what`: the
/// damaged part, for the messages).
fn refuses_to_run(c: &mut Cluster, what: &str) -> Result<()> {
    c.spawn(0)?;
    let exited = c.wait_exit(0, &format!("the node to find its damaged {what}"));
    let log = std::fs::read_to_string(&c.nodes[0].log)?;
    let Ok(status) = exited else {
        bail!("the node runs on a damaged {what}; its log:\n{log}");
    };
    ensure!(!status.success(), "the node exited 0 on a damaged {what}");
    ensure!(
        log.contains("Corruption") && log.contains("A damaged database"),
        "the node did not say its database is damaged:\n{log}"
    );
    Ok(())
}

#[test]
fn a_damaged_write_ahead_log_refuses_the_start() -> Result<()> {
    let mut c = Cluster::start(1, LONG_EPOCH_SECS)?;
    issue_some(&c, 40)?;
    // kill -9: what the issues wrote is in the write-ahead log only (no flush at shutdown).
    c.kill9(0)?;
    // The newest write-ahead log: `NNNNNN.log` (RocksDB's own `LOG` is its info log).
    let (wal, len) =
        disk::newest_wal(&c.data_dir(0))?.context("no write-ahead log in the data directory")?;
    ensure!(len > 4096, "the write-ahead log holds only {len} bytes");
    // A third of the way in: records after the damage are acknowledged issues, so this is no torn
    // tail.
    damage(&wal, len)?;
    refuses_to_run(&mut c, "write-ahead log")
}

#[test]
fn a_damaged_table_file_stops_the_node_at_start() -> Result<()> {
    let mut c = Cluster::start(1, LONG_EPOCH_SECS)?;
    issue_some(&c, 40)?;
    // A clean stop flushes everything to SST files.
    ensure!(c.stop(0)?, "the node did not stop cleanly");
    let (table, len) = disk::files(&c.data_dir(0), |p| {
        p.extension().is_some_and(|e| e == "sst")
    })?
    .into_iter()
    .max_by_key(|(_, len)| *len)
    .context("no SST file in the data directory")?;
    ensure!(len > 1024, "the largest SST file holds only {len} bytes");
    // A third of the way in is a data block (the index and footer are at the end).
    damage(&table, len)?;
    refuses_to_run(&mut c, "SST file")
}

/// The log file is plain text (colour codes only at a terminal) and is an operator's trail: issues,
/// repeated issues and refused tokens each leave a line, without the token or the member.
#[test]
fn the_log_is_plain_text_and_records_issues_and_refused_tokens() -> Result<()> {
    let c = Cluster::start(1, LONG_EPOCH_SECS)?;
    let member = MemberId(Keypair::generate().public());
    let req = IssueRequest {
        member,
        points: 12,
        reference: Some("till 4 receipt 77".into()),
        expires_in_secs: None,
    };
    let first = c.client(0).issue(&req)?;
    ensure!(first.new_member && !first.replay, "first issue: {first:?}");
    let again = c.client(0).issue(&req)?;
    ensure!(
        again.replay && !again.new_member && again.lot == first.lot,
        "repeated issue: {again:?}"
    );
    let wrong = coalition_client::Client::new(&c.url(0), Some("not-the-token-of-this-node".into()));
    let refused = wrong.issue(&req).expect_err("a wrong token issues nothing");
    ensure!(
        coalition_tests::is_code(&refused, "unauthorized"),
        "wrong token answered {refused}"
    );
    let lot = first.lot.short();
    let log = wait_for(
        "the audit lines in the log",
        Duration::from_secs(10),
        || {
            let log = std::fs::read_to_string(&c.nodes[0].log)?;
            let done = log.contains("refused a partner operation with a wrong token");
            Ok(done.then_some(log))
        },
    )?;
    ensure!(!log.contains('\u{1b}'), "the log file carries colour codes");
    let line = |needle: &str| log.lines().find(|l| l.contains(needle)).map(str::to_string);
    let issued = line(" audit: issued ").context("no audit line for the issue")?;
    ensure!(
        issued.contains(&format!("lot={lot}")) && issued.contains("new_member=true"),
        "{issued}"
    );
    ensure!(
        line("audit: issue repeated").is_some_and(|l| l.contains(&format!("lot={lot}"))),
        "no audit line for the repeated issue:\n{log}"
    );
    let token = &c.nodes[0].settings.api_token;
    ensure!(
        !log.contains(token.as_str())
            && !log.contains(&member.to_hex())
            && !log.contains("not-the-token"),
        "the log carries a token or a member id"
    );
    Ok(())
}
