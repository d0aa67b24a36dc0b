//! `twofactor enroll`: a new TOTP secret and backup codes. Interactively:
//! QR code, confirmation with a code from the app, then the backup codes;
//! nothing is written until the code was right. Non-interactively (scripts,
//! provisioning): everything at once, as text or JSON.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::unistd::{self, AccessFlags};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::Serialize;
use zeroize::Zeroizing;

use twofactor_core::backup::{self, GeneratedBackupCode};
use twofactor_core::config::Config;
use twofactor_core::enrollment::{encode_base32_secret, Enrollment};
use twofactor_core::files::describe_io_error;
use twofactor_core::notify::EVENT_ENROLLED;
use twofactor_core::otpauth::totp_uri;
use twofactor_core::secret::SecretBytes;
use twofactor_core::state::LoginState;
use twofactor_core::totp::{TotpParams, GENERATED_SECRET_BYTES};
use twofactor_core::verify::{self, Verdict};

use crate::account::{self, Account};
use crate::cli::{EnrollArgs, QrFileFormat, QrStyle};
use crate::enrollment_file::{self, EnrollmentFile};
use crate::error::CliError;
use crate::events::{self, Event};
use crate::output;
use crate::qr;
use crate::system_config;
use crate::terminal::{Answer, Terminal, NOTHING_WRITTEN};

/// Run `twofactor enroll`.
pub fn run(args: &EnrollArgs) -> Result<(), CliError> {
    // The configuration is root's: read it before giving up root.
    let config = system_config::load(args.target.config.as_deref())?;
    let account = account::resolve_target(args.target.user.as_deref())?;
    let caller = account::caller_name();
    let path = enrollment_file::path_of(&config, &account)?;
    let host = host_name()?;
    let mut terminal = if args.non_interactive {
        None
    } else {
        Some(Terminal::open(
            "to confirm a code from the app on",
            "run 'twofactor enroll' in a terminal, or add --non-interactive to enroll \
             without confirming a code",
            NOTHING_WRITTEN,
        )?)
    };

    account::become_user(&account)?;

    let existing = EnrollmentFile::find(&path)?;
    refuse_to_replace(&existing, args.force)?;
    preflight_dirs(&path, &account)?;
    if let Some(qr_file) = &args.qr_file {
        preflight_qr_file(qr_file, &account)?;
    }

    let totp = new_totp_params(&config)?;
    let codes = backup::generate(backup::DEFAULT_COUNT);
    let enrollment = Enrollment {
        totp: Some(totp),
        backup_codes: codes.iter().map(|code| code.stored.clone()).collect(),
        // Registered security keys survive a new TOTP enrollment (--force).
        fido2: enrollment_file::load(&path, &account)
            .ok()
            .flatten()
            .map(|old| old.fido2)
            .unwrap_or_default(),
    };
    let issuer = if config.issuer.is_empty() {
        host.clone()
    } else {
        config.issuer.clone()
    };
    let shown = Shown {
        account: &account,
        path: &path,
        issuer: &issuer,
        label: format!("{}@{host}", account.name),
        enrollment: &enrollment,
        codes: &codes,
        qr_file: args.qr_file.as_deref(),
        host: &host,
        force: args.force,
    };

    // Everything shown is rendered before anything is written, so a failure
    // to render cannot leave an enrollment behind whose secret nobody saw.
    let output = if args.json {
        shown.json(false)?
    } else {
        shown.text(args.qr)?
    };

    // The QR file is written before the code is asked, so that it can be
    // scanned during the dialogue; it is removed again (when `qr_file` is
    // dropped) unless the enrollment is saved.
    let qr_file = match &args.qr_file {
        Some(qr_path) => Some(write_qr_file(qr_path, &shown.uri()?)?),
        None => None,
    };
    let replaced = match terminal.as_mut() {
        Some(terminal) => {
            let mut stdout = io::stdout().lock();
            if args.force && existing.exists() {
                output::write(
                    &mut stdout,
                    "Warning: you already have an enrollment. Once you confirm a code \
                     below, it is replaced: the old authenticator entry and the old \
                     backup codes stop working.\n\n",
                )?;
            }
            output::write(&mut stdout, &output.setup)?;
            if let Some(qr_path) = &args.qr_file {
                output::write(
                    &mut stdout,
                    &format!(
                        "QR code written to {} (mode 0600; removed if the enrollment is \
                         cancelled).\n\n",
                        qr_path.display()
                    ),
                )?;
            }
            drop(stdout);
            terminal.check_interrupted()?;
            confirm_code(terminal, &config, shown.totp()?)?;
            terminal.check_interrupted()?;
            commit(&shown, qr_file)?
        }
        None => commit(&shown, qr_file)?,
    };

    let mut stdout = io::stdout().lock();
    let result = if args.json {
        let json = shown.json(replaced)?;
        output::write(&mut stdout, &json.setup)
    } else if terminal.is_some() {
        output::write(&mut stdout, &output.codes)
    } else {
        output::write(&mut stdout, &output.setup)
            .and_then(|()| output::write(&mut stdout, &output.codes))
    };
    drop(stdout);
    result.map_err(|err| {
        CliError::System(format!(
            "{} was written, but the backup codes could not be shown ({}); run \
             'twofactor backup-codes' for new ones",
            path.display(),
            err.message()
        ))
    })?;
    if replaced && terminal.is_none() {
        output::warn(&format!(
            "replaced the enrollment at {}: the old authenticator entry and backup codes \
             no longer work",
            path.display()
        ));
    }

    let event = Event {
        name: EVENT_ENROLLED,
        user: &account.name,
        by: &caller,
        details: format!(
            "methods=totp,backup-codes backup_codes={} replaced={} confirmed={}",
            codes.len(),
            if replaced { "yes" } else { "no" },
            if terminal.is_some() { "yes" } else { "no" }
        ),
        notify: true,
    };
    if let Some(warning) = events::announce(&config, &event) {
        output::warn(&warning);
    }
    Ok(())
}

