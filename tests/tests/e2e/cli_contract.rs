//! The command-line contract of `docs/cli-contract.md`, command by command, against one live
//! 4-node coalition (epoch 3 s): for every command that needs a node, the human form succeeds and
//! says something sensible, the `--json` form prints exactly one JSON object with the expected fields
//! (and nothing on stderr), and its error paths exit non-zero (1 refused/failed, 2 usage) with exactly
//! one line on stderr starting `coalition: ` and nothing on stdout. Offline commands the CLI crate's
//! own tests leave out (usage errors as one line, every command's help, audit argument errors, a
//! forged order token) are checked at the end without a cluster.
//!
//! Nothing sleeps a fixed time: replication and sealing are awaited by polling with a deadline.

use crate::EPOCH_SECS;
use anyhow::{ensure, Context, Result};
use coalition_core::clock::{Clock as _, SystemClock};
use coalition_core::genesis::Genesis;
use coalition_tests::{bin, wait_for, Cluster};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PASS: &str = "cli contract passphrase";
/// Replication between nodes on loopback.
const REPLICATE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------------
// Running the CLI and judging its output

/// One run of `coalition`.
struct Ran {
    what: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn describe(&self) -> String {
        format!(
            "`coalition {}` exited with {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }

    /// The human form: exit 0 and something on stdout. Returns stdout.
    fn human(&self) -> Result<&str> {
        ensure!(
            self.code == Some(0),
            "expected success: {}",
            self.describe()
        );
        ensure!(
            !self.stdout.trim().is_empty(),
            "printed nothing: {}",
            self.describe()
        );
        Ok(&self.stdout)
    }

    /// The `--json` form: exit 0, nothing on stderr, exactly one JSON object on stdout holding every
    /// field of `fields` (JSON pointers without the leading slash, e.g. `entry/seq`).
    fn json(&self, fields: &[&str]) -> Result<Value> {
        ensure!(
            self.code == Some(0),
            "expected success: {}",
            self.describe()
        );
        ensure!(
            self.stderr.is_empty(),
            "--json wrote to stderr: {}",
            self.describe()
        );
        ensure!(
            self.stdout.ends_with('\n'),
            "JSON output lacks its final newline: {}",
            self.describe()
        );
        // `from_str` refuses anything but whitespace after the first document.
        let v: Value = serde_json::from_str(&self.stdout).with_context(|| {
            format!(
                "stdout is not exactly one JSON document: {}",
                self.describe()
            )
        })?;
        ensure!(
            v.is_object(),
            "JSON output is not an object: {}",
            self.describe()
        );
        for f in fields {
            ensure!(
                v.pointer(&format!("/{f}")).is_some(),
                "JSON lacks field {f:?}: {}",
                self.describe()
            );
        }
        Ok(v)
    }

    /// An error: exit `code`, nothing on stdout, one line on stderr starting `coalition: ` and
    /// containing `needle`. Returns that line.
    fn fails(&self, code: i32, needle: &str) -> Result<&str> {
        ensure!(
            self.code == Some(code),
            "expected exit code {code}: {}",
            self.describe()
        );
        ensure!(
            self.stdout.is_empty(),
            "a failed command wrote to stdout: {}",
            self.describe()
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        ensure!(
            lines.len() == 1 && self.stderr.ends_with('\n'),
            "stderr is not one line: {}",
            self.describe()
        );
        ensure!(
            lines[0].starts_with("coalition: "),
            "stderr does not start `coalition: `: {}",
            self.describe()
        );
        ensure!(
            lines[0].contains(needle),
            "stderr lacks {needle:?}: {}",
            self.describe()
        );
        if std::env::var_os("CLI_CONTRACT_VERBOSE").is_some() {
            eprintln!("[exit {code}] coalition {}\n    {}", self.what, lines[0]);
        }
        Ok(lines[0])
    }
}

/// Runs `coalition` with only the options and variables given (no inherited COALITION_*), stdin
/// closed.
fn run(node: Option<&str>, token: Option<&str>, pass: Option<&str>, args: &[&str]) -> Result<Ran> {
    run_env(node, token, pass, &[], args)
}

/// [`run`] with extra environment variables.
fn run_env(
    node: Option<&str>,
    token: Option<&str>,
    pass: Option<&str>,
    vars: &[(&str, &str)],
    args: &[&str],
) -> Result<Ran> {
    let mut cmd = Command::new(bin("coalition"));
    for v in [
        "COALITION_NODE",
        "COALITION_TOKEN",
        "COALITION_WALLET_PASSPHRASE",
    ] {
        cmd.env_remove(v);
    }
    cmd.envs(vars.iter().copied());
    if let Some(n) = node {
        cmd.arg("--node").arg(n);
    }
    if let Some(t) = token {
        cmd.arg("--token").arg(t);
    }
    if let Some(p) = pass {
        cmd.env("COALITION_WALLET_PASSPHRASE", p);
    }
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running coalition")?;
    Ok(Ran {
        what: args.join(" "),
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).context("stdout is not UTF-8")?,
        stderr: String::from_utf8(out.stderr).context("stderr is not UTF-8")?,
    })
}

/// `coalition` with no node, token or passphrase.
fn offline(args: &[&str]) -> Result<Ran> {
    run(None, None, None, args)
}

/// A loopback URL nothing listens on.
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = l.local_addr().expect("local address").port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

fn s(v: &Value, field: &str) -> Result<String> {
    v.pointer(&format!("/{field}"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("{field} is not a string in {v}"))
}

fn u(v: &Value, field: &str) -> Result<u64> {
    v.pointer(&format!("/{field}"))
        .and_then(Value::as_u64)
        .with_context(|| format!("{field} is not an unsigned number in {v}"))
}

fn arr<'a>(v: &'a Value, field: &str) -> Result<&'a Vec<Value>> {
    v.pointer(&format!("/{field}"))
        .and_then(Value::as_array)
        .with_context(|| format!("{field} is not an array in {v}"))
}

/// Bytes of a hex string (the tests crate has no hex dependency).
fn unhex(text: &str) -> Result<Vec<u8>> {
    ensure!(text.len() % 2 == 0, "odd-length hex");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).context("not hex"))
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// Seconds since 1970 of `YYYY-MM-DDTHH:MM:SSZ` (UTC), as the CLI prints times.
fn rfc3339_secs(text: &str) -> Result<u64> {
    let bad = || format!("{text:?} is not YYYY-MM-DDTHH:MM:SSZ");
    let t = text.strip_suffix('Z').with_context(bad)?;
    let (date, time) = t.split_once('T').with_context(bad)?;
    let d: Vec<i64> = date
        .split('-')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(bad)?;
    let h: Vec<u64> = time
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(bad)?;
    ensure!(d.len() == 3 && h.len() == 3, "{}", bad());
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).with_context(bad)?;
    Ok(days * 86_400 + h[0] * 3600 + h[1] * 60 + h[2])
}

/// The value of a `label  value` line of a human report.
fn field_line<'a>(text: &'a str, label: &str) -> Result<&'a str> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(label)
                .filter(|rest| rest.starts_with("  "))
                .map(str::trim)
        })
        .with_context(|| format!("no {label:?} line in:\n{text}"))
}

// ---------------------------------------------------------------------------------------------------
// What was checked, per command

#[derive(Default)]
struct Coverage(BTreeMap<&'static str, [bool; 3]>);

impl Coverage {
    fn human(&mut self, cmd: &'static str) {
        self.0.entry(cmd).or_default()[0] = true;
    }
    fn json(&mut self, cmd: &'static str) {
        self.0.entry(cmd).or_default()[1] = true;
    }
    fn error(&mut self, cmd: &'static str) {
        self.0.entry(cmd).or_default()[2] = true;
    }

    /// Prints the table and fails if a command of the contract lacks a form.
    fn finish(&self, required: &[&str]) -> Result<()> {
        eprintln!("{:<28} human  json  error", "command");
        for (cmd, [h, j, e]) in &self.0 {
            let m = |b: &bool| if *b { "yes" } else { "-" };
            eprintln!("{cmd:<28} {:<6} {:<5} {}", m(h), m(j), m(e));
        }
        for cmd in required {
            let got = self.0.get(cmd).copied().unwrap_or_default();
            ensure!(
                got == [true; 3],
                "{cmd}: human/json/error checked = {got:?}"
            );
        }
        Ok(())
    }
}

/// Every command of the contract (`docs/cli-contract.md`) that needs a live node.
const LIVE_COMMANDS: &[&str] = &[
    "status",
    "member balance",
    "member history",
    "member redeem",
    "member sign-redeem",
    "partner issue",
    "partner submit-redeem",
    "settlement show",
    "audit export",
    "audit verify",
    "audit prove",
    "audit check-proof",
];

// ---------------------------------------------------------------------------------------------------
// The live walk

/// The cluster and what the walk learns along the way.
struct Walk<'a> {
    c: &'a Cluster,
    dir: PathBuf,
    genesis_file: String,
    genesis: Genesis,
    names: Vec<String>,
    ids: Vec<String>,
    cov: Coverage,
}

