//! `coalition-node`: runs one partner's node in the foreground until SIGINT or SIGTERM.

use anyhow::Context;
use clap::Parser;
use std::io::IsTerminal;
use std::path::PathBuf;

/// Runs one partner node of a coalition points network.
#[derive(Parser, Debug)]
#[command(
    name = "coalition-node",
    version,
    about = "Runs one partner node of a coalition points network",
    long_about = "Runs one partner node in the foreground: replicates every partner's log over libp2p, \
                  votes on redemptions, seals epochs and serves the HTTP API that the POS calls.\n\n\
                  Example:\n  coalition network init --partners 4 --dir ./net\n  \
                  coalition-node --config ./net/partner-0/node.toml\n\n\
                  Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=coalition_node=debug) for more.\n\
                  Exit codes: 0 after a clean shutdown, 75 when its storage failed (a full disk: \
                  restart it once there is room), 1 if the node could not start or failed otherwise."
)]
struct Args {
    /// The node's config file (written by `coalition network init`).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Check the configuration, print it as JSON and exit without starting.
    #[arg(long)]
    dump_config: bool,
}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p=warn")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: in a log file they are noise to grep.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Err(e) = run(args) {
        eprintln!("coalition-node: {e:#}");
        let code = if e
            .downcast_ref::<coalition_node::service::StorageFailed>()
            .is_some()
        {
            coalition_node::service::EXIT_STORAGE_FAILED
        } else {
            1
        };
        std::process::exit(code);
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let config = coalition_node::config::Config::load(&args.config)
        .with_context(|| format!("loading {}", args.config.display()))?;
    if args.dump_config {
        println!(
            "{}",
            serde_json::to_string_pretty(&redacted(&config.file)?)?
        );
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(coalition_node::service::run(config))
}

/// The settings as JSON with every token replaced by its length: a dump goes into tickets and
/// chat, and a token in it would let anyone issue points.
fn redacted(file: &coalition_client::NodeConfig) -> anyhow::Result<serde_json::Value> {
    let mut v = serde_json::to_value(file)?;
    let hide = |t: &mut serde_json::Value| {
        if let Some(s) = t.as_str() {
            *t = serde_json::Value::String(format!("(hidden, {} characters)", s.chars().count()));
        }
    };
    if let Some(t) = v.get_mut("api_token") {
        hide(t);
    }
    if let Some(serde_json::Value::Array(ts)) = v.get_mut("auditor_tokens") {
        ts.iter_mut().for_each(hide);
    }
    Ok(v)
}