/// Write the enrollment and keep the QR file (if one was written). Returns
/// whether an existing enrollment was replaced.
fn commit(shown: &Shown, mut qr_file: Option<CreatedFile>) -> Result<bool, CliError> {
    enrollment_file::create_parent_dirs(shown.path)?;
    enrollment_file::check_parent_dir(shown.path, shown.account)?;
    // Checked again: interactively, another enrollment may have been
    // created while the user was reaching for their phone.
    let existing = EnrollmentFile::find(shown.path)?;
    if existing.exists() && !shown.force {
        return Err(exists_error(existing.source()));
    }
    enrollment_file::save(shown.path, shown.account, shown.enrollment)?;
    if let Some(file) = qr_file.as_mut() {
        file.keep();
    }
    Ok(existing.exists())
}

/// Wrong codes after which the enrollment is cancelled: someone who
/// cannot produce a code by then is better served by starting again (or
/// fixing the phone's clock) than by guessing on.
const MAX_WRONG_CODES: u32 = 5;

/// Ask for codes until one is right. Wrong codes are explained; end of
/// input, or [`MAX_WRONG_CODES`] wrong ones, cancel.
fn confirm_code(
    terminal: &mut Terminal,
    config: &Config,
    totp: &TotpParams,
) -> Result<(), CliError> {
    // Only the TOTP secret: a backup code is no proof that the app works.
    let totp_only = Enrollment {
        totp: Some(totp.clone()),
        ..Enrollment::default()
    };
    let prompt = format!(
        "Enter the {}-digit code the app shows, to check that it works: ",
        totp.digits
    );
    let mut wrong = 0u32;
    loop {
        let answer = match terminal.ask(&prompt, true)? {
            Answer::Line(line) => line,
            Answer::End => {
                terminal.say("\n")?;
                return Err(CliError::Refused(
                    "cancelled: no code was entered; nothing was written".into(),
                ));
            }
        };
        // Apps show "123 456"; people type what they see.
        let typed: Zeroizing<String> =
            Zeroizing::new(answer.chars().filter(|c| !c.is_whitespace()).collect());
        if typed.is_empty() {
            continue;
        }
        let now = output::now()?;
        let verdict = verify::check_code(
            &totp_only,
            &LoginState::default(),
            &typed,
            now,
            config.window,
            verify::Kinds::ALL,
        )
        .verdict;
        if matches!(verdict, Verdict::Totp { .. }) {
            terminal.say("Code accepted: the app is set up.\n\n")?;
            return Ok(());
        }
        wrong += 1;
        if wrong >= MAX_WRONG_CODES {
            return Err(CliError::Refused(format!(
                "cancelled after {wrong} wrong codes; nothing was written. Check that the \
                 phone sets its time automatically, then run 'twofactor enroll' again"
            )));
        }
        let hint = if !totp.looks_like_code(&typed) {
            format!(
                "That is not a {}-digit code. Try again (Ctrl-C cancels; nothing is saved).\n",
                totp.digits
            )
        } else if wrong < 3 {
            "That code is not right. Use the entry you just added (not an older one)\n\
             and try again (Ctrl-C cancels; nothing is saved).\n"
                .to_string()
        } else {
            "Still not right. Codes depend on the clock: check that the phone sets its\n\
             time automatically. Try again (Ctrl-C cancels; nothing is saved).\n"
                .to_string()
        };
        terminal.say(&hint)?;
    }
}

