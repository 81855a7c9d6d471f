//! `coalition network init`: everything a local coalition needs to start, written in one go.
//!
//! Layout of DIR:
//!
//! ```text
//! DIR/genesis.json              the coalition (partners, epoch length, point value, ...)
//! DIR/partner-<i>/node.toml     node config of partner i (mode 0600: holds the API token)
//! DIR/partner-<i>/partner.key   partner i's secret key (mode 0600)
//! DIR/partner-<i>/data/         created by coalition-node on first start
//! ```

use crate::args::NetworkInit;
use crate::context::{Context, UsageError};
use crate::files::{self, Mode};
use crate::output::{Align, Table};
use anyhow::{Context as _, Result};
use coalition_client::{KeyFile, NodeConfig};
use coalition_core::clock::{Clock, SystemClock};
use coalition_core::crypto::Keypair;
use coalition_core::genesis::{Genesis, GenesisPartner, PointValue};
use coalition_core::record::PartnerId;
use rand::RngCore;
use serde::Serialize;
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, Zeroizing};

/// Names of the first partners of a local coalition; later ones are "Partner 5", "Partner 6", ...
pub(crate) const DEFAULT_NAMES: [&str; 4] = [
    "Café Lumière",
    "Bookshop Folio",
    "Cinema Aurora",
    "Fuel Station Nord",
];

/// One partner as reported after `init`.
#[derive(Debug, Serialize)]
struct PartnerReport {
    index: usize,
    name: String,
    id: PartnerId,
    api_url: String,
    api_token: String,
    p2p_listen: String,
    config: PathBuf,
    key_file: PathBuf,
}

/// What `init` reports.
#[derive(Debug, Serialize)]
struct InitReport {
    dir: PathBuf,
    genesis: PathBuf,
    genesis_hash: String,
    coalition: String,
    genesis_time: u64,
    epoch_secs: u64,
    quorum: usize,
    partners: Vec<PartnerReport>,
}

/// The name of partner `i` when none is given.
pub(crate) fn default_name(i: usize) -> String {
    match DEFAULT_NAMES.get(i) {
        Some(n) => (*n).to_string(),
        None => format!("Partner {}", i.saturating_add(1)),
    }
}

/// Ports of partner `i`: (p2p, API).
fn ports(base: u16, i: usize) -> Option<(u16, u16)> {
    let p2p = usize::from(base).checked_add(i.checked_mul(2)?)?;
    let api = p2p.checked_add(1)?;
    Some((u16::try_from(p2p).ok()?, u16::try_from(api).ok()?))
}

/// Runs `network init`: checks what was asked, plans every file and refuses to replace any, then
/// writes the genesis and each partner's key and node config, and reports them.
pub(crate) fn init(ctx: &Context, a: &NetworkInit) -> Result<()> {
    let n = usize::from(a.partners);
    let names = partner_names(a.names.as_deref(), n)?;
    check_ports(a.base_port, n)?;
    let (dir, genesis_path) = prepare_dir(&a.dir)?;
    let keys: Vec<Keypair> = (0..n).map(|_| Keypair::generate()).collect();
    let genesis = new_genesis(a, &keys, &names)?;
    // Everything to write, checked before anything is written so a refusal leaves DIR untouched.
    let plan = plan_partners(&dir, n, a.base_port)?;
    write_genesis(&genesis_path, &genesis)?;
    let mut partners = Vec::with_capacity(n);
    for ((key, name), p) in keys.iter().zip(&names).zip(&plan) {
        partners.push(write_partner(key, name, p, &plan, &genesis, &genesis_path)?);
    }
    let report = InitReport {
        dir,
        genesis: genesis_path,
        genesis_hash: genesis.hash().to_hex(),
        coalition: genesis.coalition.clone(),
        genesis_time: genesis.genesis_time,
        epoch_secs: genesis.epoch_secs,
        quorum: genesis.quorum(),
        partners,
    };
    print_report(ctx, &report)
}

/// The partners' names: `--names` (exactly one per partner, none empty), else the defaults.
fn partner_names(names: Option<&[String]>, n: usize) -> Result<Vec<String>> {
    let Some(names) = names else {
        return Ok((0..n).map(default_name).collect());
    };
    if names.len() != n {
        return Err(UsageError(format!(
            "--names lists {} names for {n} partners; give exactly one per partner",
            names.len()
        ))
        .into());
    }
    let names: Vec<String> = names.iter().map(|s| s.trim().to_string()).collect();
    if names.iter().any(String::is_empty) {
        return Err(UsageError("--names contains an empty name".into()).into());
    }
    Ok(names)
}

