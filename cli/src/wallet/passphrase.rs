//! Where a wallet's passphrase comes from: [`PASSPHRASE_ENV`], else the terminal (never a pipe).

use std::path::Path;
use zeroize::Zeroizing;

/// Where the passphrase comes from when it is not prompted.
pub const PASSPHRASE_ENV: &str = "COALITION_WALLET_PASSPHRASE";

/// The passphrase for an existing wallet: from [`PASSPHRASE_ENV`], else asked on the terminal.
pub fn passphrase_for(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    if let Some(p) = passphrase_from_env()? {
        return Ok(p);
    }
    prompt(path, &format!("Passphrase for wallet {}: ", path.display()))
}

/// The fewest characters a new wallet's passphrase may have.
pub const MIN_PASSPHRASE_CHARS: usize = 8;

/// The passphrase for a new wallet: from [`PASSPHRASE_ENV`], else asked twice on the terminal. At
/// least [`MIN_PASSPHRASE_CHARS`] characters.
pub fn new_passphrase_for(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let pass = match passphrase_from_env()? {
        Some(p) => p,
        None => {
            let first = prompt(
                path,
                &format!("New passphrase for wallet {}: ", path.display()),
            )?;
            let second = prompt(path, "Repeat the passphrase: ")?;
            if *first != *second {
                anyhow::bail!(
                    "the two passphrases differ; wallet {} not created",
                    path.display()
                );
            }
            first
        }
    };
    // The file is offline-guessable by whoever copies it; argon2id slows each guess, but a
    // passphrase of a few characters is found anyway.
    let chars = pass.chars().count();
    if chars == 0 {
        anyhow::bail!(
            "the passphrase is empty; wallet {} not created",
            path.display()
        );
    }
    if chars < MIN_PASSPHRASE_CHARS {
        anyhow::bail!(
            "the passphrase has {chars} characters; it must have at least {MIN_PASSPHRASE_CHARS} characters; wallet {} not created",
            path.display()
        );
    }
    Ok(pass)
}

/// The passphrase in [`PASSPHRASE_ENV`], if set.
fn passphrase_from_env() -> anyhow::Result<Option<Zeroizing<String>>> {
    match std::env::var(PASSPHRASE_ENV) {
        Ok(p) => Ok(Some(Zeroizing::new(p))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            anyhow::bail!("{PASSPHRASE_ENV} is not valid UTF-8")
        }
    }
}

/// Asks for a passphrase on the terminal, showing `text`.
fn prompt(path: &Path, text: &str) -> anyhow::Result<Zeroizing<String>> {
    use std::io::IsTerminal;
    // Only prompt when a person is at the keyboard: without a terminal on stdin (a script, CI) the
    // prompt would hang or read garbage.
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "no passphrase for wallet {}: set {PASSPHRASE_ENV} or run in a terminal to be asked",
            path.display()
        );
    }
    rpassword::prompt_password(text)
        .map(Zeroizing::new)
        .map_err(|e| {
            anyhow::Error::new(e).context(format!(
                "cannot read the passphrase for wallet {}",
                path.display()
            ))
        })
}