fn host_name() -> Result<String, CliError> {
    let name = unistd::gethostname()
        .map_err(|err| CliError::System(format!("cannot read the host name: {}", err.desc())))?;
    Ok(name.to_string_lossy().into_owned())
}

fn exists_error(path: &Path) -> CliError {
    CliError::Refused(format!(
        "{} already exists: enrolling again replaces it, and the authenticator entry \
         and backup codes from the old enrollment stop working; use --force if that is \
         what you want",
        path.display()
    ))
}

/// Replacing an enrollment silently would lock the user out of every
/// authenticator and backup code they already have.
/// An enrollment still in the legacy file counts: the module reads it.
fn refuse_to_replace(existing: &EnrollmentFile, force: bool) -> Result<(), CliError> {
    // Found with symlink_metadata: a symlink (even a dangling one) is
    // something to replace, never something to follow.
    if existing.exists() && !force {
        return Err(exists_error(existing.source()));
    }
    Ok(())
}

/// Before asking for anything, make sure the enrollment can be written:
/// the directory is safe (when it exists), or the nearest existing parent
/// lets the user create it. Nothing is created yet.
fn preflight_dirs(path: &Path, account: &Account) -> Result<(), CliError> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    if enrollment_file::exists(parent)? {
        return enrollment_file::check_parent_dir(path, account);
    }
    // The directories that do exist must already be ones the module accepts.
    enrollment_file::unsafe_directory(path, account)?;
    let mut ancestor = parent;
    while let Some(up) = ancestor.parent() {
        ancestor = up;
        if enrollment_file::exists(ancestor)? {
            break;
        }
    }
    unistd::access(ancestor, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|err| {
        CliError::System(format!(
            "cannot create {} as {}: {} is not writable ({})",
            parent.display(),
            account.name,
            ancestor.display(),
            err.desc()
        ))
    })
}

fn preflight_qr_file(qr_file: &Path, account: &Account) -> Result<(), CliError> {
    if enrollment_file::exists(qr_file)? {
        return Err(CliError::Refused(format!(
            "{} already exists; --qr-file never overwrites a file",
            qr_file.display()
        )));
    }
    let parent = match qr_file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    unistd::access(parent, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|err| {
        CliError::System(format!(
            "cannot write the QR code into {} as {}: {}",
            parent.display(),
            account.name,
            err.desc()
        ))
    })
}

/// A file this run created, removed again unless [`CreatedFile::keep`] is
/// called: a failed or interrupted enrollment leaves no QR code of a
/// secret that was never enrolled.
struct CreatedFile {
    path: PathBuf,
    kept: bool,
}

