//! A harness for end-to-end tests: a local coalition of real `coalition-node` processes on
//! 127.0.0.1, driven through the real `coalition` CLI and the HTTP API.
//!
//! Each [`Cluster`] lives in its own temporary directory with its own free ports, so tests run in
//! parallel. Conditions are awaited by polling with a deadline ([`wait_for`]); nothing sleeps a fixed
//! time to stand in for synchronisation. When a test panics, every node's log tail is printed.

pub mod disk;

use anyhow::{bail, Context, Result};
use coalition_client::types::{LogHeadInfo, Status};
use coalition_client::{Client, ClientError, NodeConfig};
use coalition_core::record::PartnerId;
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where the workspace's binaries are: `COALITION_BIN_DIR`, else next to the running executable
/// (for a test executable, next to its `deps/` directory): the debug build under tests, the release
/// build under `coalition-bench`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("COALITION_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    // Test executables live in target/debug/deps, tools such as coalition-chaos in target/debug.
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        dir
    }
}

/// Path of one of our binaries, with a helpful panic if it has not been built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} not found: build the binaries first (`cargo test --workspace --no-run`, as scripts/test.sh does, builds them)",
        p.display()
    );
    p
}

/// Polls `check` until it returns `Some`, or fails after `timeout` with `what` and the last error.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("condition not met");
    loop {
        match check() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}: {last}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The kernel's range of ephemeral ports (those `connect` picks as source ports), or Linux's default.
fn ephemeral_port_range() -> (u32, u32) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut parts = text.split_whitespace().map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .unwrap_or((32_768, 60_999))
}

/// Ports this process has handed out. The end-to-end tests run as parallel threads of one process,
/// and a cluster's ports stay free (so a probe by another thread would find them free) until its
/// nodes bind them; a port is handed out at most once per process.
static HANDED_OUT: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// Finds `count` consecutive free TCP ports on 127.0.0.1, outside the ephemeral port range when there
/// is room: a node that is stopped and restarted must get its ports back, and an outgoing connection
/// (of any process) that picks a stopped node's port as its source port would hold it. No port is
/// returned twice within one process.
pub fn free_port_range(count: u16) -> u16 {
    let count32 = u32::from(count);
    let (eph_lo, eph_hi) = ephemeral_port_range();
    let (start, end) = if eph_lo >= 15_000 + 2_000 {
        (15_000, eph_lo)
    } else if eph_hi + 2_000 < 65_535 {
        (eph_hi + 1, 65_535)
    } else {
        (20_000, 55_000)
    };
    // Start from a pseudo-random point so parallel test binaries rarely probe the same range.
    let seed = std::process::id() as u64
        ^ Instant::now().elapsed().as_nanos() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
    let span = u64::from(end.saturating_sub(start).saturating_sub(count32).max(1));
    let mut base = start + (seed % span) as u32;
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if !(base..base + count32).any(|p| handed_out.contains(&p)) {
            let listeners: Vec<_> = (0..count32)
                .map_while(|i| TcpListener::bind(("127.0.0.1", (base + i) as u16)).ok())
                .collect();
            if listeners.len() == count as usize {
                handed_out.extend(base..base + count32);
                return base as u16;
            }
        }
        base = if base + 2 * count32 + 7 >= end {
            start
        } else {
            base + count32 + 7
        };
    }
}

/// One node of the cluster.
pub struct NodeProc {
    /// Index in the genesis.
    pub index: usize,
    /// The node's config file.
    pub config: PathBuf,
    /// Parsed config.
    pub settings: NodeConfig,
    /// The running process, if started.
    pub child: Option<Child>,
    /// Where its stderr goes.
    pub log: PathBuf,
}

/// A local coalition of real node processes.
pub struct Cluster {
    /// The temporary directory holding everything (removed on drop).
    pub dir: tempfile::TempDir,
    /// The nodes, in genesis order.
    pub nodes: Vec<NodeProc>,
    /// The genesis file.
    pub genesis_path: PathBuf,
    /// `RUST_LOG` for nodes started from now on (the test's own `RUST_LOG`, else `info,libp2p=warn`).
    pub rust_log: String,
}