impl Walk<'_> {
    /// `coalition --node <i> --token <i's token> ARGS`.
    fn at(&self, i: usize, args: &[&str]) -> Result<Ran> {
        run(
            Some(&self.c.url(i)),
            Some(&self.c.nodes[i].settings.api_token),
            None,
            args,
        )
    }

    /// `coalition --node <i> ARGS` with the wallet passphrase `pass` (and no token: member commands
    /// never need it).
    fn member(&self, i: usize, pass: Option<&str>, args: &[&str]) -> Result<Ran> {
        run(Some(&self.c.url(i)), None, pass, args)
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().to_string()
    }

    /// Waits until node `i` reports `member` with `available` points and `next_seq`.
    fn wait_balance(&self, i: usize, member: &str, available: u64, next_seq: u64) -> Result<()> {
        let id = member.parse()?;
        wait_for(
            &format!("node {i} to hold {available} points, next seq {next_seq} of {member}"),
            REPLICATE,
            || {
                let b = self.c.client(i).balance(&id)?;
                Ok((b.available == available && b.next_seq == next_seq).then_some(()))
            },
        )
    }

    /// Waits until every node has sealed `epoch`.
    fn wait_sealed_everywhere(&self, epoch: u64) -> Result<()> {
        for i in 0..self.c.nodes.len() {
            self.c
                .wait_sealed(i, epoch, Duration::from_secs(EPOCH_SECS * 10))?;
        }
        Ok(())
    }
}

#[test]
fn every_interface_command_human_json_and_error() -> Result<()> {
    let started = Instant::now();
    let c = Cluster::start(4, EPOCH_SECS)?;
    let result = walk(&c);
    if result.is_err() {
        eprintln!("{}", c.log_tails(40));
    }
    eprintln!("cli contract walk took {:?}", started.elapsed());
    result
}

fn walk(c: &Cluster) -> Result<()> {
    let genesis_file = c.genesis_path.to_string_lossy().to_string();
    let genesis: Genesis = serde_json::from_str(&std::fs::read_to_string(&c.genesis_path)?)?;
    let names: Vec<String> = genesis.partners.iter().map(|p| p.name.clone()).collect();
    let ids: Vec<String> = genesis.partners.iter().map(|p| p.id.to_hex()).collect();
    let mut w = Walk {
        c,
        dir: c.dir.path().to_path_buf(),
        genesis_file,
        genesis,
        names,
        ids,
        cov: Coverage::default(),
    };

    before_anything_is_sealed(&mut w)?;
    for i in 0..4 {
        wait_for(
            &format!("node {i} to connect to every peer"),
            Duration::from_secs(30),
            || {
                let s = w.c.status(i)?;
                Ok((s.peers.len() == 3 && s.peers.iter().all(|p| p.connected)).then_some(()))
            },
        )?;
    }
    status(&mut w)?;

    // Two members with wallets (offline commands, checked in detail by the CLI crate's tests).
    let mut wallets = Vec::new();
    for name in ["alice", "bob"] {
        let path = w.path(&format!("{name}.wallet"));
        let v = run(
            None,
            None,
            Some(PASS),
            &["--json", "member", "new", "--wallet", &path],
        )?
        .json(&["member", "wallet"])?;
        wallets.push((path, s(&v, "member")?));
    }
    let (alice_w, alice) = wallets[0].clone();
    let (bob_w, bob) = wallets[1].clone();

    let lots = partner_issue(&mut w, &alice, &bob)?;
    member_balance(&mut w, &alice_w, &alice, &lots)?;
    member_history(&mut w, &alice_w, &alice, &lots)?;
    let redeemed_orders = member_redeem(&mut w, &alice_w, &alice)?;
    let signed_orders = sign_and_submit(&mut w, &bob_w, &bob)?;

    // Everything so far is in epochs up to the current one; wait until every node has sealed it.
    let active = w.c.status(0)?.current_epoch;
    w.wait_sealed_everywhere(active)?;
    let sealed = w.c.status(0)?.last_sealed_epoch.context("sealed")?;
    eprintln!("activity up to epoch {active}; every node has sealed epoch {sealed}");

    settlement_show(&mut w, sealed, 120 + 80 + 50 + 7, 30 + 20 + 10 + 15)?;
    let export = audit_export(&mut w, sealed)?;
    audit_verify(&mut w, &export, sealed)?;
    let proof = audit_prove(
        &mut w,
        &lots[0],
        &redeemed_orders[0],
        &signed_orders[0],
        sealed,
        &alice,
    )?;
    audit_check_proof(&mut w, &proof, &redeemed_orders[0])?;

    w.cov.finish(LIVE_COMMANDS)
}

/// Right after start, nothing may be sealed yet: the commands that default to the last sealed epoch
/// must say so. Sealing can race the command; then the command must succeed on a sealed epoch.
fn before_anything_is_sealed(w: &mut Walk) -> Result<()> {
    let before = w.c.status(0)?.last_sealed_epoch;
    let show = w.at(0, &["settlement", "show"])?;
    let export_path = w.path("too-early.export");
    let export = w.at(0, &["audit", "export", "--out", &export_path])?;
    let verify = w.at(0, &["audit", "verify"])?;
    let after = w.c.status(0)?.last_sealed_epoch;
    eprintln!("before anything is sealed: last sealed {before:?} .. {after:?}");
    if before.is_none() {
        if show.code == Some(0) {
            ensure!(
                after.is_some(),
                "settlement show succeeded with nothing sealed: {}",
                show.describe()
            );
        } else {
            show.fails(1, "no epoch is sealed yet")?;
            w.cov.error("settlement show");
        }
        if export.code == Some(0) {
            ensure!(
                after.is_some(),
                "audit export succeeded with nothing sealed: {}",
                export.describe()
            );
        } else {
            export.fails(1, "no sealed checkpoint yet")?;
            ensure!(
                !Path::new(&export_path).exists(),
                "a refused export left {export_path}"
            );
            ensure!(
                !Path::new(&export_path).with_extension("partial").exists(),
                "a refused export left its .partial file"
            );
            w.cov.error("audit export");
        }
        if verify.code != Some(0) {
            verify.fails(1, "no sealed checkpoint yet")?;
            w.cov.error("audit verify");
        } else {
            ensure!(
                after.is_some(),
                "audit verify succeeded with nothing sealed: {}",
                verify.describe()
            );
        }
    } else {
        eprintln!("epoch {before:?} was already sealed when the walk began; skipping the too-early checks");
    }
    Ok(())
}

fn status(w: &mut Walk) -> Result<()> {
    let text = w.at(0, &["status"])?.human()?.to_string();
    for needle in [
        "current epoch",
        "last sealed",
        "awaiting",
        "equivocations",
        "PEER",
        "CONNECTED",
        "LOG",
        "SIZE",
    ] {
        ensure!(text.contains(needle), "status lacks {needle:?}:\n{text}");
    }
    ensure!(
        field_line(&text, "node")?.contains(&w.ids[0]),
        "status does not name node 0's partner:\n{text}"
    );
    ensure!(
        field_line(&text, "quorum")? == "3 of 4 partners"
            && field_line(&text, "current epoch")?.contains(" s)")
            && field_line(&text, "current epoch")?.contains("closes in "),
        "status lacks the quorum or the epoch's end:\n{text}"
    );
    for name in &w.names {
        ensure!(
            text.contains(name.as_str()),
            "status lacks partner {name}:\n{text}"
        );
    }
    ensure!(
        !text.contains(" no\n"),
        "status shows a disconnected peer after all connected:\n{text}"
    );
    w.cov.human("status");

    let v = w.at(2, &["--json", "status"])?.json(&[
        "partner/partner",
        "partner/name",
        "coalition",
        "genesis_hash",
        "peers",
        "logs",
        "current_epoch",
        "now",
        "epoch_start",
        "epoch_end",
        "quorum",
        "last_sealed_epoch",
        "awaiting",
        "pending_entries",
        "equivocations",
    ])?;
    ensure!(
        s(&v, "partner/partner")? == w.ids[2] && s(&v, "partner/name")? == w.names[2],
        "status of node 2 is not partner 2: {v}"
    );
    ensure!(
        s(&v, "coalition")? == w.genesis.coalition,
        "coalition name: {v}"
    );
    ensure!(
        s(&v, "genesis_hash")? == w.genesis.hash().to_hex(),
        "genesis hash: {v}"
    );
    let peers = arr(&v, "peers")?;
    ensure!(
        peers.len() == 3 && peers.iter().all(|p| p["connected"] == true),
        "peers: {v}"
    );
    let logs = arr(&v, "logs")?;
    ensure!(logs.len() == 4, "logs: {v}");
    for (l, id) in logs.iter().zip(&w.ids) {
        ensure!(
            l["partner"] == id.as_str() && l["size"].is_u64() && l["open_epoch"].is_u64(),
            "log head {l}"
        );
        ensure!(
            l["root"].as_str().is_some_and(|r| is_hex(r, 64)),
            "log root {l}"
        );
    }
    ensure!(
        u(&v, "current_epoch")? >= w.genesis.epoch_at(SystemClock.now()).saturating_sub(1),
        "current epoch: {v}"
    );
    let (start, end, now) = (u(&v, "epoch_start")?, u(&v, "epoch_end")?, u(&v, "now")?);
    ensure!(
        end == start + w.genesis.epoch_secs
            && (start..end).contains(&now)
            && w.genesis.epoch_at(start) == u(&v, "current_epoch")?
            && u(&v, "quorum")? == 3,
        "epoch bounds or quorum: {v}"
    );
    ensure!(
        arr(&v, "equivocations")?.is_empty(),
        "equivocations in an honest cluster: {v}"
    );
    w.cov.json("status");

    let dead = dead_url();
    run(Some(&dead), None, None, &["status"])?.fails(1, "cannot reach node")?;
    run(Some(&dead), None, None, &["--json", "status"])?.fails(1, "cannot reach node")?;
    offline(&["--node", "127.0.0.1:7101", "status"])?
        .fails(2, "is not an http:// or https:// URL")?;
    w.cov.error("status");
    Ok(())
}

