//! Command-line definitions, and nothing else: what the user can type, with its help text.
//!
//! Turning these into actions (reading files, asking a node) happens in the role modules; values that
//! can be checked without the outside world (hex ids, durations, URLs, order tokens) are checked here by
//! their value parsers ([`values`]), so a typo is a usage error (exit code 2) before anything runs.

mod values;

use clap::{Args as ClapArgs, Parser, Subcommand};
use clap_complete::Shell;
use coalition_core::record::MemberId;
use std::path::PathBuf;
use std::time::Duration;
pub(crate) use values::OrderToken;
use values::{
    parse_duration, parse_issue_points, parse_member_id, parse_node_url, parse_order_token,
    parse_points,
};

/// Default API address of a node: partner 0 of `network init` with the default base port.
pub(crate) const DEFAULT_NODE: &str = "http://127.0.0.1:7101";

const EXIT_CODES: &str = "\
Exit codes:
  0  success (also when the reader of standard output went away, e.g. `| head`)
  1  the operation failed or was refused (node unreachable, wrong passphrase, insufficient points...)
  2  usage error (unknown option, malformed value, missing --token)

Environment:
  COALITION_NODE               default for --node
  COALITION_TOKEN              default for --token
  COALITION_WALLET_PASSPHRASE  wallet passphrase (otherwise prompted when stdin is a terminal)";

