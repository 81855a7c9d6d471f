//! `coalition status`: one node's view of the coalition.

use crate::context::Context;
use crate::output::{self, Align, Table};
use anyhow::{Context as _, Result};
use coalition_client::types::Status;
use coalition_core::record::PartnerId;

/// Runs `status`: the node's status as JSON, or as a summary followed by the tables of peers, logs
/// and equivocations.
pub(crate) fn run(ctx: &Context) -> Result<()> {
    let client = ctx.client();
    let s = client.status().context("cannot get the node's status")?;
    if ctx.out.json {
        return ctx.out.json(&s);
    }
    print_summary(ctx, &s)?;
    ctx.out.line("")?;
    print_peers(ctx, &s)?;
    ctx.out.line("")?;
    print_logs(ctx, &s)?;
    print_equivocations(ctx, &s)
}

/// The `label  value` lines: which node, which coalition, epochs, what is awaited or pending.
fn print_summary(ctx: &Context, s: &Status) -> Result<()> {
    let sealed = match s.last_sealed_epoch {
        Some(e) => format!("{e}"),
        None => "none yet".into(),
    };
    let awaiting = if s.awaiting.is_empty() {
        "nobody".into()
    } else {
        s.awaiting.join(", ")
    };
    let equivocations = if s.equivocations.is_empty() {
        "none".to_string()
    } else {
        format!("{} (see below)", s.equivocations.len())
    };
    ctx.out.fields(&[
        (
            "node",
            format!(
                "{} ({}, {})",
                ctx.node,
                s.partner.name,
                s.partner.partner.to_hex()
            ),
        ),
        (
            "coalition",
            format!("{} (genesis {})", s.coalition, s.genesis_hash.short()),
        ),
        (
            "current epoch",
            format!(
                "{} ({} to {}; closes in {} s)",
                s.current_epoch,
                output::time(s.epoch_start),
                output::time(s.epoch_end),
                s.epoch_end.saturating_sub(s.now)
            ),
        ),
        (
            "quorum",
            format!("{} of {} partners", s.quorum, s.logs.len()),
        ),
        ("last sealed", sealed),
        ("awaiting", awaiting),
        (
            "pending",
            format!("{} entries waiting for dependencies", s.pending_entries),
        ),
        ("equivocations", equivocations),
    ])
}

/// The peers and whether each is connected, or "No peers.".
fn print_peers(ctx: &Context, s: &Status) -> Result<()> {
    let mut peers = Table::new(&[
        ("PEER", Align::Left),
        ("ID", Align::Left),
        ("CONNECTED", Align::Left),
    ]);
    for p in &s.peers {
        peers.row(vec![
            p.name.clone(),
            p.partner.short(),
            if p.connected { "yes" } else { "no" }.into(),
        ]);
    }
    if peers.is_empty() {
        ctx.out.line("No peers.")
    } else {
        ctx.out.table(&peers)
    }
}

/// Every partner's log head as the node holds it.
fn print_logs(ctx: &Context, s: &Status) -> Result<()> {
    let mut logs = Table::new(&[
        ("LOG", Align::Left),
        ("ID", Align::Left),
        ("SIZE", Align::Right),
        ("OPEN EPOCH", Align::Right),
        ("ROOT", Align::Left),
    ]);
    for l in &s.logs {
        logs.row(vec![
            l.name.clone(),
            l.partner.short(),
            l.size.to_string(),
            l.open_epoch.to_string(),
            l.root.short(),
        ]);
    }
    ctx.out.table(&logs)
}

/// The fraud proofs the node holds, after a blank line; nothing if there are none.
fn print_equivocations(ctx: &Context, s: &Status) -> Result<()> {
    if s.equivocations.is_empty() {
        return Ok(());
    }
    ctx.out.line("")?;
    let mut eq = Table::new(&[
        ("EQUIVOCATING PARTNER", Align::Left),
        ("SEQ", Align::Right),
        ("ENTRIES", Align::Left),
    ]);
    for e in &s.equivocations {
        eq.row(vec![
            name_of(s, &e.partner),
            e.seq.to_string(),
            format!("{} / {}", e.entries[0].short(), e.entries[1].short()),
        ]);
    }
    ctx.out.table(&eq)
}

/// A partner's name as the status gives it (from the logs, else the peers), else its short id.
fn name_of(s: &Status, id: &PartnerId) -> String {
    s.logs
        .iter()
        .find(|l| &l.partner == id)
        .map(|l| l.name.clone())
        .or_else(|| {
            s.peers
                .iter()
                .find(|p| &p.partner == id)
                .map(|p| p.name.clone())
        })
        .unwrap_or_else(|| id.short())
}
