//! The command line: every subcommand, option and help text, and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  Enroll yourself and show the secret and backup codes:
    twofactor enroll --non-interactive

  Provision a user from a script (as root), reading the result as JSON:
    twofactor enroll --user alice --non-interactive --json

Exit status: 0 success, 1 refused or bad usage, 2 system error.";

const ENROLL_EXAMPLES: &str = "\
Examples:
  twofactor enroll --non-interactive
  twofactor enroll --user alice --non-interactive --json
  twofactor enroll --user alice --non-interactive --json --force

The JSON object has the keys user, uid, enrollment_path, issuer, account,
otpauth_uri, secret, algorithm, digits, period and backup_codes.

Exit status: 0 enrolled, 1 refused (enrollment exists, not allowed, unknown
user, bad usage), 2 system error (I/O, invalid configuration).";

/// Enroll and manage the second factors checked by pam_twofactor.
#[derive(Debug, Parser)]
#[command(name = "twofactor", version, after_help = EXAMPLES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new TOTP secret and backup codes for a user.
    ///
    /// Writes the enrollment file (by default ~/.config/twofactor/enrollment.toml,
    /// mode 0600, owned by the user) and prints the otpauth:// URI, the secret
    /// and the backup codes. Run by root for another user, it switches to that
    /// user completely before touching any file.
    ///
    /// This version never prompts: without --non-interactive it behaves
    /// exactly as with it. Scripts should pass --non-interactive anyway, so
    /// they keep working when the interactive enrollment (QR code, code
    /// confirmation) arrives.
    #[command(after_help = ENROLL_EXAMPLES)]
    Enroll(EnrollArgs),
}

/// Options of `twofactor enroll`.
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// Enroll this user instead of yourself (only root may name another user).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Never prompt or wait for input (for provisioning scripts).
    #[arg(long)]
    pub non_interactive: bool,

    /// Print the result as one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,

    /// Replace an existing enrollment; the old authenticator entry and the old
    /// backup codes stop working.
    #[arg(long)]
    pub force: bool,

    /// Read the system configuration from PATH
    /// [default: /etc/security/pam_twofactor.toml, built-in defaults if absent].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn default_config_path_in_help_matches_core() {
        let help = Cli::command()
            .find_subcommand_mut("enroll")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(
            help.contains(twofactor_core::config::DEFAULT_CONFIG_PATH),
            "{help}"
        );
    }
}
