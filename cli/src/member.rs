//! `coalition member ...`: the member's side. The wallet holds the key; the balance, the lots and
//! the next sequence number come from a node; orders are built and signed in [`crate::redeem`].
//!
//! The passphrase is asked only when the key is needed (signing), and only after everything that
//! could fail without it (reaching the node, finding the partner, enough points) has succeeded.

use crate::args::{MemberCommand, MemberSelector};
use crate::context::{Context, UsageError};
use crate::output::{self, partner_name, Align, Table};
use crate::redeem;
use crate::wallet::{self, WalletError};
use anyhow::{Context as _, Result};
use coalition_client::Client;
use coalition_core::record::MemberId;
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// Runs a `member` command.
pub(crate) fn run(ctx: &Context, cmd: MemberCommand) -> Result<()> {
    match cmd {
        MemberCommand::New { wallet } => new(ctx, &wallet),
        MemberCommand::Id { wallet } => id(ctx, &wallet),
        MemberCommand::Show { wallet } => show(ctx, &wallet),
        MemberCommand::Balance { who } => balance(ctx, &who),
        MemberCommand::History { who } => history(ctx, &who),
        MemberCommand::SignRedeem {
            wallet,
            points,
            at,
            seq,
        } => redeem::sign_redeem(ctx, &wallet, points, &at, seq),
        MemberCommand::Redeem {
            wallet,
            points,
            wait,
        } => redeem::redeem(ctx, &wallet, points, Duration::from_secs(wait)),
    }
}

#[derive(Serialize)]
struct MemberReport<'a> {
    member: MemberId,
    wallet: &'a Path,
}

fn new(ctx: &Context, path: &Path) -> Result<()> {
    // Refuse before asking for a passphrase twice.
    if path.exists() {
        return Err(WalletError::Exists {
            path: path.to_path_buf(),
        }
        .into());
    }
    let pass = wallet::new_passphrase_for(path)?;
    let member = wallet::create(path, &pass)?;
    drop(pass);
    if ctx.out.json {
        return ctx.out.json(&MemberReport {
            member,
            wallet: path,
        });
    }
    ctx.out.line(member.to_hex())?;
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprintln!(
            "Wallet written to {}. Keep a copy of it and its passphrase: without both, its points cannot be spent.",
            path.display()
        );
    }
    Ok(())
}

fn id(ctx: &Context, path: &Path) -> Result<()> {
    let member = wallet::member_id(path)?;
    if ctx.out.json {
        return ctx.out.json(&MemberReport {
            member,
            wallet: path,
        });
    }
    ctx.out.line(member.to_hex())
}

fn show(ctx: &Context, path: &Path) -> Result<()> {
    let member = wallet::member_id(path)?;
    if ctx.out.json {
        return ctx.out.json(&MemberReport {
            member,
            wallet: path,
        });
    }
    ctx.out.raw(&qr(&member.to_hex())?)?;
    ctx.out.line(format!("member {}", member.to_hex()))
}

/// `text` as a QR code in Unicode half blocks, light modules drawn, so it reads as a normal code on
/// the dark background of most terminals.
fn qr(text: &str) -> Result<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot draw a QR code: {e}"))?;
    let mut s = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    s.push('\n');
    Ok(s)
}

/// The member asked about, and a client allowed to read its data: signed by the wallet's key for
/// `--wallet`, with the token (a partner's or an auditor's) for `--member`.
fn reader_for(ctx: &Context, who: &MemberSelector) -> Result<(MemberId, Client)> {
    match (&who.wallet, who.member) {
        (Some(path), _) => {
            let member = wallet::member_id(path)?;
            let (client, _) = ctx.member_client(path)?;
            Ok((member, client))
        }
        (None, Some(id)) => Ok((id, ctx.reader_client())),
        (None, None) => Err(UsageError("give --wallet FILE or --member ID".into()).into()),
    }
}

fn balance(ctx: &Context, who: &MemberSelector) -> Result<()> {
    let (member, client) = reader_for(ctx, who)?;
    let b = client
        .balance(&member)
        .with_context(|| format!("cannot get the balance of member {}", member.short()))?;
    if ctx.out.json {
        return ctx.out.json(&b);
    }
    let genesis = ctx.genesis(&client);
    ctx.out.fields(&[
        ("member", b.member.to_hex()),
        ("available", format!("{} points", b.available)),
        ("next seq", b.next_seq.to_string()),
        ("as of", output::time(b.as_of)),
    ])?;
    ctx.out.line("")?;
    if b.lots.is_empty() {
        return ctx.out.line("No unspent lots.");
    }
    let mut t = Table::new(&[
        ("LOT", Align::Left),
        ("ISSUER", Align::Left),
        ("REMAINING", Align::Right),
        ("OF", Align::Right),
        ("EXPIRES", Align::Left),
    ]);
    let mut lots = b.lots;
    lots.sort_by_key(|l| (l.expires_at, l.lot));
    for l in &lots {
        let expires = if l.expired {
            format!("{} (expired)", output::time(l.expires_at))
        } else {
            output::time(l.expires_at)
        };
        t.row(vec![
            l.lot.short(),
            partner_name(genesis.as_ref(), &l.issuer),
            l.remaining.to_string(),
            l.points.to_string(),
            expires,
        ]);
    }
    ctx.out.table(&t)
}

fn history(ctx: &Context, who: &MemberSelector) -> Result<()> {
    let (member, client) = reader_for(ctx, who)?;
    let h = client
        .history(&member)
        .with_context(|| format!("cannot get the history of member {}", member.short()))?;
    if ctx.out.json {
        return ctx.out.json(&h);
    }
    if h.items.is_empty() {
        return ctx
            .out
            .line(format!("No history for member {}.", member.to_hex()));
    }
    let genesis = ctx.genesis(&client);
    let mut t = Table::new(&[
        ("TIME", Align::Left),
        ("KIND", Align::Left),
        ("POINTS", Align::Right),
        ("PARTNER", Align::Left),
        ("RECORD", Align::Left),
    ]);
    for i in &h.items {
        let sign = if i.kind.is_credit() { "+" } else { "-" };
        t.row(vec![
            output::time(i.time),
            i.kind.to_string(),
            format!("{sign}{}", i.points),
            partner_name(genesis.as_ref(), &i.partner),
            i.record.short(),
        ]);
    }
    ctx.out.table(&t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_renders() {
        let text = qr(&"ab".repeat(32)).expect("qr of a member id");
        assert!(text.lines().count() > 10);
    }
}