/// The `coalition` command.
#[derive(Debug, Parser)]
#[command(
    name = "coalition",
    version,
    about = "Run and use a coalition points network: set up partners, hold a member wallet, issue and redeem points.",
    long_about = "Run and use a coalition points network: set up partners, hold a member wallet, issue and \
redeem points, and inspect a node.\n\n\
Partners run `coalition-node`; this command talks to one node's HTTP API (--node). Partner \
operations need that node's API token (--token). Every command prints tables for people, or one JSON \
document on standard output with --json.\n\n\
Example:\n  coalition network init --partners 4 --dir ./local\n  coalition member new --wallet alice.wallet\n  \
coalition --node http://127.0.0.1:7101 member balance --wallet alice.wallet",
    after_long_help = EXIT_CODES,
    after_help = "Exit codes: 0 success, 1 operation failed or refused, 2 usage error (see --help)."
)]
pub(crate) struct Args {
    /// The node's HTTP API base URL.
    #[arg(
        long,
        global = true,
        env = "COALITION_NODE",
        default_value = DEFAULT_NODE,
        value_name = "URL",
        value_parser = parse_node_url,
        long_help = "The node's HTTP API base URL (http:// or https://). Member commands may use any \
partner's node; `member redeem` redeems at the partner whose node this is; partner commands act as \
this node's partner."
    )]
    pub node: String,

    /// The node's API token, for partner operations, or an auditor token for reads.
    #[arg(
        long,
        global = true,
        env = "COALITION_TOKEN",
        hide_env_values = true,
        value_name = "T",
        long_help = "The node's API token (the `api_token` of its node.toml), required by \
`partner issue`; it or one of the node's `auditor_tokens` \
reads members' data by id (`member balance|history --member`), logs and proofs (`audit export`, \
`audit verify --node`, `audit prove`). Member commands with `--wallet` never send it: they sign \
their reads with the wallet's key."
    )]
    pub token: Option<String>,

    /// A PEM certificate (authority) to check an `https://` node against.
    #[arg(
        long,
        global = true,
        env = "COALITION_CA",
        value_name = "FILE",
        long_help = "A PEM file with the certificate authority (or the self-signed certificate) of a \
node that serves TLS with its own certificate (`tls_cert` in its node.toml). Without it, an \
`https://` node must have a certificate the public web trusts."
    )]
    pub ca: Option<std::path::PathBuf>,

    /// Print one machine-readable JSON document on standard output.
    #[arg(
        long,
        global = true,
        long_help = "Print one machine-readable JSON document on standard output instead of tables. \
Errors still go to standard error as one line, with a non-zero exit code."
    )]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Set up a coalition.
    #[command(
        subcommand,
        long_about = "Set up a coalition: partner keys, the genesis file and one node config per \
partner.\n\n\
Example:\n  coalition network init --partners 4 --dir ./local"
    )]
    Network(NetworkCommand),
    /// A member's wallet: identity, balance, history, redemptions.
    #[command(
        subcommand,
        long_about = "A member's wallet: create it, show the member id (and its QR code), see the \
balance and history, and redeem points. The wallet file holds the member's key encrypted with a \
passphrase (COALITION_WALLET_PASSPHRASE, or asked on the terminal).\n\n\
Example:\n  coalition member new --wallet alice.wallet\n  coalition member balance --wallet alice.wallet"
    )]
    Member(MemberCommand),
    /// A partner's operations at its own node (need --token).
    #[command(
        subcommand,
        long_about = "A partner's operations at its own node: credit points to members and redeem \
orders they signed. Every command here needs the node's API token (--token or COALITION_TOKEN).\n\n\
Example:\n  export COALITION_NODE=http://127.0.0.1:7101 COALITION_TOKEN=...\n  \
coalition partner issue --member 3b6a...e1 --points 120"
    )]
    Partner(PartnerCommand),
    /// Show a node's view: peers, log heads, epochs, checkpoints, equivocations.
    #[command(
        long_about = "Show a node's view of the coalition: which partner it is, its peers and whether \
they are connected, every partner's log head as held there, the current epoch, the last sealed \
checkpoint, whose epoch close is awaited, and any equivocation (fraud proof) it holds.\n\n\
Example:\n  coalition --node http://127.0.0.1:7103 status"
    )]
    Status,
    /// Settlement statements: who owes whom for an epoch.
    #[command(
        subcommand,
        long_about = "Settlement statements. For every epoch, the coalition computes who owes whom for the points redeemed in it (the gross matrix, priced at the genesis point value less the fee), each partner's net position, the short list of transfers that settles them, and each issuer's points issued, redeemed, expired (breakage) and outstanding.\n\n\
Example:\n  coalition settlement show --epoch 3"
    )]
    Settlement(SettlementCommand),
    /// Auditors: export the ledger, verify it offline, prove a record.
    #[command(
        subcommand,
        long_about = "Auditors' tools. `export` writes a self-contained file of every log, certificate, checkpoint and statement up to an epoch; `verify` checks such a file (or a live node) against the genesis alone: every signature, chain link, certificate and ledger rule, every checkpoint and statement recomputed; `prove` fetches and checks one record's inclusion proof up to a sealed checkpoint, and `check-proof` checks a saved proof offline.\n\n\
Example:\n  coalition audit export --out ledger.export\n  \
coalition audit verify --export ledger.export --genesis genesis.json"
    )]
    Audit(AuditCommand),
    /// Print a shell completion script.
    #[command(
        long_about = "Print a completion script for the shell on standard output.\n\n\
Example:\n  coalition completions bash > ~/.local/share/bash-completion/completions/coalition\n  \
coalition completions zsh > \"${fpath[1]}/_coalition\"\n  \
coalition completions fish > ~/.config/fish/completions/coalition.fish"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// `coalition network ...`
#[derive(Debug, Subcommand)]
pub(crate) enum NetworkCommand {
    /// Create a local coalition: keys, genesis.json and one node.toml per partner.
    #[command(
        long_about = "Create a local coalition in DIR: a fresh ed25519 key per partner, \
DIR/genesis.json, and for each partner i DIR/partner-<i>/node.toml and DIR/partner-<i>/partner.key \
(both readable by the owner only: they hold the API token and the secret key).\n\n\
Partner i listens for peers on 127.0.0.1 port P+2i and serves its API on port P+2i+1. The genesis \
time is now, rounded down to a multiple of the epoch length. An existing DIR/genesis.json is never \
overwritten.\n\n\
Example:\n  coalition network init --partners 4 --dir ./local\n  \
coalition-node --config ./local/partner-0/node.toml"
    )]
    Init(NetworkInit),
}

/// `coalition network init`
#[derive(Debug, ClapArgs)]
pub(crate) struct NetworkInit {
    /// Number of partners.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=200))]
    pub partners: u16,

    /// Directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,

    /// First port: partner i uses P+2i (p2p) and P+2i+1 (API).
    #[arg(long, value_name = "P", default_value_t = 7100, value_parser = clap::value_parser!(u16).range(1..))]
    pub base_port: u16,