impl Cluster {
    /// Writes a coalition of `n` partners with `coalition network init` (epoch length `epoch_secs`)
    /// without starting any node.
    pub fn init(n: usize, epoch_secs: u64) -> Result<Cluster> {
        Cluster::init_with(n, epoch_secs, &[])
    }

    /// [`Cluster::init`] with more `network init` arguments (`--clock-skew-secs 2`, say).
    pub fn init_with(n: usize, epoch_secs: u64, more: &[&str]) -> Result<Cluster> {
        let dir = tempfile::tempdir()?;
        let base = free_port_range((2 * n) as u16);
        let dir_arg = dir.path().to_string_lossy().to_string();
        let (n_arg, base_arg, epoch_arg) =
            (n.to_string(), base.to_string(), epoch_secs.to_string());
        let mut args = vec![
            "network",
            "init",
            "--partners",
            &n_arg,
            "--dir",
            &dir_arg,
            "--base-port",
            &base_arg,
            "--epoch-secs",
            &epoch_arg,
        ];
        args.extend_from_slice(more);
        let out = run_cli(&args)?;
        check_output("network init", &out)?;
        let mut nodes = Vec::new();
        for i in 0..n {
            let config = dir.path().join(format!("partner-{i}")).join("node.toml");
            let text = std::fs::read_to_string(&config)
                .with_context(|| format!("reading {}", config.display()))?;
            let settings: NodeConfig = toml::from_str(&text)?;
            let log = dir.path().join(format!("partner-{i}")).join("node.log");
            nodes.push(NodeProc {
                index: i,
                config,
                settings,
                child: None,
                log,
            });
        }
        let genesis_path = dir.path().join("genesis.json");
        let rust_log = std::env::var("RUST_LOG").unwrap_or_else(|_| "info,libp2p=warn".into());
        Ok(Cluster {
            dir,
            nodes,
            genesis_path,
            rust_log,
        })
    }

    /// `init` and start every node, waiting until each answers `/health`.
    pub fn start(n: usize, epoch_secs: u64) -> Result<Cluster> {
        let mut c = Cluster::init(n, epoch_secs)?;
        for i in 0..n {
            c.spawn(i)?;
        }
        for i in 0..n {
            c.wait_healthy(i)?;
        }
        for i in 0..n {
            c.wait_ready(i)?;
        }
        Ok(c)
    }

    /// Starts every node and waits until each answers `/health` (after [`Cluster::init`]).
    pub fn start_all(&mut self) -> Result<()> {
        for i in 0..self.nodes.len() {
            self.spawn(i)?;
        }
        for i in 0..self.nodes.len() {
            self.wait_healthy(i)?;
        }
        for i in 0..self.nodes.len() {
            self.wait_ready(i)?;
        }
        Ok(())
    }