/// Refuses a `--base-port` that leaves no room for `n` partners' two ports each.
fn check_ports(base_port: u16, n: usize) -> Result<()> {
    if ports(base_port, n.saturating_sub(1)).is_none() {
        return Err(UsageError(format!(
            "--base-port {base_port} leaves no room for {n} partners (ports up to {} are needed)",
            u64::from(base_port) + 2 * n as u64 - 1
        ))
        .into());
    }
    Ok(())
}

/// Creates DIR if needed and returns it resolved, with where the genesis goes; refuses a DIR that
/// already holds a coalition.
fn prepare_dir(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    let dir = std::fs::canonicalize(dir)
        .with_context(|| format!("cannot resolve directory {}", dir.display()))?;
    let genesis_path = dir.join("genesis.json");
    if genesis_path.exists() {
        anyhow::bail!(
            "{} already exists; refusing to overwrite an existing coalition (choose another --dir)",
            genesis_path.display()
        );
    }
    Ok((dir, genesis_path))
}

/// The genesis of the new coalition, starting at the current epoch boundary; a usage error if the
/// options make it invalid.
fn new_genesis(a: &NetworkInit, keys: &[Keypair], names: &[String]) -> Result<Genesis> {
    let now = SystemClock.now();
    let genesis = Genesis {
        coalition: a.coalition.clone(),
        genesis_time: now - now % a.epoch_secs,
        epoch_secs: a.epoch_secs,
        partners: keys
            .iter()
            .zip(names)
            .enumerate()
            .map(|(i, (k, name))| GenesisPartner {
                name: name.clone(),
                id: PartnerId(k.public()),
                settlement_account: format!("local-partner-{i}"),
            })
            .collect(),
        fault_tolerance: None,
        point_value: PointValue {
            minor_units: a.point_value_cents,
            per_points: 1,
        },
        currency: a.currency.clone(),
        fee_bps: a.fee_bps,
        max_clock_skew_secs: a.clock_skew_secs,
    };
    genesis
        .validate()
        .map_err(|e| UsageError(format!("the coalition would be invalid: {e}")))?;
    Ok(genesis)
}

/// Where each of the `n` partners goes; refuses if any of their files already exists.
fn plan_partners(dir: &Path, n: usize, base_port: u16) -> Result<Vec<PartnerPlan>> {
    let plan: Vec<PartnerPlan> = (0..n)
        .map(|i| PartnerPlan::new(dir, i, base_port))
        .collect::<Option<_>>()
        .ok_or_else(|| UsageError("port out of range".into()))?;
    for p in &plan {
        for f in [&p.config, &p.key_file] {
            if f.exists() {
                anyhow::bail!("{} already exists; refusing to overwrite it", f.display());
            }
        }
    }
    Ok(plan)
}

/// Writes `genesis.json`.
fn write_genesis(path: &Path, genesis: &Genesis) -> Result<()> {
    let mut genesis_json = serde_json::to_vec_pretty(genesis).context("encoding the genesis")?;
    genesis_json.push(b'\n');
    files::write_new(path, &genesis_json, Mode::Public)
}

/// Writes partner `p`'s directory, key file and node config (peered with every other partner of
/// `plan`), and reports them.
fn write_partner(
    key: &Keypair,
    name: &str,
    p: &PartnerPlan,
    plan: &[PartnerPlan],
    genesis: &Genesis,
    genesis_path: &Path,
) -> Result<PartnerReport> {
    std::fs::create_dir_all(&p.dir)
        .with_context(|| format!("cannot create directory {}", p.dir.display()))?;
    write_key_file(&p.key_file, key, name)?;
    let api_token = new_api_token()?;
    let peers = plan
        .iter()
        .filter(|q| q.index != p.index)
        .map(|q| q.p2p_listen.clone())
        .collect();
    let config = NodeConfig {
        genesis: genesis_path.to_path_buf(),
        key_file: p.key_file.clone(),
        data_dir: p.dir.join("data"),
        p2p_listen: p.p2p_listen.clone(),
        peers,
        api_listen: p.api_listen.clone(),
        api_token: api_token.clone(),
        auditor_tokens: Vec::new(),
        tls_cert: None,
        tls_key: None,
        anchor_file: None,
        anti_entropy_secs: 2,
        vote_timeout_ms: 5_000,
    };
    write_node_config(p, name, &genesis.coalition, &config)?;
    Ok(PartnerReport {
        index: p.index,
        name: name.to_string(),
        id: PartnerId(key.public()),
        api_url: format!("http://{}", p.api_listen),
        api_token,
        p2p_listen: p.p2p_listen.clone(),
        config: p.config.clone(),
        key_file: p.key_file.clone(),
    })
}