impl CreatedFile {
    fn keep(&mut self) {
        self.kept = true;
    }
}

impl Drop for CreatedFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Create the QR file: new (never overwriting, never through a symlink),
/// mode 0600 (it holds the secret), owned by whoever runs this (the user).
fn write_qr_file(qr_path: &Path, uri: &str) -> Result<CreatedFile, CliError> {
    let format = QrFileFormat::of(qr_path).ok_or_else(|| {
        CliError::Refused(format!(
            "{}: the QR file name must end in .svg or .png",
            qr_path.display()
        ))
    })?;
    let contents = qr::file_contents(uri, format)?;
    let failed = |err: io::Error| {
        CliError::System(format!(
            "cannot write the QR code to {}: {}",
            qr_path.display(),
            describe_io_error(&err)
        ))
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(qr_path)
        .map_err(|err| {
            if err.kind() == io::ErrorKind::AlreadyExists {
                CliError::Refused(format!(
                    "{} already exists; --qr-file never overwrites a file",
                    qr_path.display()
                ))
            } else {
                failed(err)
            }
        })?;
    let guard = CreatedFile {
        path: qr_path.to_path_buf(),
        kept: false,
    };
    file.write_all(&contents)
        .and_then(|()| file.sync_all())
        .map_err(failed)?;
    Ok(guard)
}

fn new_totp_params(config: &Config) -> Result<TotpParams, CliError> {
    let mut secret = Zeroizing::new(vec![0u8; GENERATED_SECRET_BYTES]);
    OsRng.try_fill_bytes(&mut secret).map_err(|err| {
        CliError::System(format!("cannot get random bytes from the system: {err}"))
    })?;
    Ok(TotpParams {
        secret: SecretBytes::new(std::mem::take(&mut *secret)),
        algorithm: config.totp_algorithm,
        digits: config.totp_digits,
        period: config.totp_period,
    })
}

/// What is shown to the user.
struct Shown<'a> {
    account: &'a Account,
    path: &'a Path,
    issuer: &'a str,
    label: String,
    enrollment: &'a Enrollment,
    codes: &'a [GeneratedBackupCode],
    qr_file: Option<&'a Path>,
    host: &'a str,
    /// --force: an existing enrollment may be replaced.
    force: bool,
}

/// Rendered output: the part before the confirmation (QR code, URI, key)
/// and the part after it (backup codes). JSON is all in `setup`.
struct Rendered {
    setup: Zeroizing<String>,
    codes: Zeroizing<String>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    user: &'a str,
    uid: u32,
    enrollment_path: String,
    issuer: &'a str,
    account: &'a str,
    otpauth_uri: &'a str,
    secret: &'a str,
    algorithm: &'static str,
    digits: u8,
    period: u64,
    backup_codes: Vec<&'a str>,
    qr_file: Option<String>,
    replaced: bool,
}