    /// Epoch length in seconds.
    #[arg(
        long,
        value_name = "S",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..),
        long_help = "Epoch length in seconds: how often partners close their logs, seal a checkpoint \
and settle. Seconds suit a local demo; a day (86400) suits production."
    )]
    pub epoch_secs: u64,

    /// Partner names, comma-separated, one per partner.
    #[arg(
        long,
        value_name = "A,B,C",
        value_delimiter = ',',
        long_help = "Partner names, comma-separated, exactly one per partner, all different. Defaults: \
\"Café Lumière\", \"Bookshop Folio\", \"Cinema Aurora\", \"Fuel Station Nord\", then \"Partner 5\", \
\"Partner 6\"..."
    )]
    pub names: Option<Vec<String>>,

    /// The coalition's name.
    #[arg(long, value_name = "NAME", default_value = "Local coalition")]
    pub coalition: String,

    /// What one point is worth in settlement, in cents (minor units).
    #[arg(long, value_name = "CENTS", default_value_t = 1)]
    pub point_value_cents: u64,

    /// ISO code of the settlement currency.
    #[arg(long, value_name = "CODE", default_value = "EUR")]
    pub currency: String,

    /// Interchange fee the redeemer concedes, in basis points (0..=10000).
    #[arg(long, value_name = "BPS", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub fee_bps: u32,

    /// How far an order's time may be from a voter's clock, in seconds.
    #[arg(long, value_name = "S", default_value_t = 300)]
    pub clock_skew_secs: u64,
}

/// Which member: from a wallet file (no passphrase needed) or an id.
#[derive(Debug, Clone, ClapArgs)]
#[group(required = true, multiple = false)]
pub(crate) struct MemberSelector {
    /// The member's wallet file (read without the passphrase).
    #[arg(long, value_name = "FILE")]
    pub wallet: Option<PathBuf>,
    /// The member id (64 hex digits).
    #[arg(long, value_name = "ID", value_parser = parse_member_id)]
    pub member: Option<MemberId>,
}

/// `coalition member ...`
#[derive(Debug, Subcommand)]
pub(crate) enum MemberCommand {
    /// Create a wallet with a new member key; prints the member id.
    #[command(
        long_about = "Create a wallet file holding a new member key, encrypted with a passphrase \
(argon2id + XChaCha20-Poly1305), and print the member id (hex). The passphrase comes from \
COALITION_WALLET_PASSPHRASE or is asked twice on the terminal. An existing file is never \
overwritten.\n\n\
Example:\n  coalition member new --wallet alice.wallet"
    )]
    New {
        /// The wallet file to create.
        #[arg(long, value_name = "FILE")]
        wallet: PathBuf,
    },
    /// Print the member id of a wallet (no passphrase needed).
    #[command(
        long_about = "Print the member id (hex) of a wallet. The id is stored in clear in the \
wallet file, so no passphrase is needed.\n\n\
Example:\n  coalition member id --wallet alice.wallet"
    )]
    Id {
        /// The wallet file.
        #[arg(long, value_name = "FILE")]
        wallet: PathBuf,
    },
    /// Show the member id with a QR code to scan at the till.
    #[command(
        long_about = "Show the member id with a QR code of it drawn in the terminal: the loyalty \
card a cashier scans to credit points. No passphrase needed.\n\n\
Example:\n  coalition member show --wallet alice.wallet"
    )]
    Show {
        /// The wallet file.
        #[arg(long, value_name = "FILE")]
        wallet: PathBuf,
    },
    /// Points available, lots and next sequence number.
    #[command(
        long_about = "Show a member's points available now, the unspent lots (issuer, points \
left, expiry) and the sequence number the member's next order must carry, as the node sees them.\n\n\
Example:\n  coalition member balance --wallet alice.wallet\n  coalition --json member balance --member 3b6a...e1"
    )]
    Balance {
        #[command(flatten)]
        who: MemberSelector,
    },
    /// Points earned, redeemed and expired, oldest first.
    #[command(
        long_about = "Show a member's history as the node sees it, oldest first: every earn, \
redemption and expiry, with the partner and record.\n\n\
Example:\n  coalition member history --wallet alice.wallet"
    )]
    History {
        #[command(flatten)]
        who: MemberSelector,
    },
    /// Redeem points at the partner whose node --node is; waits for the certificate.
    #[command(
        long_about = "Redeem points at the partner whose node --node is: picks lots expiring \
first from the member's balance, signs the order with the wallet key, submits it, and waits until a \
quorum of partners has certified it. Prints the receipt.\n\n\
Example:\n  coalition --node http://127.0.0.1:7103 member redeem --wallet alice.wallet --points 50"
    )]
    Redeem {
        /// The wallet file.
        #[arg(long, value_name = "FILE")]
        wallet: PathBuf,
        /// Points to redeem (at least 1).
        #[arg(long, value_name = "N", value_parser = parse_points)]
        points: u64,
        /// How long to keep resubmitting the same order while no quorum answers.
        #[arg(
            long,
            value_name = "SECS",
            default_value_t = 30,
            value_parser = clap::value_parser!(u64).range(0..=3600)
        )]
        wait: u64,
    },
    /// Sign a redemption order for a partner and print its token; submits nothing.
    #[command(
        long_about = "Sign a redemption order and print the order token (hex), to hand to the \
partner (e.g. as a QR code) who submits it with `coalition partner submit-redeem`. Lots are picked \
expiring first from the balance --node reports; nothing is sent to any node.\n\n\
PARTNER is a partner id (hex) or a partner's exact name in the genesis.\n\n\
Example:\n  coalition member sign-redeem --wallet alice.wallet --points 50 --at \"Cinema Aurora\""
    )]
    SignRedeem {
        /// The wallet file.
        #[arg(long, value_name = "FILE")]
        wallet: PathBuf,
        /// Points to redeem (at least 1).
        #[arg(long, value_name = "N", value_parser = parse_points)]
        points: u64,
        /// The redeeming partner: its id (hex) or exact name.
        #[arg(long, value_name = "PARTNER")]
        at: String,
        /// Sequence number to sign (default: the next one the node reports).
        #[arg(
            long,
            value_name = "S",
            long_help = "The member sequence number to sign. Defaults to the next one the node \
reports; set it only to sign an order ahead of a pending one."
        )]
        seq: Option<u64>,
    },
}

