//! The command line: every subcommand, option and help text, and nothing else.
//! The man pages (`man/`) are generated from these definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  Set up TOTP and backup codes (QR code in the terminal, confirm one code):
    twofactor enroll

  See what is enrolled, backup codes left, last login, failures, lockouts:
    twofactor status

  Try a code from the app without logging out (nothing is used up):
    twofactor verify

  New backup codes, or turn the second factor off:
    twofactor backup-codes
    twofactor disable all

  As root, for a user: provision from a script, unlock after failed logins:
    twofactor enroll --user alice --non-interactive --json --qr-file /tmp/alice.png
    twofactor reset-lockout --user alice

Exit status: 0 success (verify: the code is valid); 1 refused, cancelled,
bad usage, or (verify) a code that is not valid; 2 system error (I/O, bad
configuration); 128+N interrupted by signal N (130 for Ctrl-C), nothing
written.";

const ENROLL_EXAMPLES: &str = "\
Examples:
  twofactor enroll
  twofactor enroll --qr light             # terminal with a light background
  twofactor enroll --force                # replace a lost phone's enrollment
  twofactor enroll --user alice --non-interactive --json
  twofactor enroll --user alice --non-interactive --json --qr-file /tmp/alice.svg

Interactive enrollment writes nothing until a correct code from the app is
entered; Ctrl-C or end of input (Ctrl-D) leaves no file behind.

The --json object has the keys user, uid, enrollment_path, issuer, account,
otpauth_uri, secret, algorithm, digits, period, backup_codes, qr_file (a path
or null) and replaced (true when --force replaced an enrollment).

With --user, root acts as that user: every file is created by and owned by
the user (so --qr-file must name a place the user can write, such as /tmp).

Exit status: 0 enrolled; 1 refused (enrollment exists, not allowed, unknown
user, no terminal, bad usage) or cancelled (end of input); 2 system error;
130 Ctrl-C. In the last three cases nothing was written.";

const STATUS_EXAMPLES: &str = "\
Examples:
  twofactor status
  twofactor status --json | jq .methods.backup_codes.remaining
  twofactor status --user alice             # as root

The --json object has the keys user, uid, enrollment, methods, state,
last_success, recent_failures and lockout (see the README for their
contents). New keys (such as methods.security_keys) may be added: ignore the
ones you do not know.

Exit status: 0 the status was shown (also when not enrolled, or when the
login state cannot be read: that is part of the status); 1 refused or bad
usage; 2 system error.";

const VERIFY_EXAMPLES: &str = "\
Examples:
  twofactor verify                           # asks for the code (hidden)
  oathtool --totp -b KEY | twofactor verify  # the code on standard input

Why this is safe: verify is read-only. It checks the code with the same
function the PAM module uses, against your enrollment file and your login
state, but it never records a TOTP code as used, never spends a backup code
and never writes the login state. So it cannot use up anyone's codes, and
it does not get around the rate limits on guessing: it only tells you what
your own enrollment file, which you can read anyway, already determines.
Only root may check another user's codes (--user).

Exit status: 0 the code is valid; 1 it is not (wrong, or valid but already
used or spent: a login would refuse it), or no code was given, or refused;
2 system error; 130 Ctrl-C.";

const BACKUP_CODES_EXAMPLES: &str = "\
Examples:
  twofactor backup-codes
  twofactor backup-codes --user alice --yes --json     # as root, from a script

Exit status: 0 new codes written and shown; 1 refused, not enrolled, or not
confirmed; 2 system error; 130 Ctrl-C (nothing written).";

const DISABLE_EXAMPLES: &str = "\
Examples:
  twofactor disable totp           # keep only the backup codes
  twofactor disable backup-codes   # keep only TOTP
  twofactor disable all            # remove the enrollment file
  twofactor disable all --user alice --yes

