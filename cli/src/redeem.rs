//! `coalition member sign-redeem` and `member redeem`: an order is built from the balance a node
//! reports, signed with the wallet's key, and (for `redeem`) submitted and resubmitted until it is
//! certified; the receipt printed for it is shared with `partner submit-redeem`. The balance and
//! history commands stay in [`crate::member`].

use crate::context::Context;
use crate::output::partner_name;
use crate::pending::{self, Earlier};
use anyhow::{Context as _, Result};
use coalition_client::types::RedeemResponse;
use coalition_client::Client;
use coalition_core::clock::{Clock, SystemClock};
use coalition_core::crypto::Keypair;
use coalition_core::genesis::Genesis;
use coalition_core::hash::Hash;
use coalition_core::record::{
    LotSpend, MemberId, PartnerId, Points, RedeemOrder, SignedOrder, Timestamp,
};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

pub(crate) use coalition_client::order::select_lots;

/// A signed order and its token.
#[derive(Debug, Serialize)]
struct SignedReport {
    order_id: Hash,
    token: String,
    member: MemberId,
    member_seq: u64,
    redeemer: PartnerId,
    redeemer_name: Option<String>,
    points: Points,
    lots: Vec<LotSpend>,
    time: Timestamp,
}

/// Builds and signs with `key` an order for `points` at `redeemer`, from the balance the node
/// reports (`client` signs that read with the same key).
fn sign_order(
    client: &Client,
    key: &Keypair,
    points: Points,
    redeemer: PartnerId,
    seq: Option<u64>,
) -> Result<SignedOrder> {
    let member = MemberId(key.public());
    let balance = client
        .balance(&member)
        .with_context(|| format!("cannot get the balance of member {}", member.short()))?;
    let now = SystemClock.now();
    let lots = select_lots(&balance.lots, points, now)
        .with_context(|| format!("cannot redeem for member {}", member.short()))?;
    let order = RedeemOrder {
        member,
        member_seq: seq.unwrap_or(balance.next_seq),
        redeemer,
        points,
        lots,
        time: now,
    };
    Ok(order.sign(key))
}

/// The partner named by `at`: an id (hex) or an exact name in the node's genesis.
fn resolve_partner(
    ctx: &Context,
    client: &Client,
    at: &str,
) -> Result<(PartnerId, Option<Genesis>)> {
    if let Ok(id) = PartnerId::from_hex(at) {
        let genesis = ctx.genesis(client);
        if let Some(g) = &genesis {
            if !g.is_partner(&id) {
                anyhow::bail!(
                    "{} is not a partner of coalition {:?}",
                    id.to_hex(),
                    g.coalition
                );
            }
        }
        return Ok((id, genesis));
    }
    let genesis: Genesis = client
        .get("/v1/genesis")
        .with_context(|| format!("cannot look up partner {at:?} by name (give its id instead)"))?;
    match genesis.partners.iter().find(|p| p.name == at) {
        Some(p) => Ok((p.id, Some(genesis.clone()))),
        None => {
            let known: Vec<&str> = genesis.partners.iter().map(|p| p.name.as_str()).collect();
            anyhow::bail!(
                "no partner is named {at:?}; the partners are: {}",
                known.join(", ")
            )
        }
    }
}

pub(crate) fn sign_redeem(
    ctx: &Context,
    path: &Path,
    points: Points,
    at: &str,
    seq: Option<u64>,
) -> Result<()> {
    let (client, key) = ctx.member_client(path)?;
    let (redeemer, genesis) = resolve_partner(ctx, &client, at)?;
    let signed = sign_order(&client, &key, points, redeemer, seq)?;
    let token = coalition_client::order::order_token(&signed);
    let o = &signed.order;
    let redeemer_name = genesis
        .as_ref()
        .and_then(|g| g.partner(&redeemer))
        .map(|p| p.name.clone());
    if ctx.out.json {
        return ctx.out.json(&SignedReport {
            order_id: o.id(),
            token,
            member: o.member,
            member_seq: o.member_seq,
            redeemer,
            redeemer_name,
            points: o.points,
            lots: o.lots.clone(),
            time: o.time,
        });
    }
    // The token alone on stdout, so `TOKEN=$(coalition member sign-redeem ...)` works; what it is,
    // for the person, on stderr.
    eprintln!(
        "Signed order {} for {} points at {} (sequence {}, {} lot{}). Nothing was submitted.",
        o.id().short(),
        o.points,
        redeemer_name.unwrap_or_else(|| redeemer.short()),
        o.member_seq,
        o.lots.len(),
        if o.lots.len() == 1 { "" } else { "s" }
    );
    ctx.out.line(token)
}