/// `coalition partner ...`
#[derive(Debug, Subcommand)]
pub(crate) enum PartnerCommand {
    /// Credit points to a member (a new lot issued by this node's partner).
    #[command(
        long_about = "Credit points to a member: this node's partner issues a new lot and \
appends it to its log. Needs --token. The reference (a receipt number) is hashed; only the hash is \
recorded. Without --expires-in the node's default lifetime applies.\n\n\
Example:\n  coalition --token $TOKEN partner issue --member 3b6a...e1 --points 120 --reference R-1042 --expires-in 90d"
    )]
    Issue {
        /// The member id (64 hex digits).
        #[arg(long, value_name = "ID", value_parser = parse_member_id)]
        member: MemberId,
        /// Points to credit (1 to 1000000000000).
        #[arg(long, value_name = "N", value_parser = parse_issue_points)]
        points: u64,
        /// The purchase receipt or order number (only its hash is recorded).
        #[arg(long, value_name = "TEXT")]
        reference: Option<String>,
        /// Lifetime of the lot, e.g. 90d, 12h, 30m, 45s; at most 3650d.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        expires_in: Option<Duration>,
    },
    /// Redeem a member-signed order token at this node's partner; waits for the certificate.
    #[command(
        long_about = "Redeem a member-signed order (the token `coalition member sign-redeem` \
prints) at this node's partner. The token is decoded and its signature checked before it is sent. \
Waits until a quorum of partners has certified it and prints the receipt. Needs no token: the \
member's signature is the authority, and the node refuses an order signed for another partner.\n\n\
Example:\n  coalition partner submit-redeem --order 01a7..."
    )]
    SubmitRedeem {
        /// The order token (hex).
        #[arg(long, value_name = "TOKEN", value_parser = parse_order_token)]
        order: OrderToken,
    },
    /// Have the running node write a consistent backup of its database.
    #[command(
        long_about = "Have the running node write a consistent copy of its database (every \
column at one point in time: a RocksDB checkpoint, quick and small on the same filesystem) and of \
its anchor file into DIR, a new directory on the node's machine. The node keeps serving. A relative \
DIR is taken from the current directory, which is right when the CLI runs beside the node. To \
restore, stop the node, put the copy in place of its data_dir and start it with its partners up: \
it signs nothing until they have handed back what the copy lacks. Needs --token.\n\n\
Example:\n  coalition --token $TOKEN partner backup --dir /var/backups/coalition/2026-12-02"
    )]
    Backup {
        /// The new directory to write the backup into.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
}

/// `coalition settlement ...`
#[derive(Debug, Subcommand)]
pub(crate) enum SettlementCommand {
    /// Print an epoch's settlement statement.
    #[command(
        long_about = "Print the settlement statement of an epoch as the node computed it: the \
gross obligations matrix (issuer owes redeemer), net positions, the transfers that settle them, and \
per issuer the points issued, redeemed, expired and outstanding, in points and money. Says whether \
the epoch's checkpoint is sealed.\n\nExample:\n  coalition settlement show --epoch 0"
    )]
    Show {
        /// The epoch; defaults to the last sealed one.
        #[arg(long, value_name = "E")]
        epoch: Option<u64>,
    },
}

