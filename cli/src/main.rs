//! `coalition`: set up a coalition, hold a member wallet, issue and redeem points, inspect a node.
//!
//! Layout: [`args`] holds the clap definitions and nothing else; [`context`] turns the global options
//! into what commands need; one module per role does the work ([`network`], [`member`] with the
//! [`wallet`] file and its orders in [`redeem`] and [`pending`], [`partner`], [`status`]);
//! [`output`] writes tables or `--json`.
//!
//! Exit codes (also in `--help`):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success, including when standard output was closed early (`coalition ... \| head`) |
//! | 1 | the operation failed or was refused: node unreachable or refusing, wrong passphrase, damaged wallet, not enough points, a file that exists |
//! | 2 | usage error: unknown option, malformed value, a partner operation without `--token` |
//!
//! An error prints as one line on standard error: `coalition: ` then every cause, outermost first,
//! separated by `: `.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod args;
mod audit;
mod context;
mod member;
mod network;
mod output;
mod partner;
mod pending;
mod redeem;
mod settlement;
mod statement_table;
mod status;

use anyhow::Result;
use args::{Args, Command, NetworkCommand};
use clap::{CommandFactory, Parser};
use coalition_cli::{files, wallet};
use context::{Context, UsageError};
use serde::Serialize;
use std::io::{self, Write};
use std::process::ExitCode;

/// The operation failed or was refused.
const EXIT_FAILED: u8 = 1;
/// The command line was wrong (clap uses the same code for its own usage errors).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    // --help and --version print and exit 0 (a bare command prints its help and exits 2), as clap
    // does; any other usage error is one line on stderr and exit code 2, like every other error.
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(err) => return usage_exit(err),
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => {
            // Whoever read our output (`| head`, a pager) has all they wanted: that is a normal end, not
            // a failure, and there is nobody left to tell.
            ExitCode::SUCCESS
        }
        Err(err) => {
            let line = one_line(&err);
            // If stderr is gone too there is nothing more to do.
            let _ = writeln!(io::stderr(), "coalition: {line}");
            if err.chain().any(|c| c.is::<UsageError>()) {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::from(EXIT_FAILED)
            }
        }
    }
}

fn run(args: Args) -> Result<()> {
    let ctx = Context::new(&args)?;
    match args.command {
        Command::Network(NetworkCommand::Init(init)) => network::init(&ctx, &init),
        Command::Member(cmd) => member::run(&ctx, cmd),
        Command::Partner(cmd) => partner::run(&ctx, cmd),
        Command::Status => status::run(&ctx),
        Command::Settlement(cmd) => settlement::run(&ctx, cmd),
        Command::Audit(cmd) => audit::run(&ctx, cmd),
        Command::Completions { shell } => completions(&ctx, shell),
    }
}

#[derive(Serialize)]
struct CompletionsReport {
    shell: String,
    script: String,
}

fn completions(ctx: &Context, shell: clap_complete::Shell) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Args::command(), "coalition", &mut script);
    let script = String::from_utf8(script)?;
    if ctx.out.json {
        return ctx.out.json(&CompletionsReport {
            shell: shell.to_string(),
            script,
        });
    }
    ctx.out.raw(&script)
}

/// Ends the run on a clap error: help and version as clap prints them, anything else as one line.
fn usage_exit(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => err.exit(),
        _ => {
            let argv: Vec<String> = std::env::args_os()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let line = usage_line(&err.render().to_string(), &command_path(&argv));
            let _ = writeln!(io::stderr(), "coalition: {line}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// The (sub)command the user was typing, e.g. `coalition member balance`: the words of `argv` that
/// name a subcommand of the one before.
fn command_path(argv: &[String]) -> String {
    let mut cmd = Args::command();
    let mut path = vec![cmd.get_name().to_string()];
    for word in argv.iter().skip(1) {
        if let Some(sub) = cmd.find_subcommand(word).cloned() {
            path.push(sub.get_name().to_string());
            cmd = sub;
        }
    }
    path.join(" ")
}

/// A clap error message (`error: ...`, details, `Usage: ...`, `For more information...`) on one
/// line: the message and its details, then where to read more.
fn usage_line(rendered: &str, command: &str) -> String {
    let parts: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect();
    format!("{} (see `{command} --help`)", parts.join(" "))
}

/// The whole cause chain on one line, outermost first (`a: b: c`).
fn one_line(err: &anyhow::Error) -> String {
    let text = format!("{err:#}");
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn errors_are_one_line_with_every_cause() {
        let inner = io::Error::other("line one\nline two");
        let err = Err::<(), _>(inner)
            .context("reading x")
            .context("loading y")
            .unwrap_err();
        assert_eq!(one_line(&err), "loading y: reading x: line one line two");
    }

    #[test]
    fn clap_errors_become_one_line() {
        for argv in [
            &["coalition", "member", "balance"][..],
            &["coalition", "member", "balance", "--member", "abc"],
            &["coalition", "completions", "tcsh"],
            &["coalition", "audit", "verfy"],
            &["coalition", "--node", "localhost:1", "status"],
        ] {
            let err = Args::try_parse_from(argv).expect_err("a usage error");
            let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
            let line = usage_line(&err.render().to_string(), &command_path(&argv));
            assert!(!line.contains('\n'), "{line}");
            assert!(!line.starts_with("error"), "{line}");
            assert!(line.ends_with("--help`)"), "{line}");
        }
        let argv: Vec<String> = "coalition --json member balance --member abc"
            .split(' ')
            .map(str::to_string)
            .collect();
        assert_eq!(command_path(&argv), "coalition member balance");
        let err = Args::try_parse_from(&argv).expect_err("usage");
        let line = usage_line(&err.render().to_string(), &command_path(&argv));
        let want = "invalid value 'abc' for '--member <ID>': expected 64 hex digits, got \"abc\" \
(see `coalition member balance --help`)";
        assert_eq!(line, want);
    }

    #[test]
    fn broken_pipe_is_found_under_context() {
        let err = Err::<(), _>(io::Error::from(io::ErrorKind::BrokenPipe))
            .context("writing")
            .unwrap_err();
        assert!(is_broken_pipe(&err));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
