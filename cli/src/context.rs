//! The global options resolved into what every command needs: the node to talk to, the partner token,
//! and where output goes.

use crate::args::Args;
use crate::output::Output;
use anyhow::Result;
use coalition_client::{Client, TlsRoots};
use coalition_core::crypto::Keypair;
use coalition_core::genesis::Genesis;
use std::path::Path;
use std::sync::Arc;

/// A mistake in what the user typed that clap could not see (e.g. a missing token, a wrong number of
/// names). `main` exits with code 2 for it, like a clap usage error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub String);

/// What every command runs with.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// The node's API base URL.
    pub node: String,
    /// The partner API token, if given.
    token: Option<String>,
    /// Tables or JSON.
    pub out: Output,
    /// The certificate authority `https://` nodes are checked against (`--ca`), if given.
    roots: Option<TlsRoots>,
}

impl Context {
    /// The context of these options; fails if `--ca` names a file that holds no certificate.
    pub(crate) fn new(args: &Args) -> Result<Context> {
        let roots = match &args.ca {
            Some(path) => Some(TlsRoots::from_pem_file(path)?),
            None => None,
        };
        Ok(Context {
            node: args.node.clone(),
            token: args.token.clone().filter(|t| !t.trim().is_empty()),
            out: Output { json: args.json },
            roots,
        })
    }

    /// A client of the node, without credentials, trusting `--ca` if given.
    fn base_client(&self, token: Option<String>) -> Client {
        let client = Client::new(&self.node, token);
        match &self.roots {
            Some(roots) => client.with_roots(roots),
            None => client,
        }
    }
}

impl Context {
    /// A client for public calls. It never carries the partner token: a member's commands have no
    /// reason to hand it to whatever node they talk to.
    pub(crate) fn client(&self) -> Client {
        self.base_client(None)
    }

    /// A client for reads of members' data, logs and proofs, with the token if one was given (a
    /// partner's or an auditor's); without one the node refuses them.
    pub(crate) fn reader_client(&self) -> Client {
        self.base_client(self.token.clone())
    }

    /// A client that signs reads of the wallet's own balance and history with its key (the
    /// passphrase is asked for), so a member needs no partner's token.
    pub(crate) fn member_client(&self, wallet: &Path) -> Result<(Client, Arc<Keypair>)> {
        let pass = crate::wallet::passphrase_for(wallet)?;
        let key = Arc::new(crate::wallet::unlock(wallet, &pass)?);
        drop(pass);
        Ok((self.client().with_member_key(key.clone()), key))
    }

    /// A client for partner operations, which need the token.
    pub(crate) fn partner_client(&self) -> Result<Client> {
        match &self.token {
            Some(t) => Ok(self.base_client(Some(t.clone()))),
            None => Err(UsageError(
                "this partner operation needs the node's API token: pass --token or set COALITION_TOKEN"
                    .into(),
            )
            .into()),
        }
    }

    /// The node's genesis, to show partner names; `None` if the node does not serve it.
    pub(crate) fn genesis(&self, client: &Client) -> Option<Genesis> {
        client.get::<Genesis>("/v1/genesis").ok()
    }
}