/// `coalition audit ...`
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Write a self-contained export of the ledger up to a sealed epoch.
    #[command(
        long_about = "Write a self-contained export of every partner's log up to the sealed \
checkpoint of epoch E (default: the last sealed one), with every checkpoint, its signatures and every \
settlement statement from epoch 0. An auditor verifies it with `audit verify` and the genesis only.\n\n\
Example:\n  coalition --node http://127.0.0.1:7101 audit export --out ledger.export"
    )]
    Export {
        /// The file to write (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The last epoch to include.
        #[arg(long, value_name = "E")]
        epoch: Option<u64>,
    },
    /// Verify an export (or a live node) offline against the genesis.
    #[command(
        long_about = "Verify an export file against a genesis file, or (without --export) the \
ledger of the live node given by --node against the genesis file if given, else the node's own. \
Checks every signature, chain link, certificate and ledger rule, recomputes every checkpoint and \
statement and compares them with the sealed ones, and checks consistency between consecutive \
checkpoints. Ends with one verdict line; on failure it names the epoch, partner, position and rule.\n\n\
Example:\n  coalition audit verify --export ledger.export --genesis genesis.json"
    )]
    Verify {
        /// The export file; without it the node given by --node is verified.
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
        /// The genesis file (required with --export).
        #[arg(long, value_name = "FILE")]
        genesis: Option<PathBuf>,
        /// For a live node: the last epoch to verify (default: the last sealed one).
        #[arg(long, value_name = "E")]
        epoch: Option<u64>,
    },
    /// Fetch and verify a record's inclusion proof up to a sealed checkpoint.
    #[command(
        long_about = "Fetch the inclusion proof of a record (a lot id from `partner issue`, an \
order id from a redemption) up to a sealed checkpoint from the node, verify it against the genesis \
(--genesis, else the node's), and optionally save it for `audit check-proof`.\n\n\
Example:\n  coalition audit prove --record 5f2c...9a --out receipt.proof"
    )]
    Prove {
        /// The record id (hex).
        #[arg(long, value_name = "ID")]
        record: String,
        /// The checkpoint epoch to prove against (default: the first that covers the record).
        #[arg(long, value_name = "E")]
        epoch: Option<u64>,
        /// The genesis file to verify against.
        #[arg(long, value_name = "FILE")]
        genesis: Option<PathBuf>,
        /// Save the proof (JSON) here.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Verify a saved inclusion proof offline, with only the genesis.
    #[command(
        long_about = "Verify a proof saved by `audit prove --out` with only the genesis file.\n\n\
Example:\n  coalition audit check-proof --proof receipt.proof --genesis genesis.json"
    )]
    CheckProof {
        /// The proof file.
        #[arg(long, value_name = "FILE")]
        proof: PathBuf,
        /// The genesis file.
        #[arg(long, value_name = "FILE")]
        genesis: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definitions_are_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn global_options_anywhere() {
        let a = Args::try_parse_from(["coalition", "member", "id", "--wallet", "w", "--json"]);
        assert!(a.is_ok_and(|a| a.json));
        let a = Args::try_parse_from(["coalition", "--node", "http://x:1", "status"]);
        assert!(a.is_ok_and(|a| a.node == "http://x:1"));
    }

    #[test]
    fn member_selector_is_exclusive_and_required() {
        assert!(Args::try_parse_from(["coalition", "member", "balance"]).is_err());
        let both = [
            "coalition",
            "member",
            "balance",
            "--wallet",
            "w",
            "--member",
            &"11".repeat(32),
        ];
        assert!(Args::try_parse_from(both).is_err());
    }

    #[test]
    fn names_split_on_commas() {
        let a = Args::try_parse_from([
            "coalition",
            "network",
            "init",
            "--partners",
            "2",
            "--dir",
            "d",
            "--names",
            "A b,C",
        ]);
        match a.map(|a| a.command) {
            Ok(Command::Network(NetworkCommand::Init(init))) => {
                assert_eq!(init.names, Some(vec!["A b".to_string(), "C".to_string()]));
                assert_eq!(init.base_port, 7100);
                assert_eq!(init.epoch_secs, 60);
            }
            other => panic!("unexpected parse: {other:?}"),
        }
    }
}