If the system requires a second factor (unenrolled = \"fail\"), logins through
pam_twofactor are refused once nothing is enrolled, until you enroll again.

Exit status: 0 disabled (or nothing to disable); 1 refused or not
confirmed; 2 system error; 130 Ctrl-C (nothing changed).";

const RESET_LOCKOUT_EXAMPLES: &str = "\
Examples:
  twofactor reset-lockout --user alice

Clears the failed attempts recorded in the root-owned login state, under
the same lock the PAM module takes, so codes and backup codes are accepted
again at once. Replay protection and spent backup codes are kept.

Exit status: 0 cleared (or nothing to clear); 1 refused (not root, unknown
user); 2 system error.";

/// Enroll and manage the second factors checked by pam_twofactor.
///
/// TOTP codes from an authenticator app, and single-use backup codes for
/// when the phone is lost. Each user manages their own enrollment; root can
/// act for any user with --user.
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
    /// Set up TOTP (QR code, confirmation code) and backup codes.
    ///
    /// Creates a new 160-bit TOTP secret and ten backup codes. The QR code
    /// for the authenticator app is drawn in the terminal; the otpauth://
    /// URI and the secret (for typing in by hand) are printed too. You are
    /// then asked for the code the app shows, and nothing is written until
    /// a correct one is entered. Then the backup codes are shown, once, and
    /// the enrollment file (by default ~/.config/twofactor/enrollment.toml)
    /// is written atomically with mode 0600.
    ///
    /// An existing enrollment is never replaced without --force.
    #[command(after_help = ENROLL_EXAMPLES)]
    Enroll(EnrollArgs),

    /// Show what is enrolled, backup codes left, last login, failures and
    /// lockouts.
    #[command(after_help = STATUS_EXAMPLES)]
    Status(StatusArgs),

    /// Check a code without logging in (read-only: nothing is used up).
    ///
    /// Reads one code, from the terminal (not echoed) or from standard input,
    /// and says whether a login would accept it: valid, valid but already
    /// used (a TOTP code accepted before: replay) or spent (a used backup
    /// code), or wrong.
    #[command(after_help = VERIFY_EXAMPLES)]
    Verify(VerifyArgs),

    /// Replace the backup codes with ten new ones (the old ones stop working).
    #[command(after_help = BACKUP_CODES_EXAMPLES)]
    BackupCodes(BackupCodesArgs),

    /// Turn off TOTP, the backup codes, or everything.
    ///
    /// "all" removes the enrollment file. Disabling the last remaining
    /// method removes it too.
    #[command(after_help = DISABLE_EXAMPLES)]
    Disable(DisableArgs),

    /// Clear a user's failed login attempts, ending a lockout (root only).
    #[command(after_help = RESET_LOCKOUT_EXAMPLES)]
    ResetLockout(ResetLockoutArgs),

    /// Write the man pages into DIR (used to build man/; not for users).
    #[command(hide = true)]
    GenerateMan(GenerateManArgs),
}

/// Whose enrollment, and which system configuration.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Act for this user instead of yourself (only root may name another user).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Read the system configuration from PATH
    /// [default: /etc/security/pam_twofactor.toml, built-in defaults if absent].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// How the QR code is drawn in the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QrStyle {
    /// Unicode half blocks for a dark terminal background (the default).
    Dark,
    /// Unicode half blocks for a light terminal background.
    Light,
    /// Plain ASCII ("##") for a dark background; about 100 columns wide.
    AsciiDark,
    /// Plain ASCII ("##") for a light background; about 100 columns wide.
    AsciiLight,
    /// No QR code in the terminal.
    None,
}