/// Writes a partner's key file (mode 0600), wiping the copies of the secret it makes.
fn write_key_file(path: &Path, key: &Keypair, name: &str) -> Result<()> {
    let secret = Zeroizing::new(key.secret_bytes());
    let mut key_file = KeyFile {
        name: name.to_string(),
        public: key.public().to_hex(),
        secret: hex::encode(&secret[..]),
    };
    let key_json =
        Zeroizing::new(serde_json::to_vec_pretty(&key_file).context("encoding a key file")?);
    // Wipe the hex copy of the secret now; the JSON bytes are wiped when they drop.
    key_file.secret.zeroize();
    files::write_new(path, &key_json, Mode::Private)
}

/// A fresh random API token, hex.
fn new_api_token() -> Result<String> {
    let mut token = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng
        .try_fill_bytes(&mut token[..])
        .context("no randomness for the API token")?;
    Ok(hex::encode(&token[..]))
}

/// Writes partner `p`'s `node.toml` (mode 0600: it holds the API token), with a header saying how to
/// start it.
fn write_node_config(
    p: &PartnerPlan,
    name: &str,
    coalition: &str,
    config: &NodeConfig,
) -> Result<()> {
    let toml_text = toml::to_string_pretty(config).context("encoding a node config")?;
    let text = format!(
        "# Node of partner {} ({name}) in coalition {coalition:?}.\n# Start it with: coalition-node --config {}\n\n{toml_text}",
        p.index,
        p.config.display()
    );
    files::write_new(&p.config, text.as_bytes(), Mode::Private)
}

/// Prints what `init` made: the JSON report, or a summary line and a table of partners.
fn print_report(ctx: &Context, report: &InitReport) -> Result<()> {
    if ctx.out.json {
        return ctx.out.json(report);
    }
    let n = report.partners.len();
    ctx.out.line(format!(
        "Created coalition {:?} in {}: {n} partner{}, quorum {}, epochs of {} s.",
        report.coalition,
        report.dir.display(),
        if n == 1 { "" } else { "s" },
        report.quorum,
        report.epoch_secs
    ))?;
    let mut t = Table::new(&[
        ("#", Align::Right),
        ("NAME", Align::Left),
        ("ID", Align::Left),
        ("API", Align::Left),
    ]);
    for p in &report.partners {
        t.row(vec![
            p.index.to_string(),
            p.name.clone(),
            p.id.to_hex(),
            p.api_url.clone(),
        ]);
    }
    ctx.out.line("")?;
    ctx.out.table(&t)?;
    ctx.out.line("")?;
    ctx.out.line(format!(
        "Start each node with `coalition-node --config {}`; its API token is in that file.",
        report.dir.join("partner-<i>").join("node.toml").display()
    ))
}

/// Where partner `index` goes.
struct PartnerPlan {
    index: usize,
    dir: PathBuf,
    config: PathBuf,
    key_file: PathBuf,
    p2p_listen: String,
    api_listen: String,
}

impl PartnerPlan {
    fn new(root: &Path, index: usize, base_port: u16) -> Option<PartnerPlan> {
        let (p2p, api) = ports(base_port, index)?;
        let dir = root.join(format!("partner-{index}"));
        Some(PartnerPlan {
            index,
            config: dir.join("node.toml"),
            key_file: dir.join("partner.key"),
            dir,
            p2p_listen: format!("/ip4/127.0.0.1/tcp/{p2p}"),
            api_listen: format!("127.0.0.1:{api}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ports() {
        assert_eq!(default_name(0), "Café Lumière");
        assert_eq!(default_name(3), "Fuel Station Nord");
        assert_eq!(default_name(4), "Partner 5");
        assert_eq!(ports(7100, 0), Some((7100, 7101)));
        assert_eq!(ports(7100, 3), Some((7106, 7107)));
        assert_eq!(ports(65534, 0), Some((65534, 65535)));
        assert_eq!(ports(65534, 1), None);
    }
}
