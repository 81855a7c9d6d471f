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
use crate::output::{self, Align, Table};
use anyhow::{Context as _, Result};
use coalition_client::{KeyFile, NodeConfig};
use coalition_core::crypto::Keypair;
use coalition_core::genesis::{Genesis, GenesisPartner, PointValue};
use coalition_core::record::PartnerId;
use rand::RngCore;
use serde::Serialize;
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, Zeroizing};

/// Names of the first partners of a local coalition; later ones are "Partner 5", "Partner 6", ...
pub const DEFAULT_NAMES: [&str; 4] = [
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
pub fn default_name(i: usize) -> String {
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

/// Runs `network init`.
pub fn init(ctx: &Context, a: &NetworkInit) -> Result<()> {
    let n = usize::from(a.partners);
    let names: Vec<String> = match &a.names {
        Some(names) => {
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
            names
        }
        None => (0..n).map(default_name).collect(),
    };
    if ports(a.base_port, n.saturating_sub(1)).is_none() {
        return Err(UsageError(format!(
            "--base-port {} leaves no room for {n} partners (ports up to {} are needed)",
            a.base_port,
            u64::from(a.base_port) + 2 * n as u64 - 1
        ))
        .into());
    }

    std::fs::create_dir_all(&a.dir)
        .with_context(|| format!("cannot create directory {}", a.dir.display()))?;
    let dir = std::fs::canonicalize(&a.dir)
        .with_context(|| format!("cannot resolve directory {}", a.dir.display()))?;
    let genesis_path = dir.join("genesis.json");
    if genesis_path.exists() {
        anyhow::bail!(
            "{} already exists; refusing to overwrite an existing coalition (choose another --dir)",
            genesis_path.display()
        );
    }

    let keys: Vec<Keypair> = (0..n).map(|_| Keypair::generate()).collect();
    let now = output::now();
    let genesis = Genesis {
        coalition: a.coalition.clone(),
        genesis_time: now - now % a.epoch_secs,
        epoch_secs: a.epoch_secs,
        partners: keys
            .iter()
            .zip(&names)
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

    // Everything to write, checked before anything is written so a refusal leaves DIR untouched.
    let plan: Vec<PartnerPlan> = (0..n)
        .map(|i| PartnerPlan::new(&dir, i, a.base_port))
        .collect::<Option<_>>()
        .ok_or_else(|| UsageError("port out of range".into()))?;
    for p in &plan {
        for f in [&p.config, &p.key_file] {
            if f.exists() {
                anyhow::bail!("{} already exists; refusing to overwrite it", f.display());
            }
        }
    }

    let mut genesis_json = serde_json::to_vec_pretty(&genesis).context("encoding the genesis")?;
    genesis_json.push(b'\n');
    files::write_new(&genesis_path, &genesis_json, Mode::Public)?;

    let mut reports = Vec::with_capacity(n);
    for (i, ((key, name), p)) in keys.iter().zip(&names).zip(&plan).enumerate() {
        std::fs::create_dir_all(&p.dir)
            .with_context(|| format!("cannot create directory {}", p.dir.display()))?;
        let secret = Zeroizing::new(key.secret_bytes());
        let mut key_file = KeyFile {
            name: name.clone(),
            public: key.public().to_hex(),
            secret: hex::encode(&secret[..]),
        };
        let key_json =
            Zeroizing::new(serde_json::to_vec_pretty(&key_file).context("encoding a key file")?);
        // Wipe the hex copy of the secret now; the JSON bytes are wiped when they drop.
        key_file.secret.zeroize();
        files::write_new(&p.key_file, &key_json, Mode::Private)?;

        let mut token = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng
            .try_fill_bytes(&mut token[..])
            .context("no randomness for the API token")?;
        let api_token = hex::encode(&token[..]);
        let peers = plan
            .iter()
            .filter(|q| q.index != i)
            .map(|q| q.p2p_listen.clone())
            .collect();
        let config = NodeConfig {
            genesis: genesis_path.clone(),
            key_file: p.key_file.clone(),
            data_dir: p.dir.join("data"),
            p2p_listen: p.p2p_listen.clone(),
            peers,
            api_listen: p.api_listen.clone(),
            api_token: api_token.clone(),
            anchor_file: None,
            anti_entropy_secs: 2,
            vote_timeout_ms: 5_000,
        };
        let toml_text = toml::to_string_pretty(&config).context("encoding a node config")?;
        let text = format!(
            "# Node of partner {i} ({name}) in coalition {:?}.\n# Start it with: coalition-node --config {}\n\n{toml_text}",
            genesis.coalition,
            p.config.display()
        );
        files::write_new(&p.config, text.as_bytes(), Mode::Private)?;

        reports.push(PartnerReport {
            index: i,
            name: name.clone(),
            id: PartnerId(key.public()),
            api_url: format!("http://{}", p.api_listen),
            api_token,
            p2p_listen: p.p2p_listen.clone(),
            config: p.config.clone(),
            key_file: p.key_file.clone(),
        });
    }

    let report = InitReport {
        dir: dir.clone(),
        genesis: genesis_path,
        genesis_hash: genesis.hash().to_hex(),
        coalition: genesis.coalition.clone(),
        genesis_time: genesis.genesis_time,
        epoch_secs: genesis.epoch_secs,
        quorum: genesis.quorum(),
        partners: reports,
    };
    if ctx.out.json {
        return ctx.out.json(&report);
    }
    ctx.out.line(format!(
        "Created coalition {:?} in {}: {n} partner{}, quorum {}, epochs of {} s.",
        report.coalition,
        dir.display(),
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
        dir.join("partner-<i>").join("node.toml").display()
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