/// Redeems at the node's partner, safely retried: the order is kept next to the wallet until it is
/// certified (see [`crate::pending`]), resubmitted while no quorum answers, and resubmitted by the
/// next `member redeem` if this one gives up. A new order is signed only once the node reports the
/// pending one's sequence number as used.
pub(crate) fn redeem(ctx: &Context, path: &Path, points: Points, wait: Duration) -> Result<()> {
    let (client, key) = ctx.member_client(path)?;
    let status = client
        .status()
        .context("cannot ask the node which partner it is")?;
    let redeemer = status.partner.partner;
    let keep = pending::path_for(path);
    let signed = match pending::earlier_order(&client, path, &keep)? {
        Earlier::Used(order) => {
            // Its sequence number is used: certified since (by the node's own retries, say), or
            // taken by another order. If it is this same redemption, show its receipt rather than
            // redeem a second time.
            let same = order.order.points == points && order.order.redeemer == redeemer;
            if same {
                let token = coalition_client::order::order_token(&order);
                match client.redeem(&token) {
                    Ok(receipt) => {
                        pending::remove(&keep)?;
                        eprintln!(
                            "The earlier order {} (sequence {}) has been certified since; this is its receipt, nothing more was redeemed.",
                            order.order.id().short(),
                            order.order.member_seq
                        );
                        return print_receipt(ctx, &client, &receipt);
                    }
                    // Not knowing whether it was certified, signing again could redeem twice.
                    Err(e) if pending::not_yet(&e) => {
                        return Err(anyhow::anyhow!(e).context(format!(
                            "cannot tell whether the earlier order {} (sequence {}) was certified; \
                             nothing was redeemed: run the command again",
                            order.order.id().short(),
                            order.order.member_seq
                        )));
                    }
                    // Refused here for good: another order took its number.
                    Err(_) => {}
                }
            } else {
                eprintln!(
                    "The earlier order {} (sequence {}) is no longer pending; redeeming {points} points anew.",
                    order.order.id().short(),
                    order.order.member_seq
                );
            }
            pending::remove(&keep)?;
            let order = sign_order(&client, &key, points, redeemer, None)?;
            pending::write(&keep, &order)?;
            order
        }
        Earlier::Pending(order) => {
            let o = &order.order;
            if o.points != points || o.redeemer != redeemer {
                let genesis = ctx.genesis(&client);
                anyhow::bail!(
                    "an earlier redemption of {} points at {} (sequence {}) is not certified yet; \
                     finish it first with `coalition --node <its node> member redeem --points {}`: \
                     another order for the same sequence number could lock it (the order is kept in {})",
                    o.points,
                    partner_name(genesis.as_ref(), &o.redeemer),
                    o.member_seq,
                    o.points,
                    keep.display()
                );
            }
            eprintln!(
                "Resubmitting the earlier order {} (sequence {}), not yet certified.",
                o.id().short(),
                o.member_seq
            );
            order
        }
        Earlier::None => {
            let order = sign_order(&client, &key, points, redeemer, None)?;
            pending::write(&keep, &order)?;
            order
        }
    };
    let mut result = pending::submit_until_certified(&client, &signed, wait);
    // The order can no longer be certified (its epoch and the next have closed): no vote for it
    // counts any more, so a fresh order is safe; voters take it once every partner has closed
    // that epoch (docs/protocol.md, "Releasing a sequence number").
    if matches!(&result, Err(e) if pending::too_late(e)) {
        eprintln!(
            "The order {} (sequence {}) can no longer be certified; signing a new one.",
            signed.order.id().short(),
            signed.order.member_seq
        );
        let fresh = sign_order(&client, &key, points, redeemer, None)?;
        pending::write(&keep, &fresh)?;
        // Voters that have not yet seen the old window sealed still answer `conflict`; the
        // fresh order is safe to send again meanwhile.
        let deadline = std::time::Instant::now() + wait;
        loop {
            result = pending::submit_until_certified(&client, &fresh, wait);
            let conflict = matches!(&result, Err(coalition_client::ClientError::Api { code, .. }) if code == "conflict");
            if !conflict || std::time::Instant::now() + Duration::from_secs(1) > deadline {
                break;
            }
            eprintln!(
                "Partners have not all released sequence {} yet; submitting the new order again.",
                fresh.order.member_seq
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    match result {
        Ok(receipt) => {
            pending::remove(&keep)?;
            print_receipt(ctx, &client, &receipt)
        }
        Err(e) => {
            let kept = pending::not_yet(&e);
            // Refused for good (not enough points, a bad lot): no quorum can form, so a new order
            // may be signed next time.
            if !kept {
                pending::remove(&keep)?;
            }
            let e = anyhow::anyhow!(e).context(format!(
                "redemption of {points} points at {} failed",
                status.partner.name
            ));
            Err(if kept {
                e.context(format!(
                    "the order is kept in {}: run the same command again to resubmit it",
                    keep.display()
                ))
            } else {
                e
            })
        }
    }
}

/// Prints a redemption receipt (also used by `partner submit-redeem`).
pub(crate) fn print_receipt(ctx: &Context, client: &Client, r: &RedeemResponse) -> Result<()> {
    if ctx.out.json {
        return ctx.out.json(r);
    }
    let genesis = ctx.genesis(client);
    let g = genesis.as_ref();
    let order = &r.cert.order.order;
    let voters: Vec<String> = r
        .cert
        .votes
        .iter()
        .map(|v| partner_name(g, &v.partner))
        .collect();
    ctx.out.fields(&[
        ("redeemed", format!("{} points", r.points)),
        ("order", r.order_id.to_hex()),
        ("member", order.member.to_hex()),
        ("at", partner_name(g, &order.redeemer)),
        ("votes", format!("{} ({})", r.votes, voters.join(", "))),
        (
            "appended",
            format!(
                "{}'s log, position {} (entry {})",
                partner_name(g, &r.entry.partner),
                r.entry.seq,
                r.entry.entry_id.short()
            ),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use coalition_client::types::LotInfo;
    use coalition_core::lot_selection::SelectError;

    fn lot(n: u8, remaining: Points, expires_at: Timestamp) -> LotInfo {
        LotInfo {
            lot: Hash([n; 32]),
            issuer: PartnerId(coalition_core::crypto::PublicKey([9; 32])),
            points: remaining.max(1),
            remaining,
            expires_at,
            expired: false,
        }
    }

    fn spend(n: u8, points: Points) -> LotSpend {
        LotSpend {
            lot: Hash([n; 32]),
            points,
        }
    }

    #[test]
    fn expiring_first() {
        let lots = [lot(1, 50, 300), lot(2, 50, 100), lot(3, 50, 200)];
        assert_eq!(
            select_lots(&lots, 70, 0),
            Ok(vec![spend(2, 50), spend(3, 20)])
        );
    }

    #[test]
    fn exact_amounts_take_no_more_than_needed() {
        let lots = [lot(1, 30, 100), lot(2, 40, 200), lot(3, 50, 300)];
        assert_eq!(select_lots(&lots, 30, 0), Ok(vec![spend(1, 30)]));
        assert_eq!(
            select_lots(&lots, 70, 0),
            Ok(vec![spend(1, 30), spend(2, 40)])
        );
        assert_eq!(
            select_lots(&lots, 120, 0),
            Ok(vec![spend(1, 30), spend(2, 40), spend(3, 50)])
        );
        assert_eq!(select_lots(&lots, 1, 0), Ok(vec![spend(1, 1)]));
        for p in 1..=120 {
            let s = select_lots(&lots, p, 0).expect("enough points");
            assert_eq!(s.iter().map(|s| s.points).sum::<u64>(), p);
            assert!(s.iter().all(|s| s.points >= 1));
        }
    }

    #[test]
    fn insufficient() {
        let lots = [lot(1, 30, 100), lot(2, 40, 200)];
        assert_eq!(
            select_lots(&lots, 71, 0),
            Err(SelectError::Insufficient {
                wanted: 71,
                available: 70
            })
        );
        assert_eq!(
            select_lots(&[], 1, 0),
            Err(SelectError::Insufficient {
                wanted: 1,
                available: 0
            })
        );
        assert_eq!(select_lots(&lots, 0, 0), Err(SelectError::ZeroPoints));
    }

    #[test]
    fn expired_and_empty_lots_skipped() {
        let mut flagged = lot(4, 500, 1_000);
        flagged.expired = true;
        // Lot 1 expires exactly now: it cannot be spent at or after its expiry.
        let lots = [
            lot(1, 100, 50),
            lot(2, 100, 49),
            lot(3, 0, 60),
            flagged,
            lot(5, 10, 70),
        ];
        assert_eq!(select_lots(&lots, 10, 50), Ok(vec![spend(5, 10)]));
        assert_eq!(
            select_lots(&lots, 11, 50),
            Err(SelectError::Insufficient {
                wanted: 11,
                available: 10
            })
        );
    }

    #[test]
    fn ties_break_by_lot_id_and_duplicates_count_once() {
        let lots = [lot(7, 10, 100), lot(3, 10, 100), lot(3, 10, 100)];
        assert_eq!(
            select_lots(&lots, 15, 0),
            Ok(vec![spend(3, 10), spend(7, 5)])
        );
        assert_eq!(
            select_lots(&lots, 25, 0),
            Err(SelectError::Insufficient {
                wanted: 25,
                available: 20
            })
        );
    }

    #[test]
    fn huge_balances_do_not_overflow() {
        let lots = [lot(1, u64::MAX, 100), lot(2, u64::MAX, 200)];
        assert_eq!(
            select_lots(&lots, u64::MAX, 0),
            Ok(vec![spend(1, u64::MAX)])
        );
    }
}
