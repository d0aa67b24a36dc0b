//! The command line: every subcommand, option and help text, and nothing else.
//! The man pages (`man/`) are generated from these definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The exit status of every command (see `error.rs`), for `twofactor
/// --help` and the EXIT STATUS section of twofactor(1).
macro_rules! exit_status_rule {
    () => {
        "\
Exit status, the same rule for every command:
  0      done (verify: the code is valid; doctor: no problem found).
  1      refused as asked: bad usage, not allowed, an unknown user, a
         precondition not met (not enrolled, already enrolled without
         --force, no such key, no security key attached, a named file that
         does not exist), content understood but not supported (an HOTP
         file, no usable key), not confirmed, or cancelled (end of input,
         too many wrong codes); verify: the code is not valid; doctor:
         problems found. Asking differently can succeed.
  2      a file or the system is in the way: a file that cannot be read or
         written, that fails a safety check (owner, permissions, symbolic
         link, size, a directory others can write to) or that does not
         parse (configuration, enrollment, login state, a file to import);
         an I/O error or a failed lookup. The same command fails again
         until the file or the system is fixed.
  128+N  interrupted by signal N (130: Ctrl-C); nothing was written."
    };
}

/// The exit-status rule, as shown by `--help`.
#[cfg(test)]
const EXIT_STATUS_RULE: &str = exit_status_rule!();

const EXAMPLES: &str = concat!(
    "\
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

  As root, after moving a host to the fleet's shared state (state_backend =
  \"redis\"): bring its spent codes along for every account at once:
    twofactor fleet push

",
    exit_status_rule!()
);

const ENROLL_EXAMPLES: &str = "\
Examples:
  twofactor enroll
  twofactor enroll --qr light             # terminal with a light background
  twofactor enroll --force                # replace a lost phone's enrollment
  twofactor enroll --user alice --non-interactive --json
  twofactor enroll --user alice --non-interactive --json --qr-file /tmp/alice.svg

Interactive enrollment writes no enrollment until a correct code from the
app is entered. A --qr-file is written before the code is asked, so that it
can be scanned meanwhile, and removed again if the enrollment is cancelled:
Ctrl-C, end of input (Ctrl-D) or five wrong codes leave no file behind.

The --json object has the keys user, uid, enrollment_path, issuer, account,
otpauth_uri, secret, algorithm, digits, period, backup_codes, qr_file (a path
or null) and replaced (true when --force replaced an enrollment).

With --user, root acts as that user: every file is created by and owned by
the user (so --qr-file must name a place the user can write, such as /tmp).

Exit status (the rule is in twofactor(1)): 0 enrolled; 1 refused
(enrollment exists, not allowed, unknown user, no terminal, bad usage) or
cancelled (end of input, five wrong codes); 2 a file or the system is in the
way (an unsafe enrollment directory, a QR file that cannot be written); 130
Ctrl-C.";

const STATUS_EXAMPLES: &str = "\
Examples:
  twofactor status
  twofactor status --json | jq .methods.backup_codes.remaining
  twofactor status --user alice             # as root

The --json object has the keys user, uid, enrollment, methods, state,
last_success, recent_failures and lockout (their contents: the
administrator's guide, docs/admin-guide.md, section JSON output; the schema:
enroll-tool/schemas/status.schema.json). New keys (such as
methods.security_keys) may be added: ignore the ones you do not know.

Exit status (the rule is in twofactor(1)): 0 the status was shown (also
when not enrolled, or when the login state cannot be read: that is part of
the status); 1 refused (not allowed, unknown user, bad usage); 2 a file or
the system is in the way (an unsafe or invalid enrollment or configuration).";

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

Exit status (the rule is in twofactor(1)): 0 the code is valid; 1 it is
not (wrong, or valid but already used or spent: a login would refuse it),
or no code was given, or refused; 2 a file or the system is in the way;
130 Ctrl-C.";

const BACKUP_CODES_EXAMPLES: &str = "\
Examples:
  twofactor backup-codes
  twofactor backup-codes --user alice --yes --json     # as root, from a script

