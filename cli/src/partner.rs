//! `coalition partner ...`: what a partner's till or back office does at its own node. Issuing
//! and backups need the node's API token (`--token` or `COALITION_TOKEN`); submitting a member's
//! order does not, since the member's signature is its authority.

use crate::args::{OrderToken, PartnerCommand};
use crate::context::Context;
use crate::output::{self, partner_name};
use crate::redeem;
use anyhow::{Context as _, Result};
use coalition_client::types::IssueRequest;
use coalition_core::record::{MemberId, Points};
use std::path::Path;
use std::time::Duration;

/// Runs a `partner` command.
pub(crate) fn run(ctx: &Context, cmd: PartnerCommand) -> Result<()> {
    match cmd {
        PartnerCommand::Issue {
            member,
            points,
            reference,
            expires_in,
        } => issue(ctx, member, points, reference, expires_in),
        PartnerCommand::SubmitRedeem { order } => submit_redeem(ctx, &order),
        PartnerCommand::Backup { dir } => backup(ctx, &dir),
    }
}

fn backup(ctx: &Context, dir: &Path) -> Result<()> {
    let client = ctx.partner_client()?;
    let dir = std::path::absolute(dir)
        .with_context(|| format!("cannot make {} absolute", dir.display()))?;
    let shown = dir.display().to_string();
    let r = client.backup(&shown).context("cannot back the node up")?;
    if ctx.out.json {
        return ctx.out.json(&r);
    }
    ctx.out.fields(&[
        ("backup", r.dir),
        ("anchor file", r.anchor_file),
        (
            "restore",
            "stop the node, put this directory in place of its data_dir, start it with its partners up"
                .into(),
        ),
    ])
}

fn issue(
    ctx: &Context,
    member: MemberId,
    points: Points,
    reference: Option<String>,
    expires_in: Option<Duration>,
) -> Result<()> {
    let client = ctx.partner_client()?;
    let req = IssueRequest {
        member,
        points,
        reference,
        expires_in_secs: expires_in.map(|d| d.as_secs()),
    };
    let r = client
        .issue(&req)
        .with_context(|| format!("cannot issue {points} points to member {}", member.short()))?;
    if ctx.out.json {
        return ctx.out.json(&r);
    }
    let genesis = ctx.genesis(&client);
    let issuer = partner_name(genesis.as_ref(), &r.entry.partner);
    let (done, member_line) = match (r.replay, r.new_member) {
        (true, _) => (
            "already issued",
            format!(
                "{}: this receipt reference was issued before; nothing new was credited",
                member.to_hex()
            ),
        ),
        (false, true) => (
            "issued",
            format!(
                "{} (new member: the node had no record of this id; check it against the card)",
                member.to_hex()
            ),
        ),
        (false, false) => ("issued", member.to_hex()),
    };
    ctx.out.fields(&[
        (done, format!("{} points by {issuer}", r.points)),
        ("member", member_line),
        ("lot", r.lot.to_hex()),
        ("expires", output::time(r.expires_at)),
        (
            "appended",
            format!(
                "{issuer}'s log, position {} (entry {})",
                r.entry.seq,
                r.entry.entry_id.short()
            ),
        ),
    ])
}

fn submit_redeem(ctx: &Context, token: &OrderToken) -> Result<()> {
    let client = ctx.client();
    let o = &token.order.order;
    let r = client.redeem(&token.hex).with_context(|| {
        format!(
            "redemption of order {} ({} points of member {}) failed",
            o.id().short(),
            o.points,
            o.member.short()
        )
    })?;
    redeem::print_receipt(ctx, &client, &r)
}