    /// Starts node `i` (appending to its log file).
    pub fn spawn(&mut self, i: usize) -> Result<()> {
        let rust_log = self.rust_log.clone();
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)?;
        let child = Command::new(bin("coalition-node"))
            .arg("--config")
            .arg(&node.config)
            .env("RUST_LOG", &rust_log)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning coalition-node")?;
        node.child = Some(child);
        Ok(())
    }

    /// Waits until node `i` answers `/health`.
    pub fn wait_healthy(&mut self, i: usize) -> Result<()> {
        let what = format!("node {i} to answer at {}", self.url(i));
        self.wait_health(i, &what, |_| true)
    }

    /// Waits until node `i` says it is ready: it has rejoined after its start (partners confirmed
    /// its own log and votes) and signs entries and votes.
    pub fn wait_ready(&mut self, i: usize) -> Result<()> {
        self.wait_health(i, &format!("node {i} to be ready"), |h| {
            h["ready"] == serde_json::Value::Bool(true)
        })
    }

    /// Waits up to 30 s until node `i`'s `/health` answer passes `accept`; fails at once if the
    /// node exits meanwhile.
    fn wait_health(
        &mut self,
        i: usize,
        what: &str,
        accept: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<()> {
        let url = self.url(i);
        wait_for(what, Duration::from_secs(30), || {
            if let Some(child) = self.nodes[i].child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("node {i} exited with {status}");
                }
            }
            let health = Client::new(&url, None).get::<serde_json::Value>("/health");
            Ok(health.ok().filter(|h| accept(h)).map(|_| ()))
        })
    }

    /// Node `i`'s data directory (as its config names it, relative to the config file).
    pub fn data_dir(&self, i: usize) -> PathBuf {
        let node = &self.nodes[i];
        match node.config.parent() {
            Some(base) if node.settings.data_dir.is_relative() => {
                base.join(&node.settings.data_dir)
            }
            _ => node.settings.data_dir.clone(),
        }
    }

    /// Points node `i`'s `data_dir` at `dir` (in its config file and in [`NodeProc::settings`]);
    /// for a node not running.
    pub fn set_data_dir(&mut self, i: usize, dir: &Path) -> Result<()> {
        let config = self.nodes[i].config.clone();
        edit_config(
            &config,
            &config,
            "data_dir",
            toml::Value::String(dir.to_string_lossy().into()),
        )?;
        self.nodes[i].settings.data_dir = dir.to_path_buf();
        Ok(())
    }

    /// `kill -9` node `i` and reap it.
    pub fn kill9(&mut self, i: usize) -> Result<()> {
        if let Some(mut child) = self.nodes[i].child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM node `i` and wait for it to exit; returns whether it exited cleanly (status 0).
    pub fn stop(&mut self, i: usize) -> Result<bool> {
        if let Some(mut child) = self.nodes[i].child.take() {
            signal(child.id(), "TERM")?;
            let status = wait_for(
                "node to exit after SIGTERM",
                Duration::from_secs(20),
                || Ok(child.try_wait()?),
            )?;
            return Ok(status.success());
        }
        Ok(true)
    }

    /// Waits up to 30 s for node `i` to exit by itself, and returns how it exited (the node is then
    /// no longer running).
    pub fn wait_exit(&mut self, i: usize, what: &str) -> Result<std::process::ExitStatus> {
        let Some(child) = self.nodes[i].child.as_mut() else {
            bail!("node {i} is not running");
        };
        let status = wait_for(what, Duration::from_secs(30), || Ok(child.try_wait()?))?;
        self.nodes[i].child = None;
        Ok(status)
    }

    /// Restarts node `i` after a kill or stop and waits until it is ready (it has rejoined: at
    /// least `q - 1` partners must be up).
    pub fn restart(&mut self, i: usize) -> Result<()> {
        self.spawn(i)?;
        self.wait_healthy(i)?;
        self.wait_ready(i)
    }

    /// The API URL of node `i`.
    pub fn url(&self, i: usize) -> String {
        format!("http://{}", self.nodes[i].settings.api_listen)
    }

    /// An API client for node `i` carrying its partner token.
    pub fn client(&self, i: usize) -> Client {
        Client::new(&self.url(i), Some(self.nodes[i].settings.api_token.clone()))
    }

    /// Runs the `coalition` CLI against node `i` with its token (and `--json`), returning the output.
    pub fn cli(&self, i: usize, args: &[&str]) -> Result<Output> {
        let mut full = vec![
            "--node".to_string(),
            self.url(i),
            "--token".into(),
            self.nodes[i].settings.api_token.clone(),
        ];
        full.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        run_cli(&refs)
    }

    /// Like [`Cluster::cli`] with `--json`, requiring success and parsing stdout.
    pub fn cli_json(&self, i: usize, args: &[&str]) -> Result<serde_json::Value> {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        json_output(&args.join(" "), &self.cli(i, &a)?)
    }

    /// Runs the `coalition` CLI against node `i` as a member would: no partner token, and the
    /// wallet passphrase `pass` in `COALITION_WALLET_PASSPHRASE`.
    pub fn wallet_cli(&self, i: usize, pass: &str, args: &[&str]) -> Result<Output> {
        Command::new(bin("coalition"))
            .arg("--node")
            .arg(self.url(i))
            .args(args)
            .env_remove("COALITION_NODE")
            .env_remove("COALITION_TOKEN")
            .env("COALITION_WALLET_PASSPHRASE", pass)
            .stdin(Stdio::null())
            .output()
            .context("running coalition")
    }

    /// Like [`Cluster::wallet_cli`] with `--json`, requiring success and parsing stdout.
    pub fn wallet_json(&self, i: usize, pass: &str, args: &[&str]) -> Result<serde_json::Value> {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        json_output(&args.join(" "), &self.wallet_cli(i, pass, &a)?)
    }

    /// Node `i`'s status.
    pub fn status(&self, i: usize) -> Result<Status> {
        Ok(self.client(i).status()?)
    }

    /// Waits until each node in `nodes` has an open connection to every other node in `nodes`.
    pub fn wait_connected(&self, nodes: &[usize], timeout: Duration) -> Result<()> {
        for &i in nodes {
            let want: Vec<PartnerId> = nodes
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| self.partner_id(j))
                .collect();
            wait_for(
                &format!("node {i} to connect to nodes {nodes:?}"),
                timeout,
                || {
                    let s = self.status(i)?;
                    let up: Vec<PartnerId> = s
                        .peers
                        .iter()
                        .filter(|p| p.connected)
                        .map(|p| p.partner)
                        .collect();
                    Ok(want.iter().all(|w| up.contains(w)).then_some(()))
                },
            )?;
        }
        Ok(())
    }

    /// Waits until every node in `nodes` reports the same log heads (size and root of every log)
    /// with nothing parked, and returns them.
    pub fn wait_converged(&self, nodes: &[usize], timeout: Duration) -> Result<Vec<LogHeadInfo>> {
        wait_for(
            &format!("nodes {nodes:?} to hold identical logs"),
            timeout,
            || {
                let mut first: Option<Vec<LogHeadInfo>> = None;
                for &i in nodes {
                    let s = self.status(i)?;
                    if s.pending_entries > 0 {
                        bail!("node {i} has {} entries parked", s.pending_entries);
                    }
                    match &first {
                        None => first = Some(s.logs),
                        Some(f) if heads_key(f) == heads_key(&s.logs) => {}
                        Some(f) => bail!(
                            "node {i} holds {:?}, node {} holds {:?}",
                            heads_key(&s.logs),
                            nodes[0],
                            heads_key(f)
                        ),
                    }
                }
                Ok(first)
            },
        )
    }

    /// Waits until node `i` reports `epoch` (or a later one) as its last sealed epoch.
    pub fn wait_sealed(&self, i: usize, epoch: u64, timeout: Duration) -> Result<()> {
        wait_for(&format!("node {i} to seal epoch {epoch}"), timeout, || {
            Ok(self
                .status(i)?
                .last_sealed_epoch
                .filter(|e| *e >= epoch)
                .map(|_| ()))
        })
    }

    /// The partner id of node `i` (from its key file).
    pub fn partner_id(&self, i: usize) -> PartnerId {
        let path = self.nodes[i].config.with_file_name("partner.key");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let key: coalition_client::KeyFile = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
        PartnerId::from_hex(&key.public)
            .unwrap_or_else(|e| panic!("key in {}: {e}", path.display()))
    }

    /// The genesis the cluster was created with.
    pub fn genesis(&self) -> Result<coalition_core::genesis::Genesis> {
        let text = std::fs::read_to_string(&self.genesis_path)?;
        Ok(serde_json::from_str(&text)?)
    }

    /// The last `lines` lines of every node's log.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut s = String::new();
        for n in &self.nodes {
            let text = std::fs::read_to_string(&n.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(lines).collect();
            s.push_str(&format!(
                "----- node {} log ({}) -----\n",
                n.index,
                n.log.display()
            ));
            for l in tail.iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tails(40));
        }
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Runs a scenario on `cluster`; if it fails, prints every node's log tail before returning the error
/// (the cluster's own drop prints them only on panics).
pub fn logged<T>(
    cluster: &mut Cluster,
    scenario: impl FnOnce(&mut Cluster) -> Result<T>,
) -> Result<T> {
    let r = scenario(cluster);
    if r.is_err() {
        eprintln!("{}", cluster.log_tails(60));
    }
    r
}