Exit status (the rule is in twofactor(1)): 0 new codes written and shown;
1 refused, not enrolled, or not confirmed; 2 a file or the system is in the
way; 130 Ctrl-C (nothing written).";

const DISABLE_EXAMPLES: &str = "\
Examples:
  twofactor disable totp           # keep only the backup codes
  twofactor disable backup-codes   # keep only TOTP
  twofactor disable all            # remove the enrollment file
  twofactor disable all --user alice --yes

If the system requires a second factor (unenrolled = \"fail\"), logins through
pam_twofactor are refused once nothing is enrolled, until you enroll again.

Exit status (the rule is in twofactor(1)): 0 disabled (or nothing to
disable); 1 refused or not confirmed; 2 a file or the system is in the way;
130 Ctrl-C (nothing changed).";

const RESET_LOCKOUT_EXAMPLES: &str = "\
Examples:
  twofactor reset-lockout --user alice

Clears the failed attempts recorded in the root-owned login state, under
the same lock the PAM module takes, so codes and backup codes are accepted
again at once. Replay protection and spent backup codes are kept.

With state_backend = \"redis\" the failures of the fleet's shared state are
cleared (under the account's lease, on the server's clock) and the reset
holds on every host at once. If the shared state cannot be reached, nothing
is changed (also with redis_unavailable = \"local\"), and the exit status is 2.

Exit status (the rule is in twofactor(1)): 0 cleared (or nothing to
clear); 1 refused (not root, unknown user); 2 a file or the system is in the
way (the login state cannot be read or written, the shared state cannot be
reached).";

const FLEET_EXAMPLES: &str = "\
Examples:
  sudo twofactor fleet push
  sudo twofactor fleet push --json

Exit status (the rule is in twofactor(1)): 0 done; 1 refused (not root,
state_backend is not \"redis\"); 2 the shared state or a file is in the way.";

const FLEET_PUSH_EXAMPLES: &str = "\
Examples:
  sudo twofactor fleet push                  # after setting state_backend = \"redis\"
  sudo twofactor fleet push --json | jq .failed

When a host moves to the shared state (state_backend = \"redis\"), each
account's spent backup codes, accepted TOTP codes and security-key counters
kept on this host reach the shared state at the account's next login here.
Until then another host could accept a code already used here. This command
pushes every account's at once: each state file in state_dir is locked as a
login locks it, its account's lease is taken, and what this host remembers
is merged into the shared state (it only adds: pushing twice is harmless).
Failed attempts, lockouts and their resets are not pushed: the shared state
is their authority. The host's files are rewritten with the merged state.

An account that cannot be pushed is reported and the others go on; if the
server cannot be reached at all, the command stops (also with
redis_unavailable = \"local\"). Files in state_dir whose names no user name
is stored under are reported and left alone.

The --json object has the keys state_dir, pushed (a count), unconfirmed and
failed ([{user, error}]; unconfirmed: pushed, but fewer replicas than
redis_wait_replicas acknowledged newly spent backup codes) and
skipped_files.

Exit status (the rule is in twofactor(1)): 0 every account pushed; 1
refused (not root, state_backend is not \"redis\"); 2 an account not pushed
or not confirmed by the replicas, the shared state unreachable, or a file in
the way.";

const IMPORT_EXAMPLES: &str = "\
Examples:
  twofactor import google-authenticator                  # your ~/.google_authenticator
  twofactor import google-authenticator --dry-run        # only show what would happen
  twofactor import google-authenticator --user alice     # as root, for alice

Exit status (the rule is in twofactor(1)), the same for every source: 0
imported (or, with --dry-run, importable); 1 refused (the named file does
not exist, its contents are not supported, an existing enrollment without
--force, not allowed); 2 the file cannot be used (unsafe owner or
permissions, unreadable, malformed) or another file or the system is in the
way. Nothing is written unless the import succeeds.";

const GOOGLE_AUTHENTICATOR_IMPORT_EXAMPLES: &str = "\
Examples:
  twofactor import google-authenticator
  twofactor import google-authenticator --user alice /home/alice/.google_authenticator
  twofactor import google-authenticator --user alice --force --json

What is imported: the TOTP secret (SHA1, 6 digits, the file's STEP_SIZE),
so the authenticator app's entry keeps working; the scratch codes, as
legacy backup codes (each works once; 8 digits are guessable from a stolen
enrollment file, so replace them with 'twofactor backup-codes'). WINDOW_SIZE
and RATE_LIMIT are system-wide settings here (window, max_code_failures in
pam_twofactor.toml) and are reported, not imported; reuse of a code is
always refused. Counter-based (HOTP) files are refused: pam_twofactor
checks time-based codes only. The file itself is left as it is.

The --json object has the keys user, source, enrollment_path, written,
replaced, totp ({algorithm, digits, period, secret_bits} or null),
legacy_backup_codes and notes ([{option, outcome, text}]).

A PATH that root names is read with root's rights, so root-only files kept
outside the home work; it must be the user's, or root's in directories of
root's. Otherwise the file is read with the user's rights.

Exit status (the rule is in twofactor(1)): 0 imported; 1 refused (no such
file, HOTP, unsupported step size, enrollment exists without --force, not
allowed); 2 the file cannot be used (unsafe owner or permissions,
unreadable, malformed) or the system is in the way.";

const DOCTOR_EXAMPLES: &str = "\
Examples:
  sudo twofactor doctor                      # before logging out
  sudo twofactor doctor --user alice
  sudo twofactor doctor --json | jq '.findings[] | select(.level == \"problem\")'

Each finding is one line: 'ok', 'note', or 'PROBLEM ... Fix: ...'. Problems
are what would lock someone out (a missing or broken module, a bad
configuration, a module line in the wrong stack, a code asked twice, sshd
unable to ask for it, the user not enrolled or locked out) or let someone
in without the second factor (an optional or sufficient line, an sshd
method that skips PAM). The module is examined as a file (ELF type,
architecture, pam_sm_authenticate, needed libraries), never loaded.

Run it as root: sshd's effective configuration ('sshd -T') needs root, and
the user is, by default, the administrator who ran sudo (SUDO_USER).

Exit status (the rule is in twofactor(1)): 0 no problem found; 1 problems
found (or refused); 2 the PAM directory cannot be read.";

const PAM_U2F_IMPORT_EXAMPLES: &str = "\
Examples:
  twofactor import pam-u2f                              # ~/.config/Yubico/u2f_keys
  twofactor import pam-u2f --user alice /etc/u2f_mappings
  twofactor import pam-u2f --dry-run --json

Resident credentials ('*') and RS256 keys are skipped and reported. Keys
already registered are left as they are. The file itself is not changed.
'+pin' and '+verification' become user verification (the key's PIN or
built-in verification is asked at each login). pam_twofactor always asks
for a touch: a key set up without '+presence' is imported with a warning.

The --json object has the keys user, source, enrollment_path, written,
rp_id, imported ([{name, algorithm, rp_id, user_verification, origin,
created, credential, pam_u2f_presence}]), already_registered and skipped
([{position, reason}]).

A PATH that root names is read with root's rights, so a central mapping
file of root's (pam_u2f's authfile=, often mode 0600) works; otherwise the
file is read with the user's rights. It must be the user's or root's, and
not writable by others.

Exit status (the rule is in twofactor(1)): 0 imported (or, with --dry-run,
importable); 1 refused (no such file, no usable key for the user, not
allowed); 2 the file cannot be used (unsafe owner or permissions,
unreadable) or the system is in the way.";

const FIDO2_EXAMPLES: &str = "\
Examples:
  twofactor fido2 add --name yubikey
  twofactor fido2 list
  twofactor fido2 remove yubikey

Exit status (the rule is in twofactor(1)): 0 done; 1 refused (no key
attached, several attached without --device, a name already used, not
confirmed, not allowed); 2 a file or the system is in the way.";

const FIDO2_ADD_EXAMPLES: &str = "\
Examples:
  twofactor fido2 add                            # the one attached key
  twofactor fido2 add --name backup-key --device /dev/hidraw3
  twofactor fido2 add --user alice --json        # as root

Makes a non-resident credential (EdDSA when the key offers it, else ES256)
for this system's relying-party id (fido2_rp_id, default pam://HOSTNAME).
A key with a PIN asks for it, and logins with that key will too. The
credential id, public key, algorithm, flags and counter are stored in the
enrollment; the private key never leaves the key.

Exit status (the rule is in twofactor(1)): 0 registered; 1 refused (no key
or several, the key refused, name taken); 2 a file, the key's answer or the
system is in the way.";

const FIDO2_LIST_EXAMPLES: &str = "\
Examples:
  twofactor fido2 list
  twofactor fido2 list --user alice --json

Exit status (the rule is in twofactor(1)): 0 listed (also when none is
registered); 1 refused; 2 a file or the system is in the way.";

const FIDO2_REMOVE_EXAMPLES: &str = "\
Examples:
  twofactor fido2 remove key-1
  twofactor fido2 remove key-1 --user alice --yes

Exit status (the rule is in twofactor(1)): 0 removed; 1 refused (no such
key, not confirmed); 2 a file or the system is in the way; 130 Ctrl-C
(nothing changed).";

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
    /// the enrollment file (by default ~/.config/twofactor/enrollment.json)
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
    /// "all" removes the enrollment file, registered security keys
    /// included. Disabling the last remaining method removes it too.
    /// (Single security keys: `twofactor fido2 remove`.)
    #[command(after_help = DISABLE_EXAMPLES)]
    Disable(DisableArgs),

    /// Clear a user's failed login attempts, ending a lockout (root only).
    #[command(after_help = RESET_LOCKOUT_EXAMPLES)]
    ResetLockout(ResetLockoutArgs),

    /// Bring second factors over from another PAM module.
    #[command(after_help = IMPORT_EXAMPLES)]
    Import(ImportArgs),

    /// Check that the PAM stacks, sshd and your enrollment let you back in.
    ///
    /// Run it before logging out after changing a PAM stack, sshd_config or
    /// pam_twofactor.toml. Every problem is explained in one line, with its
    /// fix.
    #[command(after_help = DOCTOR_EXAMPLES)]
    Doctor(DoctorArgs),

    /// Work with the fleet's shared login state (state_backend = "redis").
    #[command(after_help = FLEET_EXAMPLES)]
    Fleet(FleetArgs),

    /// Register, list and remove FIDO2 security keys.
    ///
    /// A key is asked for (touch, and its PIN if it has one) at console
    /// logins; remote logins use codes unless the system allows keys there
    /// (fido2_remote). Only the public key is stored.
    #[command(after_help = FIDO2_EXAMPLES)]
    Fido2(Fido2Args),

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
    /// the secret. It is written before the code is asked and removed again
    /// if the enrollment is cancelled.
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
    /// Everything, security keys included: the enrollment file is removed.
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

/// Options of `twofactor import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Where the factors come from.
    #[command(subcommand)]
    pub source: ImportSource,
}

/// The modules `twofactor import` reads.
#[derive(Debug, Subcommand)]
pub enum ImportSource {
    /// Import ~/.google_authenticator (google-authenticator-libpam).
    ///
    /// The TOTP secret becomes the TOTP enrollment, the scratch codes become
    /// legacy backup codes, and every option of the file is reported with
    /// what applies now.
    #[command(after_help = GOOGLE_AUTHENTICATOR_IMPORT_EXAMPLES)]
    GoogleAuthenticator(GoogleAuthenticatorImportArgs),

    /// Import security keys from a pam_u2f u2f_keys file (pamu2fcfg).
    ///
    /// Each credential on the user's line (KeyHandle,PublicKey,CoseType,Options,
    /// or the older KeyHandle,PublicKey) becomes a registered security key
    /// for this system's relying-party id, which must be the one the keys
    /// were registered for (pamu2fcfg's default origin is pam://HOSTNAME, the
    /// same as fido2_rp_id's default).
    #[command(after_help = PAM_U2F_IMPORT_EXAMPLES)]
    PamU2f(PamU2fImportArgs),
}

/// Options of `twofactor import google-authenticator`.
#[derive(Debug, Args)]
pub struct GoogleAuthenticatorImportArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// The file to import [default: ~/.google_authenticator of the user].
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,

    /// Replace an existing enrollment.
    #[arg(long)]
    pub force: bool,

    /// Leave the scratch codes out (then make new backup codes with
    /// 'twofactor backup-codes').
    #[arg(long)]
    pub no_scratch_codes: bool,

    /// Show what would be imported; write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the result as one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `twofactor doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Check this user's enrollment [default: the administrator who ran
    /// sudo (SUDO_USER), else you].
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Read the system configuration from PATH
    /// [default: /etc/security/pam_twofactor.toml, built-in defaults if absent].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// The PAM configuration directory to check.
    #[arg(long, value_name = "DIR", default_value = "/etc/pam.d")]
    pub pam_dir: PathBuf,

    /// Where libpam finds modules named without a path
    /// [default: /lib/<multiarch>/security, as libpam].
    #[arg(long, value_name = "DIR")]
    pub module_dir: Option<PathBuf>,

    /// The sshd program.
    #[arg(long, value_name = "PATH", default_value = "/usr/sbin/sshd")]
    pub sshd: PathBuf,

    /// sshd's configuration file [default: sshd's own, /etc/ssh/sshd_config].
    #[arg(long, value_name = "PATH")]
    pub sshd_config: Option<PathBuf>,

    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `twofactor import pam-u2f`.
#[derive(Debug, Args)]
pub struct PamU2fImportArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// The u2f_keys file [default: ~/.config/Yubico/u2f_keys of the user].
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,

    /// Show what would be imported; write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the result as one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `twofactor fleet`.
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: FleetCommand,
}

/// The `twofactor fleet` subcommands.
#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Merge this host's spent codes and used TOTP steps into the shared
    /// state, for every account at once (root only).
    #[command(after_help = FLEET_PUSH_EXAMPLES)]
    Push(FleetPushArgs),
}

/// Options of `twofactor fleet push`.
#[derive(Debug, Args)]
pub struct FleetPushArgs {
    /// Read the system configuration from PATH
    /// [default: /etc/security/pam_twofactor.toml, built-in defaults if absent].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Print the result as one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `twofactor fido2`.
#[derive(Debug, Args)]
pub struct Fido2Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Fido2Command,
}

/// The `twofactor fido2` subcommands.
#[derive(Debug, Subcommand)]
pub enum Fido2Command {
    /// Register the attached security key (touch it when asked).
    #[command(after_help = FIDO2_ADD_EXAMPLES)]
    Add(Fido2AddArgs),
    /// List the registered security keys.
    #[command(after_help = FIDO2_LIST_EXAMPLES)]
    List(Fido2ListArgs),
    /// Remove a registered security key by name.
    #[command(after_help = FIDO2_REMOVE_EXAMPLES)]
    Remove(Fido2RemoveArgs),
}

/// Options of `twofactor fido2 add`.
#[derive(Debug, Args)]
pub struct Fido2AddArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// A name for the key [default: key-1, key-2, ...].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// The key to use when several are attached (a /dev/hidrawN path).
    #[arg(long, value_name = "PATH")]
    pub device: Option<PathBuf>,

    /// Print the result as one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `twofactor fido2 list`.
#[derive(Debug, Args)]
pub struct Fido2ListArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `twofactor fido2 remove`.
#[derive(Debug, Args)]
pub struct Fido2RemoveArgs {
    /// The name of the key (see 'twofactor fido2 list').
    #[arg(value_name = "NAME")]
    pub name: String,

    #[command(flatten)]
    pub target: TargetArgs,

    /// Do not ask for confirmation (for scripts).
    #[arg(long, short = 'y')]
    pub yes: bool,

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
            assert!(
                help.contains("Exit status (the rule is in twofactor(1))"),
                "{name}: {help}"
            );
        }
        let help = command
            .find_subcommand_mut("fleet")
            .and_then(|fleet| fleet.find_subcommand_mut("push"))
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(
            help.contains(twofactor_core::config::DEFAULT_CONFIG_PATH),
            "{help}"
        );
        assert!(help.contains("Exit status (the rule is in twofactor(1))"));
        let help = command.render_long_help().to_string();
        assert!(help.contains(EXIT_STATUS_RULE), "{help}");
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
