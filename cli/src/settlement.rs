//! `coalition settlement show`: an epoch's statement as a table, or JSON.

use crate::args::SettlementCommand;
use crate::context::Context;
use anyhow::{bail, Context as _, Result};

/// Runs a `settlement` command.
pub(crate) fn run(ctx: &Context, cmd: SettlementCommand) -> Result<()> {
    match cmd {
        SettlementCommand::Show { epoch } => show(ctx, epoch),
    }
}

fn show(ctx: &Context, epoch: Option<u64>) -> Result<()> {
    let client = ctx.client();
    let epoch = match epoch {
        Some(e) => e,
        None => match client
            .status()
            .context("cannot get the node's status")?
            .last_sealed_epoch
        {
            Some(e) => e,
            None => {
                bail!("no epoch is sealed yet; pass --epoch to see a computed but unsealed one")
            }
        },
    };
    let view = client
        .settlement(epoch)
        .with_context(|| format!("cannot get the settlement of epoch {epoch}"))?;
    if ctx.out.json {
        return ctx.out.json(&view);
    }
    let genesis = client.genesis().context("cannot get the node's genesis")?;
    let seal = if view.sealed {
        "sealed"
    } else {
        "NOT YET SEALED"
    };
    ctx.out
        .line(format!("Settlement of epoch {epoch} ({seal})"))?;
    ctx.out
        .raw(&crate::statement_table::render(&view.statement, &genesis))
}