impl Shown<'_> {
    fn totp(&self) -> Result<&TotpParams, CliError> {
        self.enrollment
            .totp
            .as_ref()
            .ok_or_else(|| CliError::System("internal error: enrollment without TOTP".into()))
    }

    fn uri(&self) -> Result<Zeroizing<String>, CliError> {
        Ok(totp_uri(self.totp()?, self.issuer, &self.label))
    }

    fn json(&self, replaced: bool) -> Result<Rendered, CliError> {
        let totp = self.totp()?;
        let uri = self.uri()?;
        let secret = encode_base32_secret(&totp.secret);
        let report = JsonReport {
            user: &self.account.name,
            uid: self.account.uid.as_raw(),
            enrollment_path: self.path.to_string_lossy().into_owned(),
            issuer: self.issuer,
            account: &self.label,
            otpauth_uri: &uri,
            secret: &secret,
            algorithm: totp.algorithm.name(),
            digits: totp.digits,
            period: totp.period,
            backup_codes: self
                .codes
                .iter()
                .map(|code| code.display.as_str())
                .collect(),
            qr_file: self.qr_file.map(|p| p.to_string_lossy().into_owned()),
            replaced,
        };
        Ok(Rendered {
            setup: output::json_line(&report)?,
            codes: Zeroizing::new(String::new()),
        })
    }

    fn text(&self, style: QrStyle) -> Result<Rendered, CliError> {
        let totp = self.totp()?;
        let uri = self.uri()?;
        let secret = encode_base32_secret(&totp.secret);
        // Room for everything, so growing never leaves a copy behind.
        let mut setup = Zeroizing::new(String::with_capacity(16 * 1024));
        setup.push_str(&format!(
            "Two-factor login for {} on {} ({}).\n\n",
            self.account.name,
            self.host,
            self.path.display()
        ));
        if let Some(drawing) = qr::draw_for_terminal(&uri, style)? {
            setup.push_str("Scan this QR code with your authenticator app:\n\n");
            setup.push_str(&drawing.text);
            if drawing.columns > qr::TERMINAL_COLUMNS {
                setup.push_str(&format!(
                    "(This drawing is {} columns wide: widen the terminal to scan it, or \
                     use --qr dark or --qr light.)\n",
                    drawing.columns
                ));
            }
            setup.push('\n');
            setup.push_str("Or add the account with this link:\n");
        } else {
            setup.push_str("Add the account to your authenticator app with this link:\n");
        }
        // Secrets go in as pieces, not through format!, so no unwiped
        // temporary copy is left behind.
        setup.push_str("  ");
        setup.push_str(&uri);
        setup.push_str("\n\n");
        setup.push_str(&format!(
            "or enter the key by hand ({}, {} digits, {} seconds), account {}:\n",
            totp.algorithm.name(),
            totp.digits,
            totp.period,
            self.label
        ));
        setup.push_str("  ");
        setup.push_str(&group_by_four(&secret));
        setup.push_str("\n\n");

        let mut codes = Zeroizing::new(String::with_capacity(4096));
        codes.push_str(
            "Backup codes: each works once, in place of a code from the app (when the phone \
             is lost or flat).\nStore them somewhere safe now (a password manager, or on \
             paper): they are not shown again.\n",
        );
        for code in self.codes {
            codes.push_str("  ");
            codes.push_str(&code.display);
            codes.push('\n');
        }
        codes.push_str(&format!(
            "\nEnrolled {} ({}). Logins through pam_twofactor now ask for a code.\n",
            self.account.name,
            self.path.display()
        ));
        if let Some(qr_file) = self.qr_file {
            codes.push_str(&format!(
                "The QR code is also in {} (mode 0600; delete it once it has been used).\n",
                qr_file.display()
            ));
        }
        Ok(Rendered { setup, codes })
    }
}

/// `ABCDEFGH...` as `ABCD EFGH ...`: easier to type, and apps ignore spaces.
fn group_by_four(secret: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(secret.len() + secret.len() / 4));
    for (i, c) in secret.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_grouped_by_four() {
        assert_eq!(group_by_four("ABCDEFGHIJ").as_str(), "ABCD EFGH IJ");
        assert_eq!(group_by_four("ABCD").as_str(), "ABCD");
        assert_eq!(group_by_four("").as_str(), "");
    }

    #[test]
    fn generated_params_follow_the_config() {
        let config = Config {
            totp_algorithm: twofactor_core::totp::Algorithm::SHA256,
            totp_digits: 8,
            totp_period: 60,
            ..Config::default()
        };
        let params = new_totp_params(&config).unwrap();
        assert_eq!(params.secret.len(), GENERATED_SECRET_BYTES);
        assert!(params.secret.len() * 8 >= 160);
        assert_eq!((params.digits, params.period), (8, 60));
        assert_eq!(params.algorithm, twofactor_core::totp::Algorithm::SHA256);
        assert_ne!(params.secret, new_totp_params(&config).unwrap().secret);
    }
}