/// Issues alice 120 at partner 0 (human), 80 at partner 1 (JSON), 7 at partner 3 with the default
/// lifetime, bob 50 at partner 2; returns alice's lot ids in that order.
fn partner_issue(w: &mut Walk, alice: &str, bob: &str) -> Result<Vec<String>> {
    let t0 = SystemClock.now();
    let first = [
        "partner",
        "issue",
        "--member",
        alice,
        "--points",
        "120",
        "--reference",
        "receipt 1001",
        "--expires-in",
        "30d",
    ];
    let text = w.at(0, &first)?.human()?.to_string();
    ensure!(
        field_line(&text, "issued")? == format!("120 points by {}", w.names[0]),
        "issue report:\n{text}"
    );
    // Alice has no record yet: the cashier is told, since a mistyped id looks the same.
    let member_line = field_line(&text, "member")?;
    ensure!(
        member_line.starts_with(alice) && member_line.contains("(new member:"),
        "issue report does not say the member is new:\n{text}"
    );
    let lot0 = field_line(&text, "lot")?.to_string();
    ensure!(is_hex(&lot0, 64), "lot id {lot0:?}");
    let expires = rfc3339_secs(field_line(&text, "expires")?)?;
    ensure!(
        (t0 + 30 * 86_400..=SystemClock.now() + 30 * 86_400 + 1).contains(&expires),
        "expiry {expires} is not 30 days after {t0}"
    );
    ensure!(
        field_line(&text, "appended")?.starts_with(&format!("{}'s log, position ", w.names[0])),
        "issue report:\n{text}"
    );
    // The same receipt scanned again: the lot already issued, and said so.
    let again = w.at(0, &first)?.human()?.to_string();
    ensure!(
        field_line(&again, "already issued")? == format!("120 points by {}", w.names[0])
            && field_line(&again, "lot")? == lot0
            && field_line(&again, "member")?.contains("nothing new was credited"),
        "a repeated issue does not say it was issued before:\n{again}"
    );
    w.cov.human("partner issue");

    let t1 = SystemClock.now();
    let v = w
        .at(
            1,
            &[
                "--json",
                "partner",
                "issue",
                "--member",
                alice,
                "--points",
                "80",
                "--reference",
                "R-2",
                "--expires-in",
                "2h",
            ],
        )?
        .json(&[
            "lot",
            "points",
            "expires_at",
            "entry/partner",
            "entry/seq",
            "entry/entry_id",
            "replay",
            "new_member",
        ])?;
    let t2 = SystemClock.now();
    ensure!(u(&v, "points")? == 80, "points: {v}");
    ensure!(
        v["replay"] == false,
        "a first issue is marked a replay: {v}"
    );
    let exp = u(&v, "expires_at")?;
    ensure!(
        (t1 + 7200..=t2 + 7200 + 1).contains(&exp),
        "expires_at {exp} is not 2 h after {t1}..{t2}"
    );
    ensure!(
        s(&v, "entry/partner")? == w.ids[1],
        "issued by another partner: {v}"
    );
    ensure!(
        is_hex(&s(&v, "entry/entry_id")?, 64) && is_hex(&s(&v, "lot")?, 64),
        "ids: {v}"
    );
    let lot1 = s(&v, "lot")?;
    let v = w
        .at(
            3,
            &[
                "--json", "partner", "issue", "--member", alice, "--points", "7",
            ],
        )?
        .json(&["lot", "expires_at"])?;
    ensure!(
        u(&v, "expires_at")? > SystemClock.now() + 60,
        "the default lifetime is under a minute: {v}"
    );
    let lot3 = s(&v, "lot")?;
    // Node and token from the environment (COALITION_NODE, COALITION_TOKEN) work like the options.
    let env = [
        ("COALITION_NODE", w.c.url(2)),
        ("COALITION_TOKEN", w.c.nodes[2].settings.api_token.clone()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let v = run_env(
        None,
        None,
        None,
        &env,
        &[
            "--json", "partner", "issue", "--member", bob, "--points", "50",
        ],
    )?
    .json(&["lot", "entry/partner"])?;
    ensure!(
        s(&v, "entry/partner")? == w.ids[2],
        "COALITION_NODE was not used: {v}"
    );
    w.cov.json("partner issue");

    // Errors: a wrong token is refused by the node (1); no token, bad values are usage errors (2).
    let wrong_token = w.c.nodes[1].settings.api_token.clone();
    run(
        Some(&w.c.url(0)),
        Some(&wrong_token),
        None,
        &["partner", "issue", "--member", alice, "--points", "1000"],
    )?
    .fails(1, "wrong API token")?;
    run(
        Some(&w.c.url(0)),
        Some(&wrong_token),
        None,
        &[
            "--json", "partner", "issue", "--member", alice, "--points", "1000",
        ],
    )?
    .fails(1, "unauthorized")?;
    run(
        Some(&w.c.url(0)),
        None,
        None,
        &["partner", "issue", "--member", alice, "--points", "1000"],
    )?
    .fails(2, "--token")?;
    run(
        Some(&w.c.url(0)),
        Some(" "),
        None,
        &["partner", "issue", "--member", alice, "--points", "1000"],
    )?
    .fails(2, "--token")?;
    run_env(
        None,
        None,
        None,
        &[
            ("COALITION_NODE", &w.c.url(0)),
            ("COALITION_TOKEN", &wrong_token),
        ],
        &["partner", "issue", "--member", alice, "--points", "1000"],
    )?
    .fails(1, "wrong API token")?;
    let refused: [(&[&str], &str); 5] = [
        (
            &["--points", "0"],
            "points are a whole number from 1 to 1000000000000",
        ),
        (
            &["--points", "1000000000001"],
            "the most one issue may carry",
        ),
        (
            &["--points", "5", "--expires-in", "20000d"],
            "at most 3650 days",
        ),
        (
            &["--points", "5", "--expires-in", "1y"],
            "give days instead",
        ),
        (&["--points", "5", "--expires-in", "soon"], "--expires-in"),
    ];
    for (tail, says) in refused {
        let mut args = vec!["partner", "issue", "--member", alice];
        args.extend_from_slice(tail);
        w.at(0, &args)?.fails(2, says)?;
    }
    w.at(
        0,
        &["partner", "issue", "--member", "abcd", "--points", "5"],
    )?
    .fails(2, "expected 64 hex digits")?;
    let dead = dead_url();
    let unreachable = run(
        Some(&dead),
        Some("t"),
        None,
        &["partner", "issue", "--member", alice, "--points", "5"],
    )?;
    let line = unreachable.fails(1, "(is coalition-node running there?")?;
    ensure!(
        line.matches(dead.as_str()).count() == 1,
        "the error names the URL more than once: {line}"
    );
    w.cov.error("partner issue");
    Ok(vec![lot0, lot1, lot3])
}

fn member_balance(w: &mut Walk, wallet: &str, alice: &str, lots: &[String]) -> Result<()> {
    // Every node ends up with all 207 points (and none of the refused 1000).
    for i in 0..4 {
        w.wait_balance(i, alice, 207, 0)?;
    }
    let text = w
        .member(3, Some(PASS), &["member", "balance", "--wallet", wallet])?
        .human()?
        .to_string();
    ensure!(
        field_line(&text, "member")? == alice,
        "balance of another member:\n{text}"
    );
    ensure!(
        field_line(&text, "available")? == "207 points",
        "balance:\n{text}"
    );
    ensure!(field_line(&text, "next seq")? == "0", "balance:\n{text}");
    for needle in [
        "LOT",
        "ISSUER",
        "REMAINING",
        "EXPIRES",
        w.names[0].as_str(),
        w.names[1].as_str(),
        w.names[3].as_str(),
    ] {
        ensure!(text.contains(needle), "balance lacks {needle:?}:\n{text}");
    }
    w.cov.human("member balance");

    let v = w
        .at(2, &["--json", "member", "balance", "--member", alice])?
        .json(&["member", "available", "lots", "next_seq", "as_of"])?;
    ensure!(
        s(&v, "member")? == alice && u(&v, "available")? == 207 && u(&v, "next_seq")? == 0,
        "balance: {v}"
    );
    let got: Vec<String> = arr(&v, "lots")?
        .iter()
        .filter_map(|l| l["lot"].as_str().map(str::to_string))
        .collect();
    ensure!(
        got.len() == 3 && lots.iter().all(|l| got.contains(l)),
        "lots {got:?} are not {lots:?}"
    );
    for l in arr(&v, "lots")? {
        for f in ["issuer", "points", "remaining", "expires_at", "expired"] {
            ensure!(l.get(f).is_some(), "lot lacks {f}: {l}");
        }
    }
    // The wallet and the id select the same member.
    let by_wallet = w
        .member(
            1,
            Some(PASS),
            &["--json", "member", "balance", "--wallet", wallet],
        )?
        .json(&["available"])?;
    ensure!(
        u(&by_wallet, "available")? == 207,
        "balance by wallet: {by_wallet}"
    );
    // A member nobody has credited has an empty balance, not an error.
    let stranger = coalition_core::crypto::Keypair::generate()
        .public()
        .to_hex();
    let v = w
        .at(0, &["--json", "member", "balance", "--member", &stranger])?
        .json(&["available", "lots"])?;
    ensure!(
        u(&v, "available")? == 0 && arr(&v, "lots")?.is_empty(),
        "a stranger's balance: {v}"
    );
    let text = w
        .at(0, &["member", "balance", "--member", &stranger])?
        .human()?
        .to_string();
    ensure!(
        text.contains("No unspent lots.") && field_line(&text, "available")? == "0 points",
        "stranger:\n{text}"
    );
    w.cov.json("member balance");

    // A member's data are not public: by id, only with a partner's or an auditor's token.
    w.member(0, None, &["member", "balance", "--member", alice])?
        .fails(1, "member's signature")?;
    let missing = w.path("missing.wallet");
    w.member(0, None, &["member", "balance", "--wallet", &missing])?
        .fails(1, "cannot read wallet")?;
    w.member(
        0,
        None,
        &["--json", "member", "balance", "--wallet", &missing],
    )?
    .fails(1, "missing.wallet")?;
    w.member(0, None, &["member", "balance", "--member", "xyz"])?
        .fails(2, "--member")?;
    w.member(0, None, &["member", "balance"])?
        .fails(2, "--wallet")?;
    w.member(
        0,
        None,
        &["member", "balance", "--wallet", wallet, "--member", alice],
    )?
    .fails(2, "cannot be used with")?;
    run(
        Some(&dead_url()),
        None,
        None,
        &["member", "balance", "--member", alice],
    )?
    .fails(1, "cannot reach node")?;
    w.cov.error("member balance");
    Ok(())
}

fn member_history(w: &mut Walk, wallet: &str, alice: &str, lots: &[String]) -> Result<()> {
    let text = w
        .member(0, Some(PASS), &["member", "history", "--wallet", wallet])?
        .human()?
        .to_string();
    for needle in [
        "TIME", "KIND", "POINTS", "PARTNER", "RECORD", "+120", "+80", "+7", "earn",
    ] {
        ensure!(text.contains(needle), "history lacks {needle:?}:\n{text}");
    }
    ensure!(
        text.lines().count() == 4,
        "history of 3 earns is not a header and 3 rows:\n{text}"
    );
    w.cov.human("member history");

    let v = w
        .at(1, &["--json", "member", "history", "--member", alice])?
        .json(&["member", "items"])?;
    ensure!(s(&v, "member")? == alice, "history: {v}");
    let items = arr(&v, "items")?;
    ensure!(items.len() == 3, "history items: {v}");
    for it in items {
        for f in ["time", "kind", "points", "partner", "record"] {
            ensure!(it.get(f).is_some(), "history item lacks {f}: {it}");
        }
        ensure!(it["kind"] == "earn", "{it}");
    }
    let records: Vec<&str> = items.iter().filter_map(|i| i["record"].as_str()).collect();
    ensure!(
        lots.iter().all(|l| records.contains(&l.as_str())),
        "history records {records:?} lack lots {lots:?}"
    );
    let points: u64 = items.iter().filter_map(|i| i["points"].as_u64()).sum();
    ensure!(points == 207, "history points add to {points}");
    let stranger = coalition_core::crypto::Keypair::generate()
        .public()
        .to_hex();
    let v = w
        .at(1, &["--json", "member", "history", "--member", &stranger])?
        .json(&["items"])?;
    ensure!(arr(&v, "items")?.is_empty(), "stranger's history: {v}");
    let text = w
        .at(1, &["member", "history", "--member", &stranger])?
        .human()?
        .to_string();
    ensure!(
        text.trim() == format!("No history for member {stranger}."),
        "stranger's history:\n{text}"
    );
    w.cov.json("member history");

    w.member(
        0,
        None,
        &["member", "history", "--member", &"0g".repeat(32)],
    )?
    .fails(2, "--member")?;
    w.member(
        0,
        None,
        &["member", "history", "--wallet", &w.path("missing.wallet")],
    )?
    .fails(1, "cannot read wallet")?;
    run(
        Some(&dead_url()),
        None,
        None,
        &["--json", "member", "history", "--member", alice],
    )?
    .fails(1, "cannot reach node")?;
    w.cov.error("member history");
    Ok(())
}

/// Alice redeems 30 at partner 1 (human) and 20 at partner 2 (JSON); returns the order ids.
fn member_redeem(w: &mut Walk, wallet: &str, alice: &str) -> Result<Vec<String>> {
    // Errors first, so that none of them can have spent anything.
    w.member(
        1,
        Some(PASS),
        &["member", "redeem", "--wallet", wallet, "--points", "208"],
    )?
    .fails(1, "only 207 are available")?;
    w.member(
        1,
        Some("not the passphrase"),
        &["member", "redeem", "--wallet", wallet, "--points", "5"],
    )?
    .fails(1, "wrong passphrase for wallet")?;
    w.member(
        1,
        None,
        &[
            "--json", "member", "redeem", "--wallet", wallet, "--points", "5",
        ],
    )?
    .fails(1, "COALITION_WALLET_PASSPHRASE")?;
    w.member(
        1,
        Some(PASS),
        &[
            "member",
            "redeem",
            "--wallet",
            &w.path("missing.wallet"),
            "--points",
            "5",
        ],
    )?
    .fails(1, "cannot read wallet")?;
    w.member(
        1,
        Some(PASS),
        &["member", "redeem", "--wallet", wallet, "--points", "0"],
    )?
    .fails(2, "--points")?;
    w.member(1, Some(PASS), &["member", "redeem", "--wallet", wallet])?
        .fails(2, "--points")?;
    run(
        Some(&dead_url()),
        None,
        Some(PASS),
        &["member", "redeem", "--wallet", wallet, "--points", "5"],
    )?
    .fails(1, "cannot reach node")?;
    w.wait_balance(1, alice, 207, 0)?;
    w.cov.error("member redeem");

    let text = w
        .member(
            1,
            Some(PASS),
            &["member", "redeem", "--wallet", wallet, "--points", "30"],
        )?
        .human()?
        .to_string();
    ensure!(
        field_line(&text, "redeemed")? == "30 points",
        "receipt:\n{text}"
    );
    ensure!(field_line(&text, "member")? == alice, "receipt:\n{text}");
    ensure!(
        field_line(&text, "at")? == w.names[1],
        "redeemed at the wrong partner:\n{text}"
    );
    ensure!(
        field_line(&text, "votes")?.starts_with(|c: char| c.is_ascii_digit()),
        "receipt:\n{text}"
    );
    ensure!(
        field_line(&text, "appended")?.starts_with(&format!("{}'s log", w.names[1])),
        "receipt:\n{text}"
    );
    let order1 = field_line(&text, "order")?.to_string();
    ensure!(is_hex(&order1, 64), "order id {order1:?}");
    w.cov.human("member redeem");

    w.wait_balance(2, alice, 177, 1)?;
    let v = w
        .member(
            2,
            Some(PASS),
            &[
                "--json", "member", "redeem", "--wallet", wallet, "--points", "20",
            ],
        )?
        .json(&[
            "order_id",
            "points",
            "votes",
            "cert/order/order/member",
            "cert/order/order/redeemer",
            "cert/votes",
            "entry/partner",
            "entry/seq",
            "entry/entry_id",
        ])?;
    let quorum = w.genesis.quorum() as u64;
    ensure!(
        u(&v, "points")? == 20 && u(&v, "votes")? >= quorum,
        "receipt: {v}"
    );
    ensure!(
        arr(&v, "cert/votes")?.len() as u64 >= quorum,
        "certificate votes: {v}"
    );
    ensure!(s(&v, "cert/order/order/member")? == alice, "receipt: {v}");
    ensure!(
        s(&v, "cert/order/order/redeemer")? == w.ids[2] && s(&v, "entry/partner")? == w.ids[2],
        "receipt: {v}"
    );
    let order2 = s(&v, "order_id")?;
    ensure!(order2 != order1, "two redemptions, one order id");
    w.cov.json("member redeem");

    // Every node sees 157 left, and the next order must carry sequence 2.
    for i in 0..4 {
        w.wait_balance(i, alice, 157, 2)?;
    }
    Ok(vec![order1, order2])
}

/// Bob signs an order for partner 3 by name (human) and one for partner 2 by id with --seq (JSON);
/// partners submit them. Returns the order ids.
fn sign_and_submit(w: &mut Walk, wallet: &str, bob: &str) -> Result<Vec<String>> {
    for i in 0..4 {
        w.wait_balance(i, bob, 50, 0)?;
    }
    // sign-redeem, human: the token alone on stdout, a one-line note on stderr, nothing submitted.
    let signed = w.member(
        0,
        Some(PASS),
        &[
            "member",
            "sign-redeem",
            "--wallet",
            wallet,
            "--points",
            "10",
            "--at",
            &w.names[3],
        ],
    )?;
    let token3 = signed.human()?.trim().to_string();
    ensure!(
        signed.stdout.lines().count() == 1,
        "sign-redeem printed more than the token: {}",
        signed.describe()
    );
    ensure!(
        signed.stderr.lines().count() == 1 && signed.stderr.contains("Nothing was submitted"),
        "sign-redeem's note: {}",
        signed.describe()
    );
    let order = coalition_client::order::parse_order_token(&token3).context("the printed token")?;
    ensure!(
        order.verify_signature().is_ok(),
        "the token's signature does not hold"
    );
    ensure!(
        order.order.points == 10 && order.order.member_seq == 0,
        "{:?}",
        order.order
    );
    ensure!(
        order.order.member.to_hex() == bob && order.order.redeemer.to_hex() == w.ids[3],
        "{:?}",
        order.order
    );
    let order3 = order.order.id().to_hex();
    w.wait_balance(0, bob, 50, 0)?;
    w.cov.human("member sign-redeem");

    // Submitted at the wrong partner's node: refused, nothing spent.
    w.at(0, &["partner", "submit-redeem", "--order", &token3])?
        .fails(1, "must be submitted at its node")?;
    // A token whose signature no longer holds never leaves the CLI.
    let mut forged = unhex(&token3)?;
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    w.at(
        3,
        &["partner", "submit-redeem", "--order", &to_hex(&forged)],
    )?
    .fails(2, "signature does not hold")?;
    w.at(3, &["partner", "submit-redeem", "--order", "not-a-token"])?
        .fails(2, "--order")?;
    w.wait_balance(3, bob, 50, 0)?;

    // No token: the member's signature is the authority (a wrong token used to pass unnoticed).
    let text = run(
        Some(&w.c.url(3)),
        None,
        None,
        &["partner", "submit-redeem", "--order", &token3],
    )?
    .human()?
    .to_string();
    ensure!(
        field_line(&text, "redeemed")? == "10 points" && field_line(&text, "order")? == order3,
        "receipt:\n{text}"
    );
    ensure!(
        field_line(&text, "at")? == w.names[3] && field_line(&text, "member")? == bob,
        "receipt:\n{text}"
    );
    w.cov.human("partner submit-redeem");

    // sign-redeem, JSON, by partner id and an explicit sequence number.
    w.wait_balance(1, bob, 40, 1)?;
    let v = w
        .member(
            1,
            Some(PASS),
            &[
                "--json",
                "member",
                "sign-redeem",
                "--wallet",
                wallet,
                "--points",
                "15",
                "--at",
                &w.ids[2],
                "--seq",
                "1",
            ],
        )?
        .json(&[
            "order_id",
            "token",
            "member",
            "member_seq",
            "redeemer",
            "redeemer_name",
            "points",
            "lots",
            "time",
        ])?;
    ensure!(
        s(&v, "member")? == bob && u(&v, "member_seq")? == 1 && u(&v, "points")? == 15,
        "signed order: {v}"
    );
    ensure!(
        s(&v, "redeemer")? == w.ids[2] && s(&v, "redeemer_name")? == w.names[2],
        "signed order: {v}"
    );
    let spent: u64 = arr(&v, "lots")?
        .iter()
        .filter_map(|l| l["points"].as_u64())
        .sum();
    ensure!(spent == 15, "the lots pay {spent}, not 15: {v}");
    let token2 = s(&v, "token")?;
    let order2 = s(&v, "order_id")?;
    ensure!(
        coalition_client::order::parse_order_token(&token2)?
            .order
            .id()
            .to_hex()
            == order2,
        "the token is not the order {order2}"
    );
    w.cov.json("member sign-redeem");

    let v = w
        .at(
            2,
            &["--json", "partner", "submit-redeem", "--order", &token2],
        )?
        .json(&["order_id", "points", "votes", "cert", "entry/partner"])?;
    ensure!(
        s(&v, "order_id")? == order2
            && u(&v, "points")? == 15
            && s(&v, "entry/partner")? == w.ids[2],
        "receipt: {v}"
    );
    // A POS retrying the same order gets the same receipt, and nothing is spent twice.
    let again = w
        .at(
            2,
            &["--json", "partner", "submit-redeem", "--order", &token2],
        )?
        .json(&["order_id"])?;
    ensure!(
        s(&again, "order_id")? == order2,
        "the retry answered another order: {again}"
    );
    w.cov.json("partner submit-redeem");
    for i in 0..4 {
        w.wait_balance(i, bob, 25, 2)?;
    }

    // sign-redeem errors: unknown partner, too many points, wrong passphrase, usage.
    w.member(
        0,
        Some(PASS),
        &[
            "member",
            "sign-redeem",
            "--wallet",
            wallet,
            "--points",
            "5",
            "--at",
            "No Such Shop",
        ],
    )?
    .fails(1, "no partner is named \"No Such Shop\"")?;
    let outsider = coalition_core::crypto::Keypair::generate()
        .public()
        .to_hex();
    w.member(
        0,
        Some(PASS),
        &[
            "member",
            "sign-redeem",
            "--wallet",
            wallet,
            "--points",
            "5",
            "--at",
            &outsider,
        ],
    )?
    .fails(1, "is not a partner")?;
    w.member(
        0,
        Some(PASS),
        &[
            "--json",
            "member",
            "sign-redeem",
            "--wallet",
            wallet,
            "--points",
            "26",
            "--at",
            &w.names[0],
        ],
    )?
    .fails(1, "only 25 are available")?;
    w.member(
        0,
        Some("nope"),
        &[
            "member",
            "sign-redeem",
            "--wallet",
            wallet,
            "--points",
            "5",
            "--at",
            &w.names[0],
        ],
    )?
    .fails(1, "wrong passphrase")?;
    w.member(
        0,
        Some(PASS),
        &["member", "sign-redeem", "--wallet", wallet, "--points", "5"],
    )?
    .fails(2, "--at")?;
    w.member(
        0,
        Some(PASS),
        &[
            "member",
            "sign-redeem",
            "--wallet",
            wallet,
            "--points",
            "5",
            "--at",
            &w.names[0],
            "--seq",
            "x",
        ],
    )?
    .fails(2, "--seq")?;
    w.cov.error("member sign-redeem");

    // submit-redeem errors at the node: an order reusing a spent sequence number is refused.
    let stale = w
        .member(
            0,
            Some(PASS),
            &[
                "--json",
                "member",
                "sign-redeem",
                "--wallet",
                wallet,
                "--points",
                "5",
                "--at",
                &w.names[1],
                "--seq",
                "0",
            ],
        )?
        .json(&["token"])?;
    w.at(
        1,
        &["partner", "submit-redeem", "--order", &s(&stale, "token")?],
    )?
    .fails(1, "redemption of order")?;
    let wrong = w.at(
        0,
        &["--json", "partner", "submit-redeem", "--order", &token3],
    )?;
    wrong.fails(1, "must be submitted at its node")?;
    w.cov.error("partner submit-redeem");
    for i in 0..4 {
        w.wait_balance(i, bob, 25, 2)?;
    }
    Ok(vec![order3, order2])
}

/// `settlement show`; the statements of epochs 0..=sealed must account for every point issued and
/// redeemed.
fn settlement_show(w: &mut Walk, sealed: u64, issued: u64, redeemed: u64) -> Result<()> {
    let e = sealed.to_string();
    let text = w
        .at(1, &["settlement", "show", "--epoch", &e])?
        .human()?
        .to_string();
    ensure!(
        text.starts_with(&format!("Settlement of epoch {sealed} (sealed)\n")),
        "settlement:\n{text}"
    );
    for needle in [
        format!("Settlement statement — epoch {sealed}"),
        "Net positions".into(),
        "Who pays whom".into(),
    ] {
        ensure!(
            text.contains(&needle),
            "settlement lacks {needle:?}:\n{text}"
        );
    }
    for name in &w.names {
        ensure!(
            text.contains(name.as_str()),
            "settlement lacks {name}:\n{text}"
        );
    }
    let latest = w.at(0, &["settlement", "show"])?.human()?.to_string();
    ensure!(
        latest.starts_with("Settlement of epoch ")
            && latest
                .lines()
                .next()
                .is_some_and(|l| l.ends_with("(sealed)")),
        "{latest}"
    );
    w.cov.human("settlement show");

    let fields = [
        "epoch",
        "sealed",
        "statement/epoch",
        "statement/currency",
        "statement/point_value",
        "statement/fee_bps",
        "statement/partners",
        "statement/gross_points",
        "statement/gross_money",
        "statement/net",
        "statement/transfers",
        "statement/per_issuer",
    ];
    let (mut total_issued, mut total_redeemed) = (0, 0);
    for epoch in 0..=sealed {
        let v = w
            .at(
                (epoch % 4) as usize,
                &[
                    "--json",
                    "settlement",
                    "show",
                    "--epoch",
                    &epoch.to_string(),
                ],
            )?
            .json(&fields)?;
        ensure!(
            u(&v, "epoch")? == epoch && u(&v, "statement/epoch")? == epoch && v["sealed"] == true,
            "statement {epoch}: {v}"
        );
        ensure!(
            arr(&v, "statement/partners")?.len() == 4 && arr(&v, "statement/net")?.len() == 4,
            "statement {epoch}: {v}"
        );
        let net: i64 = arr(&v, "statement/net")?
            .iter()
            .filter_map(Value::as_i64)
            .sum();
        ensure!(net == 0, "net positions of epoch {epoch} sum to {net}");
        for t in arr(&v, "statement/per_issuer")? {
            total_issued += t["issued"].as_u64().context("issued")?;
            total_redeemed += t["redeemed"].as_u64().context("redeemed")?;
        }
    }
    ensure!(
        total_issued == issued,
        "statements 0..={sealed} account for {total_issued} issued, not {issued}"
    );
    ensure!(
        total_redeemed == redeemed,
        "statements 0..={sealed} account for {total_redeemed} redeemed, not {redeemed}"
    );
    let v = w.at(3, &["--json", "settlement", "show"])?.json(&fields)?;
    ensure!(
        u(&v, "epoch")? >= sealed && v["sealed"] == true,
        "the default is the last sealed epoch: {v}"
    );
    w.cov.json("settlement show");

    let future = (w.c.status(0)?.current_epoch + 1000).to_string();
    w.at(0, &["settlement", "show", "--epoch", &future])?
        .fails(1, "has not ended yet: the current epoch is")?;
    w.at(0, &["--json", "settlement", "show", "--epoch", &future])?
        .fails(1, &format!("epoch {future}"))?;
    w.at(0, &["settlement", "show", "--epoch", "last"])?
        .fails(2, "--epoch")?;
    run(
        Some(&dead_url()),
        None,
        None,
        &["settlement", "show", "--epoch", "0"],
    )?
    .fails(1, "cannot reach node")?;
    w.cov.error("settlement show");
    Ok(())
}

/// `audit export`; returns the export of epochs 0..=sealed.
fn audit_export(w: &mut Walk, sealed: u64) -> Result<PathBuf> {
    let e = sealed.to_string();
    let a = w.path("a.export");
    let text = w
        .at(0, &["audit", "export", "--out", &a, "--epoch", &e])?
        .human()?
        .to_string();
    ensure!(
        field_line(&text, "exported")? == a
            && field_line(&text, "epochs")? == format!("0..={sealed}"),
        "export:\n{text}"
    );
    let entries: u64 = field_line(&text, "entries")?.parse()?;
    ensure!(
        entries >= 8,
        "an export of 4 issues and 4 redemptions holds {entries} entries"
    );
    ensure!(
        field_line(&text, "bytes")? == std::fs::metadata(&a)?.len().to_string(),
        "export size:\n{text}"
    );
    ensure!(
        !Path::new(&a).with_extension("partial").exists(),
        "the export left its .partial file"
    );
    w.cov.human("audit export");

    let b = w.path("b.export");
    let v = w
        .at(1, &["--json", "audit", "export", "--out", &b])?
        .json(&["file", "epoch", "entries", "checkpoints", "bytes"])?;
    ensure!(
        s(&v, "file")? == b && u(&v, "epoch")? >= sealed,
        "export: {v}"
    );
    ensure!(
        u(&v, "checkpoints")? == u(&v, "epoch")? + 1 && u(&v, "entries")? >= entries,
        "export: {v}"
    );
    ensure!(
        u(&v, "bytes")? == std::fs::metadata(&b)?.len(),
        "export size: {v}"
    );
    w.cov.json("audit export");

    w.at(0, &["audit", "export", "--out", &a, "--epoch", &e])?
        .fails(1, "already exists")?;
    let never = w.path("never.export");
    let future = (w.c.status(0)?.current_epoch + 1000).to_string();
    w.at(
        0,
        &[
            "--json", "audit", "export", "--out", &never, "--epoch", &future,
        ],
    )?
    .fails(1, "is not sealed yet")?;
    run(
        Some(&dead_url()),
        None,
        None,
        &["audit", "export", "--out", &never],
    )?
    .fails(1, "cannot reach node")?;
    ensure!(
        !Path::new(&never).exists() && !Path::new(&never).with_extension("partial").exists(),
        "a failed export left files"
    );
    w.at(0, &["audit", "export"])?.fails(2, "--out")?;
    w.cov.error("audit export");
    Ok(PathBuf::from(a))
}

fn audit_verify(w: &mut Walk, export: &Path, sealed: u64) -> Result<()> {
    let ex = export.to_string_lossy().to_string();
    let g = w.genesis_file.clone();
    let text = offline(&["audit", "verify", "--export", &ex, "--genesis", &g])?
        .human()?
        .to_string();
    ensure!(
        text.starts_with(&format!("audit OK: {ex}: "))
            && text.contains(&format!("checkpoints 0..={sealed}")),
        "{text}"
    );
    ensure!(
        text.lines().count() == 1,
        "the verdict is not one line:\n{text}"
    );
    // The verdict names the genesis it checked and where that came from: an audit against the
    // audited partner's own genesis proves less than one against a trusted copy.
    let genesis_hash = s(&w.c.cli_json(0, &["status"])?, "genesis_hash")?;
    ensure!(
        text.contains(&format!("against genesis {genesis_hash} from {g}")),
        "the verdict does not name genesis {genesis_hash}: {text}"
    );
    let live = w.at(2, &["audit", "verify"])?.human()?.to_string();
    ensure!(
        live.starts_with(&format!("audit OK: {}: ", w.c.url(2)))
            && live.contains(&format!(
                "against genesis {genesis_hash} from the audited node"
            )),
        "{live}"
    );
    w.cov.human("audit verify");

    let fields = [
        "verdict",
        "source",
        "genesis",
        "genesis_from",
        "epoch",
        "entries",
        "certificates",
        "checkpoints",
        "last_checkpoint",
        "last_logs_root",
    ];
    let v = offline(&[
        "--json",
        "audit",
        "verify",
        "--export",
        &ex,
        "--genesis",
        &g,
    ])?
    .json(&fields)?;
    ensure!(
        s(&v, "verdict")? == "ok"
            && s(&v, "source")? == ex
            && s(&v, "genesis")? == genesis_hash
            && s(&v, "genesis_from")? == g,
        "verdict: {v}"
    );
    ensure!(
        u(&v, "epoch")? == sealed && u(&v, "checkpoints")? == sealed + 1,
        "verdict: {v}"
    );
    ensure!(
        u(&v, "certificates")? >= 4,
        "4 redemptions, {} certificates",
        u(&v, "certificates")?
    );
    // The live node up to the same epoch holds exactly the same ledger.
    let e = sealed.to_string();
    let lv = w
        .at(
            3,
            &["--json", "audit", "verify", "--epoch", &e, "--genesis", &g],
        )?
        .json(&fields)?;
    ensure!(s(&lv, "source")? == w.c.url(3), "verdict: {lv}");
    for f in [
        "epoch",
        "entries",
        "certificates",
        "last_checkpoint",
        "last_logs_root",
    ] {
        ensure!(
            lv[f] == v[f],
            "{f}: the live node says {}, the export {}",
            lv[f],
            v[f]
        );
    }
    w.cov.json("audit verify");

    offline(&["audit", "verify", "--export", &ex])?.fails(2, "--export needs --genesis")?;
    offline(&[
        "audit",
        "verify",
        "--export",
        &ex,
        "--genesis",
        &g,
        "--epoch",
        "0",
    ])?
    .fails(2, "--epoch applies to a live node")?;
    // One changed byte.
    let mut bytes = std::fs::read(export)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    let bad = w.path("tampered.export");
    std::fs::write(&bad, &bytes)?;
    offline(&["audit", "verify", "--export", &bad, "--genesis", &g])?.fails(1, "audit FAILED")?;
    offline(&[
        "--json",
        "audit",
        "verify",
        "--export",
        &bad,
        "--genesis",
        &g,
    ])?
    .fails(1, "audit FAILED")?;
    // Another coalition's genesis.
    let other = other_genesis(w)?;
    offline(&["audit", "verify", "--export", &ex, "--genesis", &other])?
        .fails(1, "audit FAILED")?;
    w.at(3, &["audit", "verify", "--genesis", &other])?
        .fails(1, "audit FAILED")?;
    offline(&[
        "audit",
        "verify",
        "--export",
        &w.path("missing.export"),
        "--genesis",
        &g,
    ])?
    .fails(1, "cannot open")?;
    offline(&["audit", "verify", "--export", &ex, "--genesis", &ex])?.fails(1, "cannot read")?;
    let not_genesis = w.path("not-genesis.json");
    std::fs::write(&not_genesis, r#"{"coalition": 1}"#)?;
    offline(&[
        "audit",
        "verify",
        "--export",
        &ex,
        "--genesis",
        &not_genesis,
    ])?
    .fails(1, "is not a genesis file")?;
    let future = (w.c.status(0)?.current_epoch + 1000).to_string();
    w.at(0, &["audit", "verify", "--epoch", &future])?
        .fails(1, "is not sealed yet")?;
    run(Some(&dead_url()), None, None, &["audit", "verify"])?.fails(1, "cannot reach node")?;
    w.cov.error("audit verify");
    Ok(())
}

/// A genesis of another coalition (offline `network init`).
fn other_genesis(w: &Walk) -> Result<String> {
    let dir = w.dir.join("other-coalition");
    if !dir.join("genesis.json").exists() {
        offline(&[
            "network",
            "init",
            "--partners",
            "4",
            "--dir",
            &dir.to_string_lossy(),
        ])?
        .human()?;
    }
    Ok(dir.join("genesis.json").to_string_lossy().to_string())
}

/// `audit prove`; returns the saved proof of `order`.
fn audit_prove(
    w: &mut Walk,
    lot: &str,
    order: &str,
    bob_order: &str,
    sealed: u64,
    alice: &str,
) -> Result<PathBuf> {
    let text = w
        .at(3, &["audit", "prove", "--record", lot])?
        .human()?
        .to_string();
    ensure!(
        field_line(&text, "record")? == lot && field_line(&text, "verdict")? == "proof verified",
        "proof:\n{text}"
    );
    ensure!(
        field_line(&text, "in the log of")?.starts_with(&format!("{} at position ", w.names[0])),
        "proof:\n{text}"
    );
    ensure!(
        field_line(&text, "sealed checkpoint")?.starts_with("epoch "),
        "proof:\n{text}"
    );
    w.cov.human("audit prove");

    let fields = [
        "verdict",
        "record",
        "partner",
        "position",
        "epoch",
        "checkpoint",
        "signatures",
        "saved",
    ];
    let proof = w.path("receipt.proof");
    let v = w
        .at(
            1,
            &[
                "--json", "audit", "prove", "--record", order, "--out", &proof,
            ],
        )?
        .json(&fields)?;
    ensure!(
        s(&v, "verdict")? == "ok" && s(&v, "record")? == order && s(&v, "partner")? == w.names[1],
        "proof: {v}"
    );
    ensure!(
        u(&v, "epoch")? <= sealed && u(&v, "signatures")? >= w.genesis.quorum() as u64,
        "proof: {v}"
    );
    ensure!(
        s(&v, "saved")? == proof && Path::new(&proof).exists(),
        "proof not saved: {v}"
    );
    // Against the last sealed checkpoint and a given genesis.
    let e = sealed.to_string();
    let v = w
        .at(
            0,
            &[
                "--json",
                "audit",
                "prove",
                "--record",
                bob_order,
                "--epoch",
                &e,
                "--genesis",
                &w.genesis_file,
            ],
        )?
        .json(&fields)?;
    ensure!(
        u(&v, "epoch")? == sealed && s(&v, "partner")? == w.names[3] && v["saved"].is_null(),
        "proof: {v}"
    );
    w.cov.json("audit prove");

    w.at(0, &["audit", "prove", "--record", "not-a-record"])?
        .fails(2, "--record")?;
    let unknown = "ab".repeat(32);
    w.at(0, &["audit", "prove", "--record", &unknown])?
        .fails(1, "no record")?;
    w.at(1, &["audit", "prove", "--record", order, "--out", &proof])?
        .fails(1, "already exists")?;
    let other = other_genesis(w)?;
    w.at(0, &["audit", "prove", "--record", lot, "--genesis", &other])?
        .fails(1, "does NOT verify")?;
    run(
        Some(&dead_url()),
        None,
        None,
        &["audit", "prove", "--record", lot],
    )?
    .fails(1, "cannot reach node")?;
    // A record of an epoch not sealed yet: issued in the first second of an epoch, proved at once,
    // so its epoch cannot have ended, let alone been sealed.
    // If the machine is so slow that the epoch got sealed in between, try again in a later one.
    let genesis_ms = u128::from(w.genesis.genesis_time) * 1000;
    let epoch_ms = u128::from(EPOCH_SECS) * 1000;
    let mut attempts = 0;
    loop {
        attempts += 1;
        wait_for(
            "the start of an epoch",
            Duration::from_secs(EPOCH_SECS * 2),
            || {
                let ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
                Ok(((ms - genesis_ms) % epoch_ms < 1000).then_some(()))
            },
        )?;
        let epoch = w.genesis.epoch_at(SystemClock.now());
        let fresh = w
            .at(
                0,
                &[
                    "--json", "partner", "issue", "--member", alice, "--points", "1",
                ],
            )?
            .json(&["lot"])?;
        let early = w.at(0, &["audit", "prove", "--record", &s(&fresh, "lot")?])?;
        if early.code == Some(0)
            && attempts < 3
            && w.c.status(0)?.last_sealed_epoch.is_some_and(|e| e >= epoch)
        {
            eprintln!(
                "epoch {epoch} was sealed before its record could be proved early; trying again"
            );
            continue;
        }
        early.fails(1, "no sealed checkpoint covers it yet")?;
        break;
    }
    w.cov.error("audit prove");
    Ok(PathBuf::from(proof))
}

fn audit_check_proof(w: &mut Walk, proof: &Path, order: &str) -> Result<()> {
    let p = proof.to_string_lossy().to_string();
    let g = w.genesis_file.clone();
    let text = offline(&["audit", "check-proof", "--proof", &p, "--genesis", &g])?
        .human()?
        .to_string();
    ensure!(
        field_line(&text, "record")? == order && field_line(&text, "verdict")? == "proof verified",
        "{text}"
    );
    ensure!(
        field_line(&text, "in the log of")?.starts_with(&w.names[1]),
        "{text}"
    );
    w.cov.human("audit check-proof");

    let v = offline(&[
        "--json",
        "audit",
        "check-proof",
        "--proof",
        &p,
        "--genesis",
        &g,
    ])?
    .json(&[
        "verdict",
        "record",
        "partner",
        "position",
        "epoch",
        "checkpoint",
        "signatures",
        "saved",
    ])?;
    ensure!(
        s(&v, "verdict")? == "ok" && s(&v, "record")? == order && v["saved"].is_null(),
        "{v}"
    );
    w.cov.json("audit check-proof");

    // One changed hex digit of a signature.
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(proof)?)?;
    ensure!(
        flip_first_signature(&mut doc),
        "no signature found in the proof"
    );
    let bad = w.path("tampered.proof");
    std::fs::write(&bad, serde_json::to_vec_pretty(&doc)?)?;
    offline(&["audit", "check-proof", "--proof", &bad, "--genesis", &g])?
        .fails(1, "does NOT verify")?;
    offline(&[
        "--json",
        "audit",
        "check-proof",
        "--proof",
        &bad,
        "--genesis",
        &g,
    ])?
    .fails(1, "does NOT verify")?;
    offline(&[
        "audit",
        "check-proof",
        "--proof",
        &p,
        "--genesis",
        &other_genesis(w)?,
    ])?
    .fails(1, "does NOT verify")?;
    offline(&["audit", "check-proof", "--proof", &g, "--genesis", &g])?
        .fails(1, "is not a record proof")?;
    offline(&[
        "audit",
        "check-proof",
        "--proof",
        &w.path("missing.proof"),
        "--genesis",
        &g,
    ])?
    .fails(1, "cannot read")?;
    offline(&["audit", "check-proof", "--proof", &p])?.fails(2, "--genesis")?;
    w.cov.error("audit check-proof");
    Ok(())
}

/// Changes one hex digit of the first 128-hex-digit string (an ed25519 signature) in `v`.
fn flip_first_signature(v: &mut Value) -> bool {
    match v {
        Value::String(text) if is_hex(text, 128) => {
            let first = if text.starts_with('0') { "1" } else { "0" };
            text.replace_range(0..1, first);
            true
        }
        Value::Array(items) => items.iter_mut().any(flip_first_signature),
        Value::Object(map) => map.values_mut().any(flip_first_signature),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------------
// Offline: what the CLI crate's own tests leave out

/// Clap's usage errors follow the contract too: exit 2, one line, `coalition: `, naming the command.
#[test]
fn usage_errors_are_one_line_naming_the_command() -> Result<()> {
    let member = coalition_core::crypto::Keypair::generate()
        .public()
        .to_hex();
    let cases: &[(&[&str], &str)] = &[
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (&["audit", "verfy"], "(see `coalition audit --help`)"),
        (
            &["member", "balance"],
            "(see `coalition member balance --help`)",
        ),
        (
            &["--json", "member", "balance", "--member", "abc"],
            "(see `coalition member balance --help`)",
        ),
        (
            &["member", "history", "--wallet", "w", "--member", &member],
            "cannot be used with",
        ),
        (
            &["member", "redeem", "--wallet", "w", "--points", "-5"],
            "unexpected argument '-5'",
        ),
        (
            &["member", "sign-redeem", "--wallet", "w", "--points", "1"],
            "--at",
        ),
        (&["partner", "issue", "--points", "1"], "--member"),
        (
            &[
                "partner",
                "issue",
                "--member",
                &member,
                "--points",
                "1",
                "--expires-in",
                "0s",
            ],
            "at least one second",
        ),
        (&["partner", "submit-redeem"], "--order"),
        (
            &["settlement", "show", "--epoch", "x"],
            "invalid value 'x' for '--epoch <E>'",
        ),
        (&["audit", "export", "--epoch", "1"], "--out"),
        (&["audit", "prove"], "--record"),
        (&["audit", "check-proof", "--genesis", "g"], "--proof"),
        (
            &["network", "init", "--partners", "0", "--dir", "d"],
            "--partners",
        ),
        (&["--node", "ftp://x", "status"], "--node"),
        (&["completions", "tcsh"], "possible values"),
        (&["status", "--bogus"], "--bogus"),
    ];
    for (args, needle) in cases {
        offline(args)?.fails(2, needle)?;
    }
    // Help and version are not errors; a bare group prints its help and exits 2, as clap does.
    let help = offline(&["audit", "--help"])?;
    ensure!(
        help.code == Some(0) && help.stdout.contains("Example"),
        "{}",
        help.describe()
    );
    let version = offline(&["--version"])?;
    ensure!(
        version.code == Some(0) && version.stdout.starts_with("coalition "),
        "{}",
        version.describe()
    );
    let bare = offline(&["audit"])?;
    ensure!(
        bare.code == Some(2) && bare.stderr.contains("Usage: coalition audit"),
        "{}",
        bare.describe()
    );
    Ok(())
}

/// Every command of the contract documents itself with an example.
#[test]
fn every_command_has_help_with_an_example() -> Result<()> {
    let commands: &[&[&str]] = &[
        &["network", "init"],
        &["member", "new"],
        &["member", "id"],
        &["member", "show"],
        &["member", "balance"],
        &["member", "history"],
        &["member", "redeem"],
        &["member", "sign-redeem"],
        &["partner", "issue"],
        &["partner", "submit-redeem"],
        &["status"],
        &["settlement", "show"],
        &["audit", "export"],
        &["audit", "verify"],
        &["audit", "prove"],
        &["audit", "check-proof"],
        &["completions"],
    ];
    for cmd in commands {
        let mut args = cmd.to_vec();
        args.push("--help");
        let out = offline(&args)?;
        ensure!(
            out.code == Some(0) && out.stderr.is_empty(),
            "{}",
            out.describe()
        );
        ensure!(
            out.stdout.contains("Example"),
            "`{}` has no example: {}",
            cmd.join(" "),
            out.describe()
        );
        ensure!(
            out.stdout
                .contains(&format!("Usage: coalition {}", cmd.join(" "))),
            "{}",
            out.describe()
        );
    }
    let top = offline(&["--help"])?;
    ensure!(
        top.stdout.contains("Exit codes") && top.stdout.contains("COALITION_WALLET_PASSPHRASE"),
        "{}",
        top.describe()
    );
    Ok(())
}

/// The audit commands' argument errors that need no node, and a forged order token.
#[test]
fn offline_audit_and_order_errors() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let p = |name: &str| dir.path().join(name).to_string_lossy().to_string();
    offline(&["network", "init", "--partners", "4", "--dir", &p("net")])?.human()?;
    let genesis = p("net/genesis.json");
    let dead = dead_url();

    // verify: --genesis is required with --export, --epoch is refused with it; both before any I/O.
    offline(&["audit", "verify", "--export", &p("none.export")])?
        .fails(2, "--export needs --genesis")?;
    offline(&[
        "--json",
        "audit",
        "verify",
        "--export",
        &p("none.export"),
        "--genesis",
        &genesis,
        "--epoch",
        "3",
    ])?
    .fails(2, "--epoch applies to a live node")?;
    offline(&[
        "audit",
        "verify",
        "--export",
        &p("none.export"),
        "--genesis",
        &genesis,
    ])?
    .fails(1, "cannot open")?;
    std::fs::write(p("junk.export"), b"not an export")?;
    offline(&[
        "audit",
        "verify",
        "--export",
        &p("junk.export"),
        "--genesis",
        &genesis,
    ])?
    .fails(1, "audit FAILED")?;
    offline(&[
        "audit",
        "verify",
        "--export",
        &p("junk.export"),
        "--genesis",
        &p("junk.export"),
    ])?
    .fails(1, "is not a genesis file")?;

    // prove: a malformed record id is a usage error before the node is asked.
    run(
        Some(&dead),
        None,
        None,
        &["audit", "prove", "--record", "12345"],
    )?
    .fails(2, "--record")?;
    run(
        Some(&dead),
        None,
        None,
        &["audit", "prove", "--record", &"cd".repeat(32)],
    )?
    .fails(1, "cannot reach node")?;

    // check-proof: missing, not JSON, JSON but not a proof, bad genesis.
    offline(&[
        "audit",
        "check-proof",
        "--proof",
        &p("none.proof"),
        "--genesis",
        &genesis,
    ])?
    .fails(1, "cannot read")?;
    offline(&[
        "audit",
        "check-proof",
        "--proof",
        &p("junk.export"),
        "--genesis",
        &genesis,
    ])?
    .fails(1, "is not a record proof")?;
    offline(&[
        "audit",
        "check-proof",
        "--proof",
        &genesis,
        "--genesis",
        &genesis,
    ])?
    .fails(1, "is not a record proof")?;
    offline(&[
        "audit",
        "check-proof",
        "--proof",
        &genesis,
        "--genesis",
        &p("none.json"),
    ])?
    .fails(1, "cannot read")?;

    // export: an existing file is never replaced, and nothing is left behind.
    std::fs::write(p("taken.export"), b"keep me")?;
    run(
        Some(&dead),
        None,
        None,
        &["audit", "export", "--out", &p("taken.export")],
    )?
    .fails(1, "already exists")?;
    ensure!(
        std::fs::read(p("taken.export"))? == b"keep me",
        "export overwrote a file"
    );
    ensure!(
        !dir.path().join("taken.partial").exists(),
        "export left its .partial file"
    );

    // submit-redeem: a token whose signature does not hold never reaches a node.
    let key = coalition_core::crypto::Keypair::generate();
    let partner = coalition_core::crypto::Keypair::generate().public();
    let order = coalition_core::record::RedeemOrder {
        member: coalition_core::record::MemberId(key.public()),
        member_seq: 0,
        redeemer: coalition_core::record::PartnerId(partner),
        points: 5,
        lots: vec![coalition_core::record::LotSpend {
            lot: coalition_core::hash::Hash([7; 32]),
            points: 5,
        }],
        time: SystemClock.now(),
    }
    .sign(&key);
    let good = coalition_client::order::order_token(&order);
    // With a valid token the node is asked (and is not there).
    run(
        Some(&dead),
        Some("t"),
        None,
        &["partner", "submit-redeem", "--order", &good],
    )?
    .fails(1, "cannot reach node")?;
    let mut bytes = unhex(&good)?;
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    run(
        Some(&dead),
        Some("t"),
        None,
        &["partner", "submit-redeem", "--order", &to_hex(&bytes)],
    )?
    .fails(2, "signature does not hold")?;
    run(
        Some(&dead),
        Some("t"),
        None,
        &[
            "partner",
            "submit-redeem",
            "--order",
            &good[..good.len() - 2],
        ],
    )?
    .fails(2, "--order")?;
    // A good order needs no token: it goes to the node, which here is not running.
    run(
        Some(&dead),
        None,
        None,
        &["partner", "submit-redeem", "--order", &good],
    )?
    .fails(1, "(is coalition-node running there?")?;
    Ok(())
}

/// `member new` refuses before anything else when the wallet exists; `--json` errors print no JSON.
#[test]
fn offline_member_errors_print_no_json() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let w = dir.path().join("w").to_string_lossy().to_string();
    let v = run(
        None,
        None,
        Some(PASS),
        &["--json", "member", "new", "--wallet", &w],
    )?
    .json(&["member", "wallet"])?;
    ensure!(s(&v, "wallet")? == w, "{v}");
    run(
        None,
        None,
        Some(PASS),
        &["--json", "member", "new", "--wallet", &w],
    )?
    .fails(1, "already exists")?;
    offline(&[
        "--json",
        "member",
        "id",
        "--wallet",
        &format!("{w}.missing"),
    ])?
    .fails(1, "cannot read wallet")?;
    offline(&[
        "--json",
        "member",
        "show",
        "--wallet",
        &format!("{w}.missing"),
    ])?
    .fails(1, "cannot read wallet")?;
    offline(&["--json", "member", "new", "--wallet", &format!("{w}2")])?
        .fails(1, "COALITION_WALLET_PASSPHRASE")?;
    // A passphrase too short to resist guessing is refused, and no wallet is written.
    run(
        None,
        None,
        Some("x"),
        &["--json", "member", "new", "--wallet", &format!("{w}3")],
    )?
    .fails(1, "at least 8 characters")?;
    ensure!(
        !std::path::Path::new(&format!("{w}3")).exists(),
        "a wallet was written with a refused passphrase"
    );
    // A device that never ends is read only up to the size of a wallet.
    offline(&["--json", "member", "id", "--wallet", "/dev/zero"])?
        .fails(1, "far larger than any wallet")?;
    let v = offline(&["--json", "completions", "zsh"])?.json(&["shell", "script"])?;
    ensure!(
        s(&v, "script")?.contains("#compdef coalition"),
        "zsh completions"
    );
    Ok(())
}