/// Options of `twofactor enroll`.
#[derive(Debug, Args)]
pub struct EnrollArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Do not ask for a confirmation code, never read input (for scripts).
    #[arg(long)]
    pub non_interactive: bool,

    /// Print the result as one JSON object on stdout instead of text.
    #[arg(long, requires = "non_interactive")]
    pub json: bool,

    /// Replace an existing enrollment; the old authenticator entry and the old
    /// backup codes stop working.
    #[arg(long)]
    pub force: bool,

    /// How to draw the QR code in the terminal.
    #[arg(long, value_enum, value_name = "STYLE", default_value_t = QrStyle::Dark)]
    pub qr: QrStyle,

    /// Also write the QR code to PATH, as SVG or PNG by its extension (.svg,
    /// .png). The file is created new (never overwritten), mode 0600: it holds
    /// the secret.
    #[arg(long, value_name = "PATH", value_parser = parse_qr_file)]
    pub qr_file: Option<PathBuf>,
}

/// Options of `twofactor status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `twofactor verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `twofactor backup-codes`.
#[derive(Debug, Args)]
pub struct BackupCodesArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Do not ask for confirmation (for scripts).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Print the new codes as one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What `twofactor disable` turns off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DisableWhat {
    /// The TOTP secret (backup codes stay).
    Totp,
    /// The backup codes (TOTP stays).
    BackupCodes,
    /// Everything: the enrollment file is removed.
    All,
}

/// Options of `twofactor disable`.
#[derive(Debug, Args)]
pub struct DisableArgs {
    /// What to turn off.
    #[arg(value_enum)]
    pub what: DisableWhat,

    #[command(flatten)]
    pub target: TargetArgs,

    /// Do not ask for confirmation (for scripts).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Print the result as one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `twofactor reset-lockout`.
#[derive(Debug, Args)]
pub struct ResetLockoutArgs {
    /// The user whose failed attempts to clear.
    #[arg(long, value_name = "NAME", required = true)]
    pub user: String,

    /// Read the system configuration from PATH
    /// [default: /etc/security/pam_twofactor.toml, built-in defaults if absent].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Print the result as one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of the hidden `twofactor generate-man`.
#[derive(Debug, Args)]
pub struct GenerateManArgs {
    /// Directory to write twofactor.1 and twofactor-COMMAND.1 into.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// The format of a QR code file, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrFileFormat {
    /// Scalable vector graphics.
    Svg,
    /// Portable network graphics (grey scale).
    Png,
}

impl QrFileFormat {
    /// The format named by `path`'s extension (any case), if supported.
    pub fn of(path: &std::path::Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "svg" => Some(QrFileFormat::Svg),
            "png" => Some(QrFileFormat::Png),
            _ => None,
        }
    }
}

fn parse_qr_file(value: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(value);
    match QrFileFormat::of(&path) {
        Some(_) => Ok(path),
        None => Err("the file name must end in .svg or .png".into()),
    }
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
        let mut command = Cli::command();
        for name in [
            "enroll",
            "status",
            "verify",
            "backup-codes",
            "disable",
            "reset-lockout",
        ] {
            let help = command
                .find_subcommand_mut(name)
                .unwrap()
                .render_long_help()
                .to_string();
            assert!(
                help.contains(twofactor_core::config::DEFAULT_CONFIG_PATH),
                "{name}: {help}"
            );
            assert!(help.contains("Examples:"), "{name}: {help}");
            assert!(help.contains("Exit status:"), "{name}: {help}");
        }
    }

    #[test]
    fn qr_file_formats() {
        assert_eq!(
            QrFileFormat::of(std::path::Path::new("/tmp/a.PNG")),
            Some(QrFileFormat::Png)
        );
        assert_eq!(
            QrFileFormat::of(std::path::Path::new("a.svg")),
            Some(QrFileFormat::Svg)
        );
        assert_eq!(QrFileFormat::of(std::path::Path::new("a.jpg")), None);
        assert_eq!(QrFileFormat::of(std::path::Path::new("svg")), None);
    }

    #[test]
    fn json_enrollment_must_be_non_interactive() {
        let err = Cli::try_parse_from(["twofactor", "enroll", "--json"]).unwrap_err();
        assert!(err.to_string().contains("--non-interactive"), "{err}");
        assert!(
            Cli::try_parse_from(["twofactor", "enroll", "--non-interactive", "--json"]).is_ok()
        );
    }
}