/// Sends a signal by name (`TERM`, `STOP`, `CONT`) to a process.
pub fn signal(pid: u32, sig: &str) -> Result<()> {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()?;
    if !st.success() {
        bail!("kill -{sig} {pid} failed");
    }
    Ok(())
}

/// Runs the `coalition` CLI with `args`.
pub fn run_cli(args: &[&str]) -> Result<Output> {
    Command::new(bin("coalition"))
        .args(args)
        .env_remove("COALITION_NODE")
        .env_remove("COALITION_TOKEN")
        .stdin(Stdio::null())
        .output()
        .context("running coalition")
}

/// Writes the `node.toml` at `config` to `out` (which may be `config` itself) with `key` set to
/// `value`.
pub fn edit_config(config: &Path, out: &Path, key: &str, value: toml::Value) -> Result<()> {
    let mut doc: toml::Table = toml::from_str(&std::fs::read_to_string(config)?)?;
    doc.insert(key.into(), value);
    std::fs::write(out, toml::to_string(&doc)?)?;
    Ok(())
}

/// Copies the directory `from` (files and subdirectories) to `to`, which must not exist.
pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Fails with the command, its stdout and its stderr unless it succeeded.
pub fn check_output(what: &str, out: &Output) -> Result<()> {
    if !out.status.success() {
        bail!(
            "`coalition {what}` failed with {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Requires `coalition {what}` to have succeeded (as [`check_output`]) and parses its stdout as JSON.
pub fn json_output(what: &str, out: &Output) -> Result<serde_json::Value> {
    check_output(what, out)?;
    serde_json::from_slice(&out.stdout).with_context(|| format!("parsing the JSON of `{what}`"))
}

/// The comparable part of log heads: (partner, size, root) of every log.
pub fn heads_key(logs: &[LogHeadInfo]) -> Vec<(PartnerId, u64, coalition_core::hash::Hash)> {
    logs.iter().map(|l| (l.partner, l.size, l.root)).collect()
}

/// Whether an API error carries this code.
pub fn is_code(e: &ClientError, code: &str) -> bool {
    e.code() == Some(code)
}

/// A raw HTTP/1.1 exchange, so the test controls every byte sent (bad JSON, huge bodies, headers).
pub fn raw_http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String)> {
    let (status, _, body) = raw_http_with_head(addr, method, path, headers, body)?;
    Ok((status, body))
}

/// Like [`raw_http`], also returning the answer's status line and headers as sent.
pub fn raw_http_with_head(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String, String)> {
    let mut s =
        std::net::TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    use std::io::{Read, Write};
    s.write_all(head.as_bytes())?;
    // The server may answer (and stop reading) before the whole of a too-large body is sent.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw) {
        if raw.is_empty() {
            return Err(e.into());
        }
    }
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("no end of headers in the answer")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .context("no status")?
        .parse()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Ok((status, head.to_string(), body))
}

fn dechunk(mut s: &str) -> Result<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").context("bad chunk")?;
        let n = usize::from_str_radix(size.trim(), 16)?;
        if n == 0 {
            return Ok(out);
        }
        out.push_str(rest.get(..n).context("short chunk")?);
        s = rest.get(n + 2..).context("short chunk")?;
    }
}
